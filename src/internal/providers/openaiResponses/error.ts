/**
 * The Responses API's errors: OpenAI's error body for a reply, and in a stream the `error`
 * event (`{ "type": "error", "code", "message" }`, or with the error nested) and a failed
 * response's `error: { code, message }`. Their meaning is in `code`, so it is the type shown.
 */
import type { ErrorBody } from "../../../Provider.js"
import { isRecord, str, tryJson } from "../../request/errorBody.js"
import { readOpenAiError } from "../openaiChat/error.js"

/** A parsed Responses error (a body, an `error` event, a failed response's `{ error }`); undefined for any other value. */
export const readResponsesError = (json: unknown): ErrorBody | undefined => {
  if (!isRecord(json)) return undefined
  const inner = isRecord(json.error) ? json.error : json.type === "error" ? json : undefined
  if (inner === undefined) return readOpenAiError(json)
  const code = str(inner.code)
  const type = str(inner.type)
  return readOpenAiError({ error: { message: inner.message, type: code ?? (type === "error" ? undefined : type), code: inner.code } })
}

/** The spec's `readError`. */
export const readError = (body: string): ErrorBody | undefined => readResponsesError(tryJson(body))
