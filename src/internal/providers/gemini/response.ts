/** `generateContent` replies, decoded tolerantly: only what we use, unknown fields ignored. */
import * as Schema from "effect/Schema"
import * as Err from "../../../LlmError.js"
import type * as Message from "../../../Message.js"
import { malformed } from "../../request/errors.js"
import { chatResponse, stopOrToolCalls } from "../chatResponse.js"
import { replyDecoder } from "../decoding.js"
import { reasoningItem } from "../reasoningState.js"
import { callId } from "../toolCalls.js"

export const WireUsage = Schema.Struct({
  promptTokenCount: Schema.optional(Schema.Number),
  candidatesTokenCount: Schema.optional(Schema.Number),
  totalTokenCount: Schema.optional(Schema.Number),
  thoughtsTokenCount: Schema.optional(Schema.Number),
  cachedContentTokenCount: Schema.optional(Schema.Number),
  toolUsePromptTokenCount: Schema.optional(Schema.Number)
})

const WireResponsePart = Schema.Struct({
  text: Schema.optional(Schema.String),
  thought: Schema.optional(Schema.Boolean),
  thoughtSignature: Schema.optional(Schema.String),
  functionCall: Schema.optional(Schema.Struct({
    id: Schema.optional(Schema.String),
    name: Schema.String,
    args: Schema.optional(Schema.Unknown)
  }))
})

export const WireResponse = Schema.Struct({
  candidates: Schema.optional(Schema.Array(Schema.Struct({
    content: Schema.optional(Schema.Struct({ parts: Schema.optional(Schema.Array(WireResponsePart)) })),
    finishReason: Schema.optional(Schema.String)
  }))),
  promptFeedback: Schema.optional(Schema.Struct({ blockReason: Schema.optional(Schema.String) })),
  usageMetadata: Schema.optional(WireUsage),
  modelVersion: Schema.optional(Schema.String),
  responseId: Schema.optional(Schema.String)
})

const filtered = new Set(["SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT"])

/** Maps Gemini's finish reason to the unified set; unknown values become `"other"`. */
export const finishReasonOf = (reason: string | undefined, hasToolCalls: boolean): Message.FinishReason => {
  if (reason === undefined || reason === "STOP") return stopOrToolCalls(hasToolCalls)
  if (reason === "MAX_TOKENS") return "length"
  if (filtered.has(reason)) return "content_filter"
  if (reason === "MALFORMED_FUNCTION_CALL" || reason === "UNEXPECTED_TOOL_CALL") return "error"
  return "other"
}

export const usageOf = (usage: typeof WireUsage.Type): Message.Usage => {
  const inputTokens = (usage.promptTokenCount ?? 0) + (usage.toolUsePromptTokenCount ?? 0)
  const outputTokens = (usage.candidatesTokenCount ?? 0) + (usage.thoughtsTokenCount ?? 0)
  const result: { -readonly [K in keyof Message.Usage]: Message.Usage[K] } = {
    inputTokens,
    outputTokens,
    totalTokens: usage.totalTokenCount ?? inputTokens + outputTokens,
    estimated: false
  }
  if (usage.thoughtsTokenCount !== undefined) result.reasoningTokens = usage.thoughtsTokenCount
  if (usage.cachedContentTokenCount !== undefined) result.cachedInputTokens = usage.cachedContentTokenCount
  return result
}

/**
 * The id of the `index`-th tool call of a response: Gemini's own when it sends one, else a
 * synthetic id that is the same for `chat` and `stream` of one response.
 */
export const toolCallId = (responseId: string, index: number, wireId?: string): string =>
  callId(wireId, `${responseId.length > 0 ? responseId : "gemini"}-call-${index}`)

/**
 * A thought signature and the part it belongs to: the function call with this id, or else the
 * reply's text. The next turn re-attaches it to the same part.
 */
export interface ThoughtSignature {
  readonly thoughtSignature: string
  readonly toolCallId?: string
}

/** The reasoning state of a reply's signatures: one per function call that had one, then the text's (the last). */
export const signatureState = (
  calls: ReadonlyArray<ThoughtSignature>,
  text: string | undefined
): Array<Message.ReasoningState> => {
  const out = calls.map((item) => reasoningItem("gemini", item))
  if (text !== undefined) out.push(reasoningItem("gemini", { thoughtSignature: text } satisfies ThoughtSignature))
  return out
}

/** Decodes a `generateContent` body into a `ChatResponse`. */
export const fromWireResponse = replyDecoder(WireResponse, (wire, { body, model, provider, request, status }) => {
  const candidate = wire.candidates?.[0]
  const block = wire.promptFeedback?.blockReason
  if (candidate === undefined) {
    if (block !== undefined) {
      return new Err.ContentFilterError({ provider, model, message: `${provider}: the prompt was blocked (${block})`, status })
    }
    return malformed(provider, model, body, "no candidates", status)
  }
  const id = wire.responseId ?? ""
  let text = ""
  let reasoning = ""
  const toolCalls: Array<Message.ToolCall> = []
  const callSignatures: Array<ThoughtSignature> = []
  let textSignature: string | undefined = undefined
  for (const part of candidate.content?.parts ?? []) {
    if (part.functionCall !== undefined) {
      const callId = toolCallId(id, toolCalls.length, part.functionCall.id)
      toolCalls.push({ id: callId, name: part.functionCall.name, arguments: JSON.stringify(part.functionCall.args ?? {}) })
      if (part.thoughtSignature !== undefined) callSignatures.push({ thoughtSignature: part.thoughtSignature, toolCallId: callId })
      continue
    }
    if (part.thoughtSignature !== undefined) textSignature = part.thoughtSignature
    if (part.text !== undefined) {
      if (part.thought === true) reasoning += part.text
      else text += part.text
    }
  }
  const finishReason = finishReasonOf(candidate.finishReason, toolCalls.length > 0)
  if (finishReason === "content_filter" && text.length === 0 && toolCalls.length === 0) {
    return new Err.ContentFilterError({
      provider,
      model,
      message: `${provider}: the reply was withheld (${candidate.finishReason})`,
      status
    })
  }
  const usage = wire.usageMetadata?.promptTokenCount !== undefined ? usageOf(wire.usageMetadata) : undefined
  return chatResponse(request, {
    id,
    model: wire.modelVersion ?? model,
    provider,
    text,
    reasoning,
    toolCalls,
    finishReason,
    usage,
    reasoningState: signatureState(callSignatures, textSignature)
  })
})
