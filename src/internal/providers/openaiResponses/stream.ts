/** The Responses stream parser: a light, tolerant parse of each event, no Schema per event. */
import * as Err from "../../../LlmError.js"
import type * as Message from "../../../Message.js"
import { malformed } from "../../request/errors.js"
import { badIndex, isStreamIndex } from "../streamIndex.js"
import { Parser } from "../streamParser.js"
import { finishReasonOf, isUsage, messageText, reasoningSeparator, reasoningStateOf, usageOf } from "./response.js"

interface PendingCall {
  readonly index: number
  readonly id: string
  readonly name: string
  arguments: string
  emitted: boolean
}

type Payload = Record<string, unknown>

const str = (u: unknown): string | undefined => (typeof u === "string" ? u : undefined)

/** The index fields of an event: each, when present, must be an index an honest server sends. */
const indexFields = ["output_index", "content_index", "summary_index"] as const

const isCallItem = (raw: unknown): raw is Payload =>
  typeof raw === "object" && raw !== null && ((raw as Payload).type === "function_call" || (raw as Payload).type === "custom_tool_call")

/**
 * The stream state machine over Responses events. Text, reasoning summaries and function
 * arguments stream as deltas keyed by `output_index`; each `*.done` / `output_item.done`
 * carries the final value, and any part of it the deltas missed is emitted then, so the
 * assembled stream always equals the final response. `response.completed` (or
 * `.incomplete`) ends the stream with usage; `response.failed` and `error` fail it.
 */
export class EventParser extends Parser {
  private reasoningKey: string | undefined = undefined
  /** Text streamed so far per message item (`output_index`). */
  private readonly itemText = new Map<number, string>()
  private readonly calls = new Map<number, PendingCall>()
  private callCount = 0
  /** Reasoning items by output index, as `output_item.done` gives them (with the final encrypted content). */
  private readonly reasoningItems = new Map<number, Message.ReasoningState>()

  onData(data: string, event: string | undefined, out: Array<Message.StreamEvent>): Err.LlmError | undefined {
    if (this.finished) return undefined
    if (data === "[DONE]") return undefined
    const payload = this.frame(data)
    if (payload instanceof Err.MalformedResponseError) return payload
    for (const field of indexFields) {
      const value = payload[field]
      if (value !== undefined && value !== null && !isStreamIndex(value)) return malformed(this.provider, this.model, data, badIndex(field, value))
    }
    // compatible servers may leave it out: they send one item at a time
    const outputIndex = isStreamIndex(payload.output_index) ? payload.output_index : 0
    const type = str(payload.type) ?? event
    switch (type) {
      case "response.created":
      case "response.in_progress":
        this.meta(payload.response)
        return undefined
      case "response.output_text.delta":
      case "response.refusal.delta": {
        const delta = str(payload.delta)
        if (delta !== undefined && delta.length > 0) {
          this.itemText.set(outputIndex, (this.itemText.get(outputIndex) ?? "") + delta)
          this.text(delta, out)
        }
        return undefined
      }
      case "response.reasoning_summary_text.delta":
      case "response.reasoning_text.delta": {
        const delta = str(payload.delta)
        if (delta === undefined || delta.length === 0) return undefined
        const section = `${outputIndex}:${typeof payload.summary_index === "number" ? payload.summary_index : payload.content_index ?? 0}`
        const text = this.reasoningKey !== undefined && this.reasoningKey !== section ? reasoningSeparator + delta : delta
        this.reasoningKey = section
        this.think(text, out)
        return undefined
      }
      case "response.output_item.added":
        if (isCallItem(payload.item) && this.calls.has(outputIndex)) {
          return malformed(this.provider, this.model, data, `output item ${outputIndex} started twice`)
        }
        this.startItem(outputIndex, payload.item, out)
        return undefined
      case "response.function_call_arguments.delta":
      case "response.custom_tool_call_input.delta": {
        const call = this.calls.get(outputIndex)
        // arguments of a call that never started would be lost
        if (call === undefined) return malformed(this.provider, this.model, data, `${type} for output item ${outputIndex}, which never started`)
        const delta = str(payload.delta)
        if (delta === undefined || delta.length === 0) return undefined
        call.arguments += delta
        out.push({ _tag: "ToolCallDelta", index: call.index, argumentsDelta: delta })
        return undefined
      }
      case "response.function_call_arguments.done": {
        const call = this.calls.get(outputIndex)
        if (call === undefined) return malformed(this.provider, this.model, data, `${type} for output item ${outputIndex}, which never started`)
        this.reconcileArguments(call, str(payload.arguments), out)
        return undefined
      }
      case "response.output_item.done":
        this.finishItem(outputIndex, payload.item, out)
        return undefined
      case "response.completed":
      case "response.incomplete":
        return this.finish(payload.response, out)
      case "response.failed": {
        const response = (payload.response ?? {}) as Payload
        return this.streamError({ error: response.error ?? { message: "the response failed" } })
      }
      case "error":
        // the API nests the error ({error:{…}}) or flattens it ({code, message}) depending on the path
        return this.streamError(typeof payload.error === "object" && payload.error !== null ? payload : { error: payload })
      default:
        // content_part, *.done echoes, annotations, hosted tools, and event types newer than this parser
        return undefined
    }
  }

  onEnd(_out: Array<Message.StreamEvent>): Err.LlmError | undefined {
    return this.finished ? undefined : this.cut("response.completed", this.started(this.callCount))
  }

  private meta(raw: unknown): void {
    if (typeof raw !== "object" || raw === null) return
    const response = raw as Payload
    if (typeof response.id === "string" && this.id === "") this.id = response.id
    if (typeof response.model === "string") this.model = response.model
  }

  private streamError(payload: Payload): Err.LlmError {
    return this.errorEvent(payload)
  }

  private startItem(outputIndex: number, raw: unknown, out: Array<Message.StreamEvent>): void {
    if (!isCallItem(raw)) return
    const item = raw
    const id = str(item.call_id) ?? str(item.id) ?? ""
    const name = str(item.name) ?? ""
    const initial = str(item.type === "function_call" ? item.arguments : item.input) ?? ""
    const call: PendingCall = { index: this.callCount++, id, name, arguments: initial, emitted: false }
    this.calls.set(outputIndex, call)
    out.push({ _tag: "ToolCallDelta", index: call.index, id, name, argumentsDelta: initial })
  }

  private reconcileArguments(call: PendingCall, final: string | undefined, out: Array<Message.StreamEvent>): void {
    if (final === undefined || final.length <= call.arguments.length || !final.startsWith(call.arguments)) return
    const rest = final.slice(call.arguments.length)
    call.arguments = final
    out.push({ _tag: "ToolCallDelta", index: call.index, argumentsDelta: rest })
  }

  private finishItem(outputIndex: number, raw: unknown, out: Array<Message.StreamEvent>): void {
    if (typeof raw !== "object" || raw === null) return
    const item = raw as Payload
    if (item.type === "reasoning") {
      const state = reasoningStateOf(item)
      if (state !== undefined) this.reasoningItems.set(outputIndex, state)
      return
    }
    if (item.type === "message" && Array.isArray(item.content)) {
      const final = messageText(item.content as Array<{ type: string; text?: string; refusal?: string }>)
      const streamed = this.itemText.get(outputIndex) ?? ""
      if (final.length > streamed.length && final.startsWith(streamed)) {
        this.itemText.set(outputIndex, final)
        this.text(final.slice(streamed.length), out)
      }
      return
    }
    // a call whose output_item.added never came: this item has all of it
    if (!this.calls.has(outputIndex)) this.startItem(outputIndex, item, out)
    const call = this.calls.get(outputIndex)
    if (call === undefined) return
    this.reconcileArguments(call, str(item.type === "custom_tool_call" ? item.input : item.arguments), out)
    this.emitCall(call, out)
  }

  private emitCall(call: PendingCall, out: Array<Message.StreamEvent>): void {
    if (call.emitted) return
    call.emitted = true
    out.push({ _tag: "ToolCall", index: call.index, id: call.id, name: call.name, arguments: call.arguments })
  }

  private finish(raw: unknown, out: Array<Message.StreamEvent>): Err.LlmError | undefined {
    this.finished = true
    this.meta(raw)
    const response = (typeof raw === "object" && raw !== null ? raw : {}) as Payload
    const calls: Array<Message.ToolCall> = []
    for (const call of this.calls.values()) {
      this.emitCall(call, out)
      calls.push(call)
    }
    const incomplete = response.incomplete_details as { reason?: unknown } | null | undefined
    const finishReason = finishReasonOf(str(response.status), str(incomplete?.reason), calls.length > 0)
    if (finishReason === "content_filter" && this.emittedText.length === 0) {
      return new Err.ContentFilterError({
        provider: this.provider,
        model: this.model,
        message: `${this.provider}: the reply was withheld by a content filter`
      })
    }
    // reasoning items whose output_item.done never came: the final response's (.done's win, as sent back by the SDKs)
    if (Array.isArray(response.output)) {
      response.output.forEach((item: unknown, index: number) => {
        if (this.reasoningItems.has(index) || (item as Payload | null)?.type !== "reasoning") return
        const state = reasoningStateOf(item)
        if (state !== undefined) this.reasoningItems.set(index, state)
      })
    }
    const reasoningState = [...this.reasoningItems.entries()].sort(([a], [b]) => a - b).map(([, state]) => state)
    this.finishWith(out, finishReason, isUsage(response.usage) ? usageOf(response.usage) : undefined, calls, reasoningState)
    return undefined
  }
}
