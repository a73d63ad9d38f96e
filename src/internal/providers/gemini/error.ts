/**
 * Google's error body, `{ "error": { "code", "message", "status", "details" } }`: `code` is
 * the HTTP status, `status` the RPC status name, and a `RetryInfo` detail says how long to
 * wait (`"retryDelay": "34.4s"`). A reply streamed without `alt=sse` wraps it in an array.
 */
import * as Duration from "effect/Duration"
import type { ErrorBody } from "../../../Provider.js"
import { parseGoDuration } from "../../request/errors.js"
import { httpStatusOf, isRecord, statusOfWords, str, tryJson } from "../../request/errorBody.js"

/** The RPC status names, for an error without its numeric code (cloud.google.com/apis/design/errors). */
const statusOfName: Readonly<Record<string, number>> = {
  INVALID_ARGUMENT: 400,
  FAILED_PRECONDITION: 400,
  OUT_OF_RANGE: 400,
  UNAUTHENTICATED: 401,
  PERMISSION_DENIED: 403,
  NOT_FOUND: 404,
  ABORTED: 409,
  ALREADY_EXISTS: 409,
  RESOURCE_EXHAUSTED: 429,
  CANCELLED: 499,
  INTERNAL: 500,
  UNKNOWN: 500,
  DATA_LOSS: 500,
  NOT_IMPLEMENTED: 501,
  UNAVAILABLE: 503,
  DEADLINE_EXCEEDED: 504
}

/** The wait a `RetryInfo` detail asks for, when positive. */
const retryDelayOf = (details: unknown): Duration.Duration | undefined => {
  if (!Array.isArray(details)) return undefined
  for (const detail of details) {
    if (isRecord(detail) && typeof detail.retryDelay === "string") {
      const ms = parseGoDuration(detail.retryDelay)
      if (ms !== undefined && ms > 0) return Duration.millis(ms)
    }
  }
  return undefined
}

/** A parsed Google error body; undefined for any other value. */
export const readGeminiError = (json: unknown): ErrorBody | undefined => {
  const body = Array.isArray(json) && json.length === 1 ? json[0] : json
  if (!isRecord(body) || !isRecord(body.error)) return undefined
  const error = body.error
  const message = str(error.message)
  const name = str(error.status)
  const status = httpStatusOf(error.code) ?? (name === undefined ? undefined : statusOfName[name]) ?? statusOfWords(message ?? "")
  const tooLong = message !== undefined && /input token count .* exceeds the maximum number of tokens/i.test(message)
  return { message, type: name, tag: tooLong ? "ContextLengthError" : undefined, status, retryAfter: retryDelayOf(error.details) }
}

/** The spec's `readError`. */
export const readError = (body: string): ErrorBody | undefined => readGeminiError(tryJson(body))
