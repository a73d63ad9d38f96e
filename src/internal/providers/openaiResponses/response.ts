/** Responses replies, decoded tolerantly: only what we use, unknown fields ignored. */
import * as Schema from "effect/Schema"
import * as Err from "../../../LlmError.js"
import type * as Message from "../../../Message.js"
import { errorOf } from "../../request/errors.js"
import { chatResponse, stopOrToolCalls } from "../chatResponse.js"
import { readResponsesError } from "./error.js"
import { optionalNullable, replyDecoder } from "../decoding.js"
import { reasoningItem } from "../reasoningState.js"

export const WireUsage = Schema.Struct({
  input_tokens: Schema.Number,
  output_tokens: Schema.Number,
  total_tokens: Schema.optional(Schema.Number),
  input_tokens_details: optionalNullable(Schema.Struct({
    cached_tokens: optionalNullable(Schema.Number),
    cache_write_tokens: optionalNullable(Schema.Number)
  })),
  output_tokens_details: optionalNullable(Schema.Struct({ reasoning_tokens: optionalNullable(Schema.Number) }))
})
export type WireUsage = typeof WireUsage.Type

/** Content of message and reasoning items; `type` stays an open string. */
const WirePart = Schema.Struct({
  type: Schema.String,
  text: Schema.optional(Schema.String),
  refusal: Schema.optional(Schema.String)
})

/** An output item; every item kind shares this loose shape, new kinds are skipped. */
const WireItem = Schema.Struct({
  type: Schema.String,
  id: Schema.optional(Schema.String),
  encrypted_content: optionalNullable(Schema.String),
  content: optionalNullable(Schema.Array(WirePart)),
  summary: optionalNullable(Schema.Array(WirePart)),
  call_id: Schema.optional(Schema.String),
  name: Schema.optional(Schema.String),
  arguments: Schema.optional(Schema.String),
  input: Schema.optional(Schema.String)
})

export const WireResponse = Schema.Struct({
  id: Schema.optional(Schema.String),
  model: Schema.optional(Schema.String),
  status: optionalNullable(Schema.String),
  output: Schema.Array(WireItem),
  incomplete_details: optionalNullable(Schema.Struct({ reason: optionalNullable(Schema.String) })),
  error: optionalNullable(Schema.Struct({ code: optionalNullable(Schema.String), message: optionalNullable(Schema.String) })),
  usage: optionalNullable(WireUsage)
})

/** The unified finish reason from a response's `status` and `incomplete_details.reason`. */
export const finishReasonOf = (
  status: string | null | undefined,
  incompleteReason: string | null | undefined,
  hasToolCalls: boolean
): Message.FinishReason => {
  switch (status) {
    case "completed":
    case null:
    case undefined:
      return stopOrToolCalls(hasToolCalls)
    case "incomplete":
      return incompleteReason === "max_output_tokens" ? "length" : incompleteReason === "content_filter" ? "content_filter" : "other"
    case "failed":
      return "error"
    default:
      return "other"
  }
}

export const usageOf = (usage: WireUsage): Message.Usage => {
  const result: { -readonly [K in keyof Message.Usage]: Message.Usage[K] } = {
    inputTokens: usage.input_tokens,
    outputTokens: usage.output_tokens,
    totalTokens: usage.total_tokens ?? usage.input_tokens + usage.output_tokens,
    estimated: false
  }
  const reasoning = usage.output_tokens_details?.reasoning_tokens
  if (reasoning !== undefined && reasoning !== null) result.reasoningTokens = reasoning
  const cached = usage.input_tokens_details?.cached_tokens
  if (cached !== undefined && cached !== null) result.cachedInputTokens = cached
  const written = usage.input_tokens_details?.cache_write_tokens
  if (written !== undefined && written !== null) result.cacheWriteTokens = written
  return result
}

export const isUsage = (u: unknown): u is WireUsage =>
  typeof u === "object" && u !== null &&
  typeof (u as WireUsage).input_tokens === "number" && typeof (u as WireUsage).output_tokens === "number"

/** The text of a message item: its `output_text` parts, and a refusal, in order. */
export const messageText = (parts: ReadonlyArray<{ readonly type: string; readonly text?: string | undefined; readonly refusal?: string | undefined }>): string => {
  let text = ""
  for (const part of parts) {
    if (part.type === "output_text" && part.text !== undefined) text += part.text
    else if (part.type === "refusal" && part.refusal !== undefined) text += part.refusal
  }
  return text
}

/**
 * A reasoning output item as the next turn's input takes it: its id, summary and (when the
 * request asked for it) encrypted content. Tolerant: anything without an id is not state.
 */
export const reasoningStateOf = (raw: unknown): Message.ReasoningState | undefined => {
  if (typeof raw !== "object" || raw === null) return undefined
  const item = raw as { id?: unknown; summary?: unknown; encrypted_content?: unknown }
  if (typeof item.id !== "string") return undefined
  const out: Record<string, unknown> = { type: "reasoning", id: item.id, summary: Array.isArray(item.summary) ? item.summary : [] }
  if (typeof item.encrypted_content === "string") out.encrypted_content = item.encrypted_content
  return reasoningItem("openai-responses", out)
}

/** Reasoning sections (summary parts, or raw reasoning text) are separated by a blank line. */
export const reasoningSeparator = "\n\n"

/** A failed response's error, read as an error body, as a server error unless it says more. */
const failedError = (provider: string, model: string, error: unknown): Err.LlmError =>
  errorOf({ provider, model, status: 500, headers: {}, now: 0 }, readResponsesError({ error: error ?? {} }) ?? {})

/**
 * Decodes a non-streaming Responses body into a `ChatResponse`. Text is every message
 * item's `output_text` joined, as the OpenAI SDK's `output_text` joins it; function and
 * custom tool calls become tool calls (a custom tool's free-form `input` is its arguments).
 */
export const fromWireResponse = replyDecoder(WireResponse, (wire, { model, provider, request, status }) => {
  if (wire.status === "failed") return failedError(provider, wire.model ?? model, wire.error)
  let text = ""
  const reasoningParts: Array<string> = []
  const toolCalls: Array<Message.ToolCall> = []
  const reasoningState: Array<Message.ReasoningState> = []
  for (const item of wire.output) {
    switch (item.type) {
      case "message":
        text += messageText(item.content ?? [])
        break
      case "reasoning": {
        const state = reasoningStateOf(item)
        if (state !== undefined) reasoningState.push(state)
        const summary = (item.summary ?? []).filter((p) => p.text !== undefined && p.text.length > 0)
        const parts = summary.length > 0 ? summary : (item.content ?? []).filter((p) => p.type === "reasoning_text")
        for (const part of parts) if (part.text !== undefined && part.text.length > 0) reasoningParts.push(part.text)
        break
      }
      case "function_call":
        if (item.call_id !== undefined && item.name !== undefined) {
          toolCalls.push({ id: item.call_id, name: item.name, arguments: item.arguments ?? "" })
        }
        break
      case "custom_tool_call":
        if (item.call_id !== undefined && item.name !== undefined) {
          toolCalls.push({ id: item.call_id, name: item.name, arguments: item.input ?? "" })
        }
        break
    }
  }
  const reasoning = reasoningParts.length > 0 ? reasoningParts.join(reasoningSeparator) : undefined
  const finishReason = finishReasonOf(wire.status, wire.incomplete_details?.reason, toolCalls.length > 0)
  if (finishReason === "content_filter" && text.length === 0) {
    return new Err.ContentFilterError({ provider, model, message: `${provider}: the reply was withheld by a content filter`, status })
  }
  return chatResponse(request, {
    id: wire.id ?? "",
    model: wire.model ?? model,
    provider,
    text,
    reasoning,
    toolCalls,
    finishReason,
    usage: wire.usage ? usageOf(wire.usage) : undefined,
    reasoningState
  })
})
