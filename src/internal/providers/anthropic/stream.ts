/** The Messages stream parser: a light, tolerant parse of each event, no Schema per event. */
import * as Err from "../../../LlmError.js"
import type * as Message from "../../../Message.js"
import { malformed } from "../../request/errors.js"
import { badIndex, isStreamIndex } from "../streamIndex.js"
import { Parser } from "../streamParser.js"
import { outputToolOf } from "./request.js"
import { argumentsOf, canonical, finishReasonOf, outputFinish, redactedState, thinkingState, usageOf, type WireUsage } from "./response.js"

interface OpenBlock {
  /** `output`: the output tool of a json_schema request, whose input streams as text. */
  readonly kind: "text" | "thinking" | "tool" | "output" | "other"
  /** For tool blocks: the call's position among the message's tool calls. */
  readonly toolIndex: number
  readonly id: string
  readonly name: string
  arguments: string
  /** The `input` of `content_block_start`, used when no `input_json_delta` follows. */
  readonly initialInput: unknown
  emitted: boolean
  /** For thinking blocks: the text and the signature, sent back on the next turn. */
  thinking: string
  signature: string | undefined
}

/**
 * The stream state machine over Messages events: `message_start` → content blocks
 * (`text_delta`, `thinking_delta`, `input_json_delta`, `signature_delta`) → `message_delta`
 * (stop reason, usage) → `message_stop`. `ping` is ignored and `error` ends the stream.
 */
export class EventParser extends Parser {
  private stopReason: string | null | undefined = undefined
  private usage: { -readonly [K in keyof WireUsage]: WireUsage[K] } | undefined = undefined
  private readonly blocks = new Map<number, OpenBlock>()
  private readonly calls: Array<Message.ToolCall> = []
  private readonly reasoningState: Array<Message.ReasoningState> = []
  private toolCount = 0
  private readonly outputTool = outputToolOf(this.request)
  private answered = false

  onData(data: string, event: string | undefined, out: Array<Message.StreamEvent>): Err.LlmError | undefined {
    if (this.finished) return undefined
    const payload = this.frame(data)
    if (payload instanceof Err.MalformedResponseError) return payload
    const type = typeof payload.type === "string" ? payload.type : event
    switch (type) {
      case "message_start": {
        const message = payload.message as { id?: unknown; model?: unknown; usage?: unknown } | undefined
        if (typeof message?.id === "string") this.id = message.id
        if (typeof message?.model === "string") this.model = message.model
        this.mergeUsage(message?.usage)
        return undefined
      }
      case "content_block_start": {
        if (!isStreamIndex(payload.index)) return malformed(this.provider, this.model, data, badIndex("content_block_start index", payload.index))
        if (this.blocks.has(payload.index)) {
          return malformed(this.provider, this.model, data, `content block ${payload.index} started twice`)
        }
        return this.startBlock(payload.index, payload, out)
      }
      case "content_block_delta": {
        const block = this.blockOf(data, payload, type)
        return block instanceof Err.MalformedResponseError ? block : this.delta(block, payload, out)
      }
      case "content_block_stop": {
        const block = this.blockOf(data, payload, type)
        if (block instanceof Err.MalformedResponseError) return block
        this.closeBlock(block, out)
        return undefined
      }
      case "message_delta": {
        const delta = payload.delta as { stop_reason?: unknown } | undefined
        if (typeof delta?.stop_reason === "string") this.stopReason = delta.stop_reason
        this.mergeUsage(payload.usage)
        return undefined
      }
      case "message_stop":
        return this.finish(out)
      case "error":
        return this.errorEvent(payload)
      default:
        // ping, and event types newer than this parser
        return undefined
    }
  }

  onEnd(out: Array<Message.StreamEvent>): Err.LlmError | undefined {
    if (this.finished) return undefined
    // message_delta carries everything message_stop would confirm: a stop reason is an end
    return this.stopReason === undefined ? this.cut("message_stop", this.started(this.toolCount)) : this.finish(out)
  }

  private mergeUsage(raw: unknown): void {
    if (typeof raw !== "object" || raw === null) return
    const usage = raw as Record<string, unknown>
    const next = this.usage ?? {}
    // message_delta's counts are cumulative and may repeat or revise message_start's
    if (typeof usage.input_tokens === "number") next.input_tokens = usage.input_tokens
    if (typeof usage.output_tokens === "number") next.output_tokens = usage.output_tokens
    if (typeof usage.cache_read_input_tokens === "number") next.cache_read_input_tokens = usage.cache_read_input_tokens
    if (typeof usage.cache_creation_input_tokens === "number") next.cache_creation_input_tokens = usage.cache_creation_input_tokens
    this.usage = next
  }

  /** The open block an event names by its `index`; a block that never started is malformed (what it carries would be lost). */
  private blockOf(data: string, payload: Record<string, unknown>, type: string): OpenBlock | Err.MalformedResponseError {
    if (!isStreamIndex(payload.index)) return malformed(this.provider, this.model, data, badIndex(`${type} index`, payload.index))
    const block = this.blocks.get(payload.index)
    return block ?? malformed(this.provider, this.model, data, `${type} for content block ${payload.index}, which never started`)
  }

  private startBlock(index: number, payload: Record<string, unknown>, out: Array<Message.StreamEvent>): undefined {
    const raw = (payload.content_block ?? {}) as {
      type?: unknown
      text?: unknown
      thinking?: unknown
      signature?: unknown
      data?: unknown
      id?: unknown
      name?: unknown
      input?: unknown
    }
    if (raw.type === "tool_use" && raw.name === this.outputTool && !this.answered) {
      this.answered = true
      this.blocks.set(index, { ...emptyBlock("output"), initialInput: raw.input })
      return undefined
    }
    if (raw.type === "redacted_thinking") {
      if (typeof raw.data === "string") this.reasoningState.push(redactedState(raw.data))
      this.blocks.set(index, emptyBlock("other"))
      return undefined
    }
    if (raw.type === "tool_use" && typeof raw.id === "string" && typeof raw.name === "string") {
      const block: OpenBlock = {
        kind: "tool",
        toolIndex: this.toolCount++,
        id: raw.id,
        name: raw.name,
        arguments: "",
        initialInput: raw.input,
        emitted: false,
        thinking: "",
        signature: undefined
      }
      this.blocks.set(index, block)
      out.push({ _tag: "ToolCallDelta", index: block.toolIndex, id: block.id, name: block.name, argumentsDelta: "" })
      return undefined
    }
    const block = emptyBlock(raw.type === "text" ? "text" : raw.type === "thinking" ? "thinking" : "other")
    this.blocks.set(index, block)
    if (block.kind === "text" && typeof raw.text === "string" && raw.text.length > 0) this.text(raw.text, out)
    if (block.kind === "thinking") {
      if (typeof raw.thinking === "string" && raw.thinking.length > 0) {
        block.thinking = raw.thinking
        this.think(raw.thinking, out)
      }
      if (typeof raw.signature === "string" && raw.signature.length > 0) block.signature = raw.signature
    }
    return undefined
  }

  private delta(block: OpenBlock, payload: Record<string, unknown>, out: Array<Message.StreamEvent>): undefined {
    const delta = payload.delta as { type?: unknown; text?: unknown; thinking?: unknown; signature?: unknown; partial_json?: unknown } | undefined
    if (delta === undefined) return undefined
    switch (delta.type) {
      case "text_delta":
        if (typeof delta.text === "string" && delta.text.length > 0) this.text(delta.text, out)
        break
      case "thinking_delta":
        if (typeof delta.thinking === "string" && delta.thinking.length > 0) {
          if (block.kind === "thinking") block.thinking += delta.thinking
          this.think(delta.thinking, out)
        }
        break
      case "signature_delta":
        if (block.kind === "thinking" && typeof delta.signature === "string") block.signature = (block.signature ?? "") + delta.signature
        break
      case "input_json_delta": {
        if (block.kind === "output") {
          // the output tool's input is the reply's JSON text
          if (typeof delta.partial_json === "string" && delta.partial_json.length > 0) {
            block.arguments += delta.partial_json
            this.text(delta.partial_json, out)
          }
          break
        }
        // server_tool_use blocks stream input too; they are not the caller's calls
        if (block.kind !== "tool" || typeof delta.partial_json !== "string" || delta.partial_json.length === 0) break
        block.arguments += delta.partial_json
        out.push({ _tag: "ToolCallDelta", index: block.toolIndex, argumentsDelta: delta.partial_json })
        break
      }
      default:
        // citations_delta: nothing the unified response carries
        break
    }
    return undefined
  }

  private closeBlock(block: OpenBlock, out: Array<Message.StreamEvent>): void {
    if (block.emitted) return
    if (block.kind === "thinking") {
      block.emitted = true
      this.reasoningState.push(thinkingState(block.thinking, block.signature))
      return
    }
    if (block.kind === "output") {
      block.emitted = true
      // an input given whole at the start, with no deltas
      if (block.arguments.length === 0) this.text(argumentsOf(block.initialInput), out)
      return
    }
    if (block.kind !== "tool") return
    block.emitted = true
    const args = block.arguments.length > 0 ? canonical(block.arguments) : argumentsOf(block.initialInput)
    const call: Message.ToolCall = { id: block.id, name: block.name, arguments: args }
    this.calls.push(call)
    out.push({ _tag: "ToolCall", index: block.toolIndex, ...call })
  }

  private finish(out: Array<Message.StreamEvent>): undefined {
    if (this.finished) return undefined
    this.finished = true
    for (const block of this.blocks.values()) this.closeBlock(block, out)
    const reported = this.usage !== undefined && (this.usage.input_tokens != null || this.usage.output_tokens != null)
    const finishReason = this.answered && this.calls.length === 0
      ? outputFinish(this.stopReason)
      : finishReasonOf(this.stopReason, this.calls.length > 0)
    this.finishWith(out, finishReason, reported ? usageOf(this.usage!) : undefined, this.calls, this.reasoningState)
    return undefined
  }
}

const emptyBlock = (kind: OpenBlock["kind"]): OpenBlock => ({
  kind,
  toolIndex: -1,
  id: "",
  name: "",
  arguments: "",
  initialInput: undefined,
  emitted: false,
  thinking: "",
  signature: undefined
})
