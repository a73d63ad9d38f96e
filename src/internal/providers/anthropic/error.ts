/**
 * Anthropic's error body, `{ "type": "error", "error": { "type", "message" } }`, the same in
 * a reply and as a stream's `error` event. Its `type` names the status (docs.claude.com/en/api/errors).
 */
import type { ErrorBody } from "../../../Provider.js"
import { isRecord, statusOfWords, str, tryJson } from "../../request/errorBody.js"

const statusOfType: Readonly<Record<string, number>> = {
  invalid_request_error: 400,
  authentication_error: 401,
  billing_error: 402,
  permission_error: 403,
  not_found_error: 404,
  request_too_large: 413,
  rate_limit_error: 429,
  api_error: 500,
  timeout_error: 504,
  overloaded_error: 529
}

const tagOf = (type: string | undefined, message: string | undefined, details: unknown): ErrorBody["tag"] => {
  if (type === "billing_error") return "QuotaExceededError"
  // a monthly spend limit comes as a rate limit that no wait lifts
  if (type === "rate_limit_error" && isRecord(details) && details.error_code === "enforced_spend_limit_reached") return "QuotaExceededError"
  if (message?.includes("prompt is too long") === true) return "ContextLengthError"
  return undefined
}

/** A parsed Anthropic error body; undefined for any other value. */
export const readAnthropicError = (json: unknown): ErrorBody | undefined => {
  if (!isRecord(json) || !isRecord(json.error)) return undefined
  const type = str(json.error.type)
  const message = str(json.error.message)
  const status = (type === undefined ? undefined : statusOfType[type]) ?? statusOfWords(`${type ?? ""} ${message ?? ""}`)
  return { message, type, tag: tagOf(type, message, json.error.details), status }
}

/** The spec's `readError`. */
export const readError = (body: string): ErrorBody | undefined => readAnthropicError(tryJson(body))
