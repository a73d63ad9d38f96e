/** `/api/chat` replies, decoded tolerantly: only what we use, unknown fields ignored. */
import * as Schema from "effect/Schema"
import type * as Message from "../../../Message.js"
import { chatResponse, stopOrToolCalls } from "../chatResponse.js"
import { replyDecoder } from "../decoding.js"
import { callId } from "../toolCalls.js"

const WireToolCall = Schema.Struct({
  id: Schema.optional(Schema.String),
  function: Schema.Struct({ name: Schema.String, arguments: Schema.optional(Schema.Unknown) })
})

export const WireResponse = Schema.Struct({
  model: Schema.optional(Schema.String),
  created_at: Schema.optional(Schema.String),
  message: Schema.Struct({
    content: Schema.optional(Schema.String),
    thinking: Schema.optional(Schema.String),
    tool_calls: Schema.optional(Schema.NullOr(Schema.Array(WireToolCall)))
  }),
  done_reason: Schema.optional(Schema.String),
  prompt_eval_count: Schema.optional(Schema.Number),
  eval_count: Schema.optional(Schema.Number)
})

/** Maps Ollama's `done_reason` to the unified set; unknown values become `"other"`. */
export const finishReasonOf = (reason: string | undefined, hasToolCalls: boolean): Message.FinishReason => {
  if (reason === undefined || reason === "stop") return stopOrToolCalls(hasToolCalls)
  if (reason === "length") return "length"
  return "other"
}

/** Arguments arrive as an object; some servers send them as JSON text. */
export const argumentsText = (args: unknown): string =>
  typeof args === "string" ? args : JSON.stringify(args ?? {})

/**
 * Ollama sends no call ids (newer versions may): a synthetic id per call, the same for
 * `chat` and `stream` of one response.
 */
export const toolCallId = (index: number, wireId?: string): string => callId(wireId, `call_${index}`)

/** The eval counts as usage; undefined when Ollama sent neither. */
export const reportedUsage = (prompt: number | undefined, evalCount: number | undefined): Message.Usage | undefined => {
  if (prompt === undefined && evalCount === undefined) return undefined
  // a fully cached prompt comes back without prompt_eval_count
  const inputTokens = prompt ?? 0
  const outputTokens = evalCount ?? 0
  return { inputTokens, outputTokens, totalTokens: inputTokens + outputTokens, estimated: false }
}

/** Decodes a non-streaming `/api/chat` body into a `ChatResponse`. */
export const fromWireResponse = replyDecoder(WireResponse, (wire, { model, provider, request }) => {
  const toolCalls: Array<Message.ToolCall> = (wire.message.tool_calls ?? []).map((call, i) => ({
    id: toolCallId(i, call.id),
    name: call.function.name,
    arguments: argumentsText(call.function.arguments)
  }))
  return chatResponse(request, {
    id: wire.created_at ?? "",
    model: wire.model ?? model,
    provider,
    text: wire.message.content ?? "",
    reasoning: wire.message.thinking,
    toolCalls,
    finishReason: finishReasonOf(wire.done_reason, toolCalls.length > 0),
    usage: reportedUsage(wire.prompt_eval_count, wire.eval_count)
  })
})
