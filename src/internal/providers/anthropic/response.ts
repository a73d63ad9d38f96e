/** Messages replies, decoded tolerantly: only what we use, unknown fields ignored. */
import * as Schema from "effect/Schema"
import type * as Message from "../../../Message.js"
import { tryJson } from "../../request/errorBody.js"
import { chatResponse, stopOrToolCalls } from "../chatResponse.js"
import { optionalNullable, replyDecoder } from "../decoding.js"
import { reasoningItem } from "../reasoningState.js"
import { outputToolOf } from "./request.js"

export const WireUsage = Schema.Struct({
  input_tokens: optionalNullable(Schema.Number),
  output_tokens: optionalNullable(Schema.Number),
  cache_read_input_tokens: optionalNullable(Schema.Number),
  cache_creation_input_tokens: optionalNullable(Schema.Number)
})
export type WireUsage = typeof WireUsage.Type

/** A content block; the `type` stays an open string so new block kinds never break a decode. */
const WireBlock = Schema.Struct({
  type: Schema.String,
  text: Schema.optional(Schema.String),
  thinking: Schema.optional(Schema.String),
  signature: Schema.optional(Schema.String),
  data: Schema.optional(Schema.String),
  id: Schema.optional(Schema.String),
  name: Schema.optional(Schema.String),
  input: Schema.optional(Schema.Unknown)
})

export const WireResponse = Schema.Struct({
  id: Schema.optional(Schema.String),
  model: Schema.optional(Schema.String),
  content: Schema.Array(WireBlock),
  stop_reason: optionalNullable(Schema.String),
  usage: optionalNullable(WireUsage)
})

/** Maps Anthropic's `stop_reason` to the unified set; unknown values become `"other"`. */
export const finishReasonOf = (reason: string | null | undefined, hasToolCalls: boolean): Message.FinishReason => {
  switch (reason) {
    case "max_tokens":
    case "model_context_window_exceeded":
      return "length"
    case "tool_use":
      return "tool_calls"
    case "refusal":
      return "content_filter"
    case "end_turn":
    case "stop_sequence":
    case null:
    case undefined:
      return stopOrToolCalls(hasToolCalls)
    default:
      return "other"
  }
}

/**
 * Anthropic counts cache reads (`cache_read_input_tokens`) and writes
 * (`cache_creation_input_tokens`) apart from `input_tokens`; the unified `inputTokens` is all
 * of the prompt, as OpenAI reports it, with the reads and writes counted within it.
 */
export const usageOf = (usage: WireUsage): Message.Usage => {
  const cacheRead = usage.cache_read_input_tokens ?? 0
  const cacheWrite = usage.cache_creation_input_tokens ?? 0
  const inputTokens = (usage.input_tokens ?? 0) + cacheRead + cacheWrite
  const outputTokens = usage.output_tokens ?? 0
  const result: { -readonly [K in keyof Message.Usage]: Message.Usage[K] } = { inputTokens, outputTokens, totalTokens: inputTokens + outputTokens, estimated: false }
  if (usage.cache_read_input_tokens !== undefined && usage.cache_read_input_tokens !== null) result.cachedInputTokens = cacheRead
  if (usage.cache_creation_input_tokens !== undefined && usage.cache_creation_input_tokens !== null) result.cacheWriteTokens = cacheWrite
  return result
}

/**
 * Streamed input JSON in the form `chat` gives it (`JSON.stringify` of the decoded `input`),
 * so that a collected stream equals the `chat` response; text that does not parse (a call
 * cut by `max_tokens`) is kept as it came.
 */
export const canonical = (args: string): string => {
  const parsed = tryJson(args)
  return parsed === undefined ? args : JSON.stringify(parsed)
}

/** An input object as argument text; an empty input is `{}`, as the stream assembles it. */
export const argumentsOf = (input: unknown): string => (input === undefined || input === null ? "{}" : JSON.stringify(input))

/** A thinking block as the next turn must send it back: its text and signature, unchanged. */
export const thinkingState = (thinking: string, signature: string | undefined): Message.ReasoningState =>
  reasoningItem("anthropic", signature === undefined ? { type: "thinking", thinking } : { type: "thinking", thinking, signature })

/** A redacted thinking block, whose encrypted `data` goes back as it came. */
export const redactedState = (data: string): Message.ReasoningState => reasoningItem("anthropic", { type: "redacted_thinking", data })

/**
 * Decodes a non-streaming Messages body into a `ChatResponse`. Server-side tool blocks
 * (`server_tool_use`, web search results) are the provider's own business and are left out.
 * The output tool of a json_schema request is the reply's text, not a call; thinking and
 * redacted thinking blocks are its reasoning state.
 */
export const fromWireResponse = replyDecoder(WireResponse, (wire, { model, provider, request }) => {
  let text = ""
  let reasoning = ""
  let answered = false
  const toolCalls: Array<Message.ToolCall> = []
  const reasoningState: Array<Message.ReasoningState> = []
  const outputTool = outputToolOf(request)
  for (const block of wire.content) {
    if (block.type === "text" && block.text !== undefined) text += block.text
    else if (block.type === "thinking" && block.thinking !== undefined) {
      reasoning += block.thinking
      reasoningState.push(thinkingState(block.thinking, block.signature))
    } else if (block.type === "redacted_thinking" && block.data !== undefined) reasoningState.push(redactedState(block.data))
    else if (block.type === "tool_use" && block.id !== undefined && block.name !== undefined) {
      if (block.name === outputTool && !answered) {
        answered = true
        text += argumentsOf(block.input)
      } else toolCalls.push({ id: block.id, name: block.name, arguments: argumentsOf(block.input) })
    }
  }
  return chatResponse(request, {
    id: wire.id ?? "",
    model: wire.model ?? model,
    provider,
    text,
    reasoning,
    toolCalls,
    finishReason: answered && toolCalls.length === 0 ? outputFinish(wire.stop_reason) : finishReasonOf(wire.stop_reason, toolCalls.length > 0),
    usage: wire.usage ? usageOf(wire.usage) : undefined,
    reasoningState
  })
})

/** A reply through the output tool stopped to have the "tool" run: for the caller, it is done. */
export const outputFinish = (reason: string | null | undefined): Message.FinishReason =>
  reason === "tool_use" ? "stop" : finishReasonOf(reason, false)
