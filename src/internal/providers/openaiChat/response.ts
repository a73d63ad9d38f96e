/** Chat Completions replies, decoded tolerantly: only what we use, unknown fields ignored. */
import * as Schema from "effect/Schema"
import * as Err from "../../../LlmError.js"
import type * as Message from "../../../Message.js"
import { chatResponse, stopOrToolCalls } from "../chatResponse.js"
import { optionalNullable, replyDecoder } from "../decoding.js"
import { callId } from "../toolCalls.js"

export const WireUsage = Schema.Struct({
  // optional: a usage object without counts means "no usage", not a broken response
  prompt_tokens: optionalNullable(Schema.Number),
  completion_tokens: optionalNullable(Schema.Number),
  total_tokens: optionalNullable(Schema.Number),
  prompt_tokens_details: optionalNullable(Schema.Struct({
    cached_tokens: optionalNullable(Schema.Number),
    // OpenRouter's count of tokens written to a provider's cache
    cache_write_tokens: optionalNullable(Schema.Number)
  })),
  completion_tokens_details: optionalNullable(Schema.Struct({ reasoning_tokens: optionalNullable(Schema.Number) })),
  // DeepSeek's cache hits, where it sends no prompt_tokens_details
  prompt_cache_hit_tokens: optionalNullable(Schema.Number),
  // OpenRouter's charge for the request, in US dollars
  cost: optionalNullable(Schema.Number)
})

/**
 * A tool call; `function` for function tools, `custom` for OpenAI's free-form custom tools.
 * Some compatible servers omit `id`.
 */
export const WireToolCall = Schema.Struct({
  id: optionalNullable(Schema.String),
  function: optionalNullable(Schema.Struct({ name: Schema.String, arguments: optionalNullable(Schema.Unknown) })),
  custom: optionalNullable(Schema.Struct({ name: Schema.String, input: optionalNullable(Schema.String) }))
})

export const WireResponse = Schema.Struct({
  id: Schema.optional(Schema.String),
  model: Schema.optional(Schema.String),
  choices: Schema.NonEmptyArray(
    Schema.Struct({
      message: Schema.Struct({
        // a string, or (some compatible servers) an array of text parts
        content: optionalNullable(Schema.Unknown),
        reasoning_content: optionalNullable(Schema.String),
        reasoning: optionalNullable(Schema.String),
        refusal: optionalNullable(Schema.String),
        tool_calls: optionalNullable(Schema.Array(WireToolCall))
      }),
      finish_reason: optionalNullable(Schema.String)
    })
  ),
  usage: optionalNullable(WireUsage),
  // OpenRouter: the upstream provider that served the request
  provider: optionalNullable(Schema.String)
})

/** Maps a provider's finish reason to the unified set; unknown values become `"other"`. */
export const finishReasonOf = (reason: string | null | undefined, hasToolCalls: boolean): Message.FinishReason => {
  switch (reason) {
    case "length":
      return "length"
    case "tool_calls":
    case "function_call":
      return "tool_calls"
    case "content_filter":
      return "content_filter"
    case "stop":
    case null:
    case undefined:
      return stopOrToolCalls(hasToolCalls)
    default:
      return "other"
  }
}

/**
 * Usage as the provider reported it; undefined when it reported no token counts. Cache reads
 * are OpenAI's `prompt_tokens_details.cached_tokens` or DeepSeek's `prompt_cache_hit_tokens`;
 * cache writes and the dollar cost are OpenRouter's.
 */
export const usageOf = (usage: typeof WireUsage.Type): Message.Usage | undefined => {
  const input = usage.prompt_tokens
  const output = usage.completion_tokens
  if (typeof input !== "number" || typeof output !== "number") return undefined
  const total = usage.total_tokens
  const result: { -readonly [K in keyof Message.Usage]: Message.Usage[K] } = {
    inputTokens: input,
    outputTokens: output,
    totalTokens: typeof total === "number" ? total : input + output,
    estimated: false
  }
  const reasoning = usage.completion_tokens_details?.reasoning_tokens
  if (typeof reasoning === "number") result.reasoningTokens = reasoning
  const cached = usage.prompt_tokens_details?.cached_tokens ?? usage.prompt_cache_hit_tokens
  if (typeof cached === "number") result.cachedInputTokens = cached
  const written = usage.prompt_tokens_details?.cache_write_tokens
  if (typeof written === "number") result.cacheWriteTokens = written
  if (typeof usage.cost === "number" && Number.isFinite(usage.cost) && usage.cost >= 0) result.cost = usage.cost
  return result
}

/** The text of a message's `content`: a string, or the text of its parts. */
const contentTextOf = (content: unknown): string => {
  if (typeof content === "string") return content
  if (!Array.isArray(content)) return ""
  let text = ""
  for (const part of content) {
    if (typeof part === "object" && part !== null && typeof (part as { text?: unknown }).text === "string") {
      text += (part as { text: string }).text
    }
  }
  return text
}

/** Providers that omit a tool call's id still need one to pair the result with the call. */
export const fallbackCallId = (index: number) => `call_${index}`

const toolCallOf = (call: typeof WireToolCall.Type, index: number): Message.ToolCall | undefined => {
  const id = callId(call.id, fallbackCallId(index))
  if (call.function !== undefined && call.function !== null) {
    const args = call.function.arguments
    // some servers send arguments as an object rather than JSON text
    const text = typeof args === "string" ? args : args === undefined || args === null ? "" : JSON.stringify(args)
    return { id, name: call.function.name, arguments: text }
  }
  if (call.custom !== undefined && call.custom !== null) return { id, name: call.custom.name, arguments: call.custom.input ?? "" }
  return undefined
}

/** Decodes a non-streaming Chat Completions body into a `ChatResponse`. */
export const fromWireResponse = replyDecoder(WireResponse, (wire, { model, provider, request, status }) => {
  const choice = wire.choices[0]
  const message = choice.message
  const text = contentTextOf(message.content)
  if (choice.finish_reason === "content_filter" && text.length === 0) {
    return new Err.ContentFilterError({ provider, model, message: `${provider}: the reply was withheld by a content filter`, status })
  }
  const toolCalls: Array<Message.ToolCall> = []
  for (const call of message.tool_calls ?? []) {
    const mapped = toolCallOf(call, toolCalls.length)
    if (mapped !== undefined) toolCalls.push(mapped)
  }
  return chatResponse(request, {
    id: wire.id ?? "",
    model: wire.model ?? model,
    provider,
    text,
    reasoning: message.reasoning_content ?? message.reasoning ?? undefined,
    toolCalls,
    finishReason: finishReasonOf(choice.finish_reason, toolCalls.length > 0),
    usage: wire.usage ? usageOf(wire.usage) : undefined,
    upstreamProvider: wire.provider ?? undefined
  })
})
