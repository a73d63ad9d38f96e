/** The `/api/chat` NDJSON stream parser: a light, tolerant parse of each line, no Schema per line. */
import * as Err from "../../../LlmError.js"
import type * as Message from "../../../Message.js"
import { Parser } from "../streamParser.js"
import { argumentsText, finishReasonOf, reportedUsage, toolCallId } from "./response.js"

/**
 * The stream state machine over NDJSON lines: `message.content` and `message.thinking`
 * deltas, whole tool calls (Ollama sends each call complete), and the final `done: true`
 * line with `done_reason` and the eval counts. An `{"error": …}` line ends the stream
 * with a typed error; a stream without its `done` line was cut.
 */
export class ChunkParser extends Parser {
  private readonly calls: Array<Message.ToolCall> = []

  onData(data: string, _event: string | undefined, out: Array<Message.StreamEvent>): Err.LlmError | undefined {
    if (this.finished) return undefined
    const line = this.frame(data, "a stream line")
    if (line instanceof Err.MalformedResponseError) return line
    if (line.error !== undefined && line.error !== null) return this.errorEvent(line)
    if (this.id === "" && typeof line.created_at === "string") this.id = line.created_at
    if (typeof line.model === "string") this.model = line.model
    const message = line.message as { content?: unknown; thinking?: unknown; tool_calls?: unknown } | undefined
    if (typeof message === "object" && message !== null) {
      if (typeof message.thinking === "string" && message.thinking.length > 0) this.think(message.thinking, out)
      if (typeof message.content === "string" && message.content.length > 0) this.text(message.content, out)
      if (Array.isArray(message.tool_calls)) {
        for (const raw of message.tool_calls as Array<{ id?: unknown; function?: { name?: unknown; arguments?: unknown } }>) {
          const name = typeof raw.function?.name === "string" ? raw.function.name : undefined
          if (name === undefined) continue
          const index = this.calls.length
          const call = { id: toolCallId(index, typeof raw.id === "string" ? raw.id : undefined), name, arguments: argumentsText(raw.function?.arguments) }
          this.calls.push(call)
          out.push({ _tag: "ToolCallDelta", index, id: call.id, name, argumentsDelta: call.arguments })
          out.push({ _tag: "ToolCall", index, ...call })
        }
      }
    }
    if (line.done === true) {
      this.finished = true
      const usage = reportedUsage(
        typeof line.prompt_eval_count === "number" ? line.prompt_eval_count : undefined,
        typeof line.eval_count === "number" ? line.eval_count : undefined
      )
      const doneReason = typeof line.done_reason === "string" ? line.done_reason : undefined
      this.finishWith(out, finishReasonOf(doneReason, this.calls.length > 0), usage, this.calls)
    }
    return undefined
  }

  onEnd(_out: Array<Message.StreamEvent>): Err.LlmError | undefined {
    return this.finished ? undefined : this.cut("its done line", this.started(this.calls.length))
  }
}
