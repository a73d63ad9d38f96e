/** The Chat Completions stream parser: a light, tolerant parse of each chunk, no Schema per chunk. */
import type * as Err from "../../../LlmError.js"
import type * as Message from "../../../Message.js"
import { tryJson } from "../../request/errorBody.js"
import { malformed } from "../../request/errors.js"
import { badIndex, inIndexOrder, isStreamIndex } from "../streamIndex.js"
import { Parser } from "../streamParser.js"
import { fallbackCallId, finishReasonOf, usageOf, type WireUsage } from "./response.js"

interface PendingCall {
  id: string
  name: string
  arguments: string
}

type CallFragment = { index?: unknown; id?: string; function?: { name?: string; arguments?: string } }

/**
 * The stream state machine: assembles text, reasoning and tool calls (keyed by `index`, in
 * parallel), remembers finish reason and usage, and emits `ToolCall` events once complete.
 */
export class ChunkParser extends Parser {
  private finishReason: string | null | undefined = undefined
  /** The last usage object sent: read once, when the stream ends. */
  private usage: typeof WireUsage.Type | undefined = undefined
  private upstreamProvider: string | undefined = undefined
  private readonly calls = new Map<number, PendingCall>()
  /** The highest index so far: where a fragment without an index belongs. */
  private lastIndex = -1
  /**
   * Where a wire index's fragments go once a second call came at it: some servers number
   * every call 0, each with its own id (see `slotOf`).
   */
  private readonly moved = new Map<number, number>()
  private callsEmitted = false
  private done = false

  onData(data: string, event: string | undefined, out: Array<Message.StreamEvent>): Err.LlmError | undefined {
    if (this.done) return undefined
    if (data === "[DONE]") {
      this.done = true
      return this.finish(out)
    }
    const json = tryJson(data)
    if (event === "error") {
      // the payload of an error event may be plain text
      return this.errorEvent(typeof json === "object" && json !== null ? json : { message: data })
    }
    if (typeof json !== "object" || json === null) {
      // keep-alive frames with empty data carry nothing
      if (data.trim().length === 0) return undefined
      return malformed(this.provider, this.model, data, "a stream event is not a JSON object")
    }
    const chunk = json as Record<string, unknown>
    if (chunk.error !== undefined && chunk.error !== null) return this.errorEvent(chunk)
    if (typeof chunk.id === "string" && this.id === "") this.id = chunk.id
    if (typeof chunk.model === "string") this.model = chunk.model
    // a usage object without counts (some servers send one on every chunk) keeps the last with them
    const usage = chunk.usage as typeof WireUsage.Type | null | undefined
    if (typeof usage?.prompt_tokens === "number" && typeof usage.completion_tokens === "number") this.usage = usage
    if (typeof chunk.provider === "string" && this.upstreamProvider === undefined) this.upstreamProvider = chunk.provider
    const choices = chunk.choices
    if (!Array.isArray(choices) || choices.length === 0) return undefined
    const choice = choices[0] as { delta?: Record<string, unknown>; finish_reason?: string | null }
    const delta = choice.delta
    if (typeof delta === "object" && delta !== null) {
      const reasoning = delta.reasoning_content ?? delta.reasoning
      if (typeof reasoning === "string" && reasoning.length > 0) this.think(reasoning, out)
      const content = delta.content
      if (typeof content === "string" && content.length > 0) this.text(content, out)
      const toolCalls = delta.tool_calls
      if (Array.isArray(toolCalls)) {
        for (const raw of toolCalls as Array<CallFragment>) {
          const error = this.callDelta(raw, out)
          if (error !== undefined) return malformed(this.provider, this.model, data, error)
        }
      }
    }
    if (typeof choice.finish_reason === "string") {
      this.finishReason = choice.finish_reason
      this.emitCalls(out)
    }
    return undefined
  }

  onEnd(out: Array<Message.StreamEvent>): Err.LlmError | undefined {
    if (this.finished) return undefined
    // neither a finish reason nor [DONE]: the stream was cut, not finished
    if (this.finishReason === undefined && !this.done) return this.cut("it finished", this.emittedText.length > 0 || this.calls.size > 0)
    return this.finish(out)
  }

  /** One fragment of a call; why it cannot be read, if it cannot. */
  private callDelta(raw: CallFragment, out: Array<Message.StreamEvent>): string | undefined {
    const id = typeof raw.id === "string" && raw.id.length > 0 ? raw.id : undefined
    // some compatible servers omit the index (or send null): see indexWithoutIndex
    if (raw.index !== undefined && raw.index !== null && !isStreamIndex(raw.index)) return badIndex("tool_calls[].index", raw.index)
    const index = isStreamIndex(raw.index) ? this.slotOf(raw.index, id) : this.indexWithoutIndex(id)
    let call = this.calls.get(index)
    if (call === undefined) {
      call = { id: "", name: "", arguments: "" }
      this.calls.set(index, call)
      if (index > this.lastIndex) this.lastIndex = index
    }
    const wireName = typeof raw.function?.name === "string" && raw.function.name.length > 0 ? raw.function.name : undefined
    // some servers repeat the whole name in every delta: a name equal to the name so far is not a piece of it
    const name = wireName !== undefined && wireName !== call.name ? wireName : undefined
    const args = typeof raw.function?.arguments === "string" ? raw.function.arguments : ""
    if (id !== undefined) call.id = id
    if (name !== undefined) call.name += name
    call.arguments += args
    const deltaEvent: { -readonly [K in keyof Message.ToolCallDelta]: Message.ToolCallDelta[K] } = {
      _tag: "ToolCallDelta",
      index,
      argumentsDelta: args
    }
    if (id !== undefined) deltaEvent.id = id
    if (name !== undefined) deltaEvent.name = name
    out.push(deltaEvent)
    return undefined
  }

  /**
   * The call a fragment sent at wire index `wire` belongs to: the one last started there,
   * unless the fragment brings another id than that call's, which starts a call of its own
   * (servers that send every call at index 0 start each with its id).
   */
  private slotOf(wire: number, id: string | undefined): number {
    const index = this.moved.get(wire) ?? wire
    const current = this.calls.get(index)
    if (id === undefined || current === undefined || current.id === "" || current.id === id) return index
    const fresh = this.lastIndex + 1
    this.moved.set(wire, fresh)
    return fresh
  }

  /**
   * Servers that omit `index` (some compatible ones) send one call at a time: a fragment
   * continues the last call, unless it brings a new id, which starts the next one.
   */
  private indexWithoutIndex(id: string | undefined): number {
    const last = this.lastIndex
    if (last < 0) return 0
    const current = this.calls.get(last)
    return id !== undefined && current !== undefined && current.id !== "" && current.id !== id ? last + 1 : last
  }

  private emitCalls(out: Array<Message.StreamEvent>): void {
    if (this.callsEmitted) return
    this.callsEmitted = true
    for (const [index, call] of inIndexOrder(this.calls)) {
      if (call.id === "") call.id = fallbackCallId(index)
      out.push({ _tag: "ToolCall", index, id: call.id, name: call.name, arguments: call.arguments })
    }
  }

  private finish(out: Array<Message.StreamEvent>): undefined {
    if (this.finished) return undefined
    this.finished = true
    this.emitCalls(out)
    const calls = inIndexOrder(this.calls).map(([, call]) => call)
    const usage = this.usage === undefined ? undefined : usageOf(this.usage)
    this.finishWith(out, finishReasonOf(this.finishReason, calls.length > 0), usage, calls, undefined, this.upstreamProvider)
    return undefined
  }
}
