/**
 * What every provider refuses, checked before a request is sent: an invalid request becomes an
 * `InvalidRequestError` naming the field path, instead of a round trip, a silent default
 * (`JSON.stringify(NaN)` is `null`, which a provider reads as "not set") or a provider's 400.
 * The ranges are the widest any provider documents; a provider's narrower ones are its own.
 */
import * as Err from "../../LlmError.js"
import type { ChatRequest } from "../../Message.js"

/** Why a request cannot be sent: the path of the field, and what is wrong with it. */
export interface Invalid {
  readonly path: string
  readonly problem: string
}

const ranges: ReadonlyArray<readonly [keyof ChatRequest & string, number, number, boolean]> = [
  // field, min, max, whole numbers only
  ["temperature", 0, 2, false],
  ["topP", 0, 1, false],
  ["maxTokens", 1, Number.MAX_SAFE_INTEGER, true],
  ["seed", Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER, true],
  ["presencePenalty", -2, 2, false],
  ["frequencyPenalty", -2, 2, false]
]

/** The first reason `request` cannot be sent, or undefined. */
export const invalidField = (request: ChatRequest): Invalid | undefined => {
  if (request.messages.length === 0) return { path: "messages", problem: "is empty: a request needs at least one message" }
  for (const [field, min, max, whole] of ranges) {
    const value = request[field]
    if (value === undefined) continue
    if (typeof value !== "number" || !Number.isFinite(value)) return { path: field, problem: `must be a finite number, got ${String(value)}` }
    if (whole && !Number.isInteger(value)) return { path: field, problem: `must be a whole number, got ${value}` }
    if (value < min || value > max) {
      return { path: field, problem: field === "maxTokens" ? `must be at least 1, got ${value}` : `must be between ${min} and ${max}, got ${value}` }
    }
  }
  // a tool result answers a call made earlier in the conversation; providers reject it otherwise
  const calls = new Set<string>()
  for (const [index, message] of request.messages.entries()) {
    if (message.role === "assistant") message.toolCalls?.forEach((call) => calls.add(call.id))
    else if (message.role === "tool" && !calls.has(message.toolCallId)) {
      return { path: `messages[${index}].toolCallId`, problem: `${JSON.stringify(message.toolCallId)} matches no tool call of an earlier assistant message` }
    }
  }
  return undefined
}

/** `invalidField` as the typed error a provider's call fails with. */
export const validateRequest = (request: ChatRequest, provider: string, model: string): Err.InvalidRequestError | undefined => {
  const invalid = invalidField(request)
  return invalid === undefined
    ? undefined
    : new Err.InvalidRequestError({ provider, model, message: `invalid request, not sent: request.${invalid.path} ${invalid.problem}` })
}
