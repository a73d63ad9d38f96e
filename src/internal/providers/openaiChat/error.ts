/**
 * OpenAI's error body, as Chat Completions and every compatible server send it:
 * `{ "error": { "message", "type", "param", "code" } }`; gateways (OpenRouter) put the
 * upstream HTTP status in a numeric `code`, some servers send `{ "error": "…" }`.
 */
import type { ErrorBody } from "../../../Provider.js"
import { errorFields, statusOfFields, tryJson } from "../../request/errorBody.js"

/** OpenAI's codes whose status the words alone would get wrong. */
const statusOfCode: Readonly<Record<string, number>> = { invalid_api_key: 401, insufficient_quota: 429 }

/** What an OpenAI error says beyond its status, from its type and code, else its message. */
const tagOf = (kind: string, message: string | undefined): ErrorBody["tag"] => {
  if (/insufficient_quota|billing_hard_limit/.test(kind)) return "QuotaExceededError"
  if (kind.includes("context_length_exceeded") || message?.includes("maximum context length") === true) return "ContextLengthError"
  // content_filter: Azure OpenAI's; content_policy_violation: OpenAI's
  if (/content_filter|content_policy/.test(kind)) return "ContentFilterError"
  return undefined
}

/** A parsed OpenAI error body; undefined for any other value. */
export const readOpenAiError = (json: unknown): ErrorBody | undefined => {
  const fields = errorFields(json)
  if (fields === undefined) return undefined
  const tag = tagOf(`${fields.type ?? ""} ${fields.code ?? ""}`, fields.message)
  const status = fields.status ?? (fields.code === undefined ? undefined : statusOfCode[fields.code]) ?? statusOfFields(fields)
  return { message: fields.message, type: fields.type, tag, status }
}

/** The spec's `readError`. */
export const readError = (body: string): ErrorBody | undefined => readOpenAiError(tryJson(body))
