/**
 * What an error body says, read generically: the common `{ "error": … }` shape, for a
 * provider that brings no reader of its own, and the words that stand for a status. An API's
 * own reader (`providers/<api>/error.ts`) builds on these.
 */
import * as Err from "../../LlmError.js"
import type { ErrorBody } from "../../Provider.js"

/** An API's reader of its error bodies, as a spec's `readError` is. */
export type ReadError = (body: string) => ErrorBody | undefined

/** A string, or a number as text; anything else is absent. */
export const str = (u: unknown): string | undefined =>
  typeof u === "string" ? u : typeof u === "number" ? String(u) : undefined

export const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

/** A numeric code that is an HTTP error status (gateways relay an upstream status that way). */
export const httpStatusOf = (code: unknown): number | undefined => {
  const n = typeof code === "number" ? code : typeof code === "string" && /^\d{3}$/.test(code) ? Number(code) : NaN
  return Number.isInteger(n) && n >= 400 && n <= 599 ? n : undefined
}

/**
 * The HTTP status that the words of an error's type, code or message stand for, for a body
 * sent without one (with 2xx, or as a stream event); undefined when no word says.
 */
export const statusOfWords = (words: string): number | undefined => {
  const kind = words.toLowerCase()
  const is = (pattern: RegExp) => pattern.test(kind)
  if (is(/quota|billing|rate[ _-]?limit|too[ _]many[ _]requests|throttl/)) return 429
  if (is(/overloaded/)) return 529
  if (is(/authentication|unauthenticated|unauthori[sz]ed/)) return 401
  if (is(/permission|forbidden/)) return 403
  if (is(/not[ _]found/)) return 404
  if (is(/context[ _]length|invalid[ _]request|invalid[ _]argument|bad[ _]request|content[ _](filter|policy)/)) return 400
  if (is(/deadline[ _]exceeded|timeout|timed out/)) return 504
  if (is(/unavailable/)) return 503
  return undefined
}

/** The fields of the common error shape: `{ error: { message, type | status, code } }`. */
export interface ErrorFields {
  readonly message: string | undefined
  readonly type: string | undefined
  readonly code: string | undefined
  /** The code, when it is an HTTP error status. */
  readonly status: number | undefined
}

const errorKeys = new Set(["error", "code", "status", "message", "type"])

/**
 * The common error shape, strictly: an `error` object, or an `error` string in an object with
 * no other fields than an error's (`{ "error": "…" }`); undefined for anything else,
 * so that a reply is never taken for an error.
 */
export const errorFields = (json: unknown): ErrorFields | undefined => {
  if (!isRecord(json)) return undefined
  const inner = json.error
  if (isRecord(inner)) {
    return { message: str(inner.message), type: str(inner.type) ?? str(inner.status), code: str(inner.code), status: httpStatusOf(inner.code) }
  }
  if (typeof inner === "string" && inner.length > 0 && Object.keys(json).every((key) => errorKeys.has(key))) {
    return { message: inner, type: str(json.type) ?? str(json.status), code: str(json.code), status: httpStatusOf(json.code) }
  }
  return undefined
}

/** The status the fields stand for: a numeric code, else the words of type and code, else of the message. */
export const statusOfFields = (fields: ErrorFields): number | undefined =>
  fields.status ??
    (fields.type === undefined && fields.code === undefined
      ? statusOfWords(fields.message ?? "")
      : statusOfWords(`${fields.type ?? ""} ${fields.code ?? ""}`))

/** The generic reading of a parsed body, for a provider that brings no reader of its own. */
export const readErrorObject = (json: unknown): ErrorBody | undefined => {
  const fields = errorFields(json)
  return fields === undefined ? undefined : { message: fields.message, type: fields.type, status: statusOfFields(fields) }
}

/** The generic reading of an error body. */
export const readErrorBody: ReadError = (body) => readErrorObject(tryJson(body))

/**
 * Whatever error fields a body has, for a non-2xx reply its API's reader did not know: the
 * common shape, or the top-level `message` and `type`, or an excerpt of a body that is not JSON.
 */
export const looseReading = (body: string): ErrorBody => {
  const json = tryJson(body)
  if (json === undefined) return { message: body.length > 0 ? Err.excerptOf(body) : undefined }
  const fields = errorFields(json)
  if (fields !== undefined) return { message: fields.message, type: fields.type }
  return isRecord(json) ? { message: str(json.message), type: str(json.type) ?? str(json.status) } : {}
}

/** A reader's result, or undefined when the reader (a user's) throws: the generic reading is used then. */
export const readSafely = <A>(read: (input: A) => ErrorBody | undefined, input: A): ErrorBody | undefined => {
  try {
    return read(input)
  } catch {
    return undefined
  }
}

/** Parses JSON or returns undefined. */
export const tryJson = (text: string): unknown => {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

