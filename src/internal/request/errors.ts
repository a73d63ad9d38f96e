/**
 * Maps a reply to its typed `LlmError` by HTTP: the status picks the class, `retry-after`
 * and `x-should-retry` apply. What the body says is read by the API's own reader (its spec's
 * `readError`, in its folder), or generically (`errorBody.ts`).
 */
import * as Duration from "effect/Duration"
import * as Redacted from "effect/Redacted"
import * as Err from "../../LlmError.js"
import type { ErrorBody } from "../../Provider.js"
import { isRecord, looseReading, type ReadError, readErrorBody, readErrorObject, readSafely, statusOfWords, str } from "./errorBody.js"
import { derivedPattern } from "./credentials.js"

/** Parses `1.5s`, `13s`, `250ms` and Go-style `6m0s` / `1h2m3.5s` durations. */
export const parseGoDuration = (input: string): number | undefined => {
  const text = input.trim()
  if (text.length === 0) return undefined
  if (/^\d+(\.\d+)?$/.test(text)) return Number(text) * 1000
  const re = /(\d+(?:\.\d+)?)(ms|h|m|s|us|µs|ns)/gy
  let total = 0
  let consumed = 0
  let match: RegExpExecArray | null
  while ((match = re.exec(text)) !== null) {
    const n = Number(match[1])
    switch (match[2]) {
      case "h": total += n * 3_600_000; break
      case "m": total += n * 60_000; break
      case "s": total += n * 1000; break
      case "ms": total += n; break
      case "us": case "µs": total += n / 1000; break
      case "ns": total += n / 1_000_000; break
    }
    consumed = re.lastIndex
  }
  return consumed === text.length ? total : undefined
}

const months = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]

/**
 * An HTTP date (RFC 9110: `Sun, 06 Nov 1994 08:49:37 GMT`, or the obsolete RFC 850 and
 * asctime forms) as epoch millis; anything else is undefined (`Date.parse` alone takes "1 2").
 */
export const parseHttpDate = (input: string): number | undefined => {
  const text = input.trim()
  let m = /^[A-Za-z]{3}, (\d{2}) ([A-Za-z]{3}) (\d{4}) (\d{2}):(\d{2}):(\d{2}) GMT$/.exec(text)
  let day: string, month: string, year: number, clock: [string, string, string]
  if (m !== null) [day, month, year, clock] = [m[1]!, m[2]!, Number(m[3]), [m[4]!, m[5]!, m[6]!]]
  else if ((m = /^[A-Za-z]+, (\d{2})-([A-Za-z]{3})-(\d{2}) (\d{2}):(\d{2}):(\d{2}) GMT$/.exec(text)) !== null) {
    const yy = Number(m[3])
    ;[day, month, year, clock] = [m[1]!, m[2]!, yy < 70 ? 2000 + yy : 1900 + yy, [m[4]!, m[5]!, m[6]!]]
  } else if ((m = /^[A-Za-z]{3} ([A-Za-z]{3}) ([ \d]\d) (\d{2}):(\d{2}):(\d{2}) (\d{4})$/.exec(text)) !== null) {
    ;[day, month, year, clock] = [m[2]!.trim(), m[1]!, Number(m[6]), [m[3]!, m[4]!, m[5]!]]
  } else return undefined
  const monthIndex = months.indexOf(month.toLowerCase())
  if (monthIndex < 0) return undefined
  const at = Date.UTC(year, monthIndex, Number(day), Number(clock[0]), Number(clock[1]), Number(clock[2]))
  return Number.isFinite(at) ? at : undefined
}

/**
 * `retry-after-ms`, else `retry-after` as seconds or an HTTP date. A value that asks for no
 * wait at all (0, negative, a date not in the future) or does not parse is absent: the caller
 * falls back to its own backoff, never to an immediate re-send.
 */
export const retryAfterOf = (
  headers: Readonly<Record<string, string | undefined>>,
  now: number
): Duration.Duration | undefined => {
  const ms = headers["retry-after-ms"]
  if (ms !== undefined && /^\s*\d+(\.\d+)?\s*$/.test(ms)) {
    const n = Number(ms)
    if (n > 0) return Duration.millis(n)
  }
  const value = headers["retry-after"]
  if (value !== undefined) {
    const trimmed = value.trim()
    if (/^\d+(\.\d+)?$/.test(trimmed)) {
      const seconds = Number(trimmed)
      return seconds > 0 ? Duration.millis(seconds * 1000) : undefined
    }
    const date = parseHttpDate(trimmed)
    if (date !== undefined && date > now) return Duration.millis(date - now)
  }
  return undefined
}

/** What the request path knows of a reply besides its body. */
export interface ReplyHead {
  readonly provider: string
  readonly model: string
  readonly status: number
  /** The status the reply really had, when `status` was inferred from an error body sent with another. */
  readonly sentWith?: number | undefined
  readonly headers: Readonly<Record<string, string | undefined>>
  readonly now: number
}

export interface ResponseContext extends ReplyHead {
  readonly body: string
}

type BodyTag = NonNullable<ErrorBody["tag"]>

type Fields = { readonly provider: string; readonly model: string; readonly message: string; readonly status: number; readonly retryable?: boolean }

/** The classes a body can name over its status. */
const byTag: { readonly [T in BodyTag]: (fields: Fields) => Err.LlmError } = {
  QuotaExceededError: (fields) => new Err.QuotaExceededError(fields),
  ContextLengthError: (fields) => new Err.ContextLengthError(fields),
  ContentFilterError: (fields) => new Err.ContentFilterError(fields)
}

/** The status each of those classes usually comes with, for a body sent without one. */
const statusOfTag: { readonly [T in BodyTag]: number } = { QuotaExceededError: 429, ContextLengthError: 400, ContentFilterError: 400 }

const positive = (duration: Duration.Duration | undefined) =>
  duration !== undefined && Duration.isDuration(duration) && Duration.toMillis(duration) > 0 ? duration : undefined

/** The typed error for a reply with `head`'s status whose body says `reading`. */
export const errorOf = (head: ReplyHead, reading: ErrorBody): Err.LlmError => {
  const { provider, model, status } = head
  const sent = head.sentWith === undefined ? `${status}` : `error body (sent with HTTP ${head.sentWith})`
  const message = `${provider} ${sent}${reading.type ? ` ${reading.type}` : ""}${reading.message ? `: ${reading.message}` : ""}`
  const shouldRetry = head.headers["x-should-retry"]
  const base: Fields = shouldRetry === "true" || shouldRetry === "false"
    ? { provider, model, message, status, retryable: shouldRetry === "true" }
    : { provider, model, message, status }
  if (reading.tag !== undefined && Object.hasOwn(byTag, reading.tag)) return byTag[reading.tag](base)
  if (status === 401) return new Err.AuthenticationError(base)
  if (status === 403) return new Err.PermissionError(base)
  if (status === 429 || status >= 500) {
    const retryAfter = retryAfterOf(head.headers, head.now) ?? positive(reading.retryAfter)
    const fields = retryAfter === undefined ? base : { ...base, retryAfter }
    return status === 429 ? new Err.RateLimitError(fields) : new Err.ServerError(fields)
  }
  if (status === 408) {
    const { status: _, ...fields } = base
    return new Err.TimeoutError({ retryable: true, ...fields, phase: "server" })
  }
  if (status === 409) return new Err.InvalidRequestError({ retryable: true, ...base })
  return new Err.InvalidRequestError(base)
}

/** The typed error for a non-2xx response, its body read by the API's reader (else generically). */
export const fromResponse = (ctx: ResponseContext, read: ReadError = readErrorBody): Err.LlmError =>
  errorOf(ctx, readSafely(read, ctx.body) ?? looseReading(ctx.body))

/**
 * Whether a 2xx body starts like an object that says first that it is an error (`{"error": …`,
 * `{"type": "error", …`): cheap, no parse, so that a reply is not parsed twice.
 */
export const startsLikeErrorBody = (body: string): boolean => /^\s*\{\s*"(?:error"|type"\s*:\s*"error")/.test(body.slice(0, 64))

/** The HTTP status an error body stands for: its own, else its class's, else its words', else a server error. */
export const statusOfReading = (reading: ErrorBody): number => {
  const own = reading.status
  if (own !== undefined && Number.isInteger(own) && own >= 400 && own <= 599) return own
  if (reading.tag !== undefined && Object.hasOwn(statusOfTag, reading.tag)) return statusOfTag[reading.tag]
  // a kind no word says: retryable, as a 5xx
  return statusOfWords(`${reading.type ?? ""} ${reading.message ?? ""}`) ?? 500
}

/**
 * A body sent with a 2xx status that its API's reader takes for an error (gateways send rate
 * limits and outages that way), as the error the same body under its own status would be;
 * undefined for any other body.
 */
export const embeddedError = (head: Omit<ReplyHead, "status" | "sentWith">, body: string, read: ReadError): Err.LlmError | undefined => {
  const reading = readSafely(read, body)
  return reading === undefined ? undefined : errorOf({ ...head, status: statusOfReading(reading), sentWith: 200 }, reading)
}

const noHeaders: Readonly<Record<string, string | undefined>> = {}

/** An error event inside a stream, as its API's reader read it. */
export const streamErrorOf = (
  provider: string,
  model: string,
  reading: ErrorBody,
  partialText: string,
  partial: boolean
): Err.StreamError =>
  new Err.StreamError({
    provider,
    model,
    message: `${provider} stream error${reading.type ? ` ${reading.type}` : ""}: ${reading.message ?? "unknown error"}`,
    partial,
    partialText,
    // retryable as the same error would be as a reply of its own
    retryable: errorOf({ provider, model, status: statusOfReading(reading), headers: noHeaders, now: 0 }, reading).retryable
  })

/** A parsed stream error event read by `read`, else generically. */
export const readStreamError = (read: (json: unknown) => ErrorBody | undefined, payload: unknown): ErrorBody => {
  const reading = readSafely(read, payload) ?? readErrorObject(payload)
  if (reading !== undefined) return reading
  return isRecord(payload) ? { message: str(payload.message), type: str(payload.type) ?? str(payload.code) } : {}
}

export const malformed = (provider: string, model: string, body: string, why: string, status?: number) =>
  new Err.MalformedResponseError({
    provider,
    model,
    message: `${provider} sent a malformed response: ${why}`,
    excerpt: Err.excerptOf(body),
    ...(status === undefined ? {} : { status })
  })

/**
 * The same error with some fields changed. Spreading an error would drop `message` (an
 * Error's message is not enumerable), and the constructor would throw.
 */
export const withFields = <E extends Err.LlmError>(error: E, patch: Partial<Omit<E, "_tag">>): E => {
  const { _tag: _, ...props } = error as unknown as Record<string, unknown>
  const Class = error.constructor as new(props: Record<string, unknown>) => E
  return new Class({ ...props, message: error.message, ...patch })
}

const secretMask = "[redacted]"

/**
 * A function masking `secret` in a text, in the forms a key takes when a server quotes it back
 * (as sent, inside a JSON string, in a URL), and every credential its auth scheme made from it
 * (`credentials.maskDerived`); undefined when there is nothing to mask.
 */
const maskerOf = (secret: Redacted.Redacted<string> | undefined): ((text: string) => string) | undefined => {
  if (secret === undefined) return undefined
  const value = Redacted.value(secret)
  const forms = value.length === 0 ? [] : [...new Set([value, JSON.stringify(value).slice(1, -1), encodeURIComponent(value), encodeURI(value)])]
  const derived = derivedPattern(secret)
  if (forms.length === 0 && derived === undefined) return undefined
  return (text) => {
    let masked = text
    for (const form of forms) masked = masked.split(form).join(secretMask)
    return derived === undefined ? masked : masked.replace(derived, secretMask)
  }
}

/** `text` with `secret`, and the credentials made from it, masked (see `redactSecret`). */
export const maskSecret = (text: string, secret: Redacted.Redacted<string> | undefined): string => maskerOf(secret)?.(text) ?? text

/**
 * Masks a leased key wherever a provider echoed it back (some compatible servers quote the
 * whole `Authorization` header in their 401 body), and so every credential signed from it,
 * so that no error ever carries a key.
 */
export const redactSecret = <E extends Err.LlmError>(error: E, secret: Redacted.Redacted<string> | undefined): E => {
  const mask = maskerOf(secret)
  if (mask === undefined) return error
  const fields = error as unknown as { message: string; excerpt?: unknown; partialText?: unknown }
  const leaks = (u: unknown) => typeof u === "string" && mask(u) !== u
  if (!leaks(fields.message) && !leaks(fields.excerpt) && !leaks(fields.partialText)) return error
  const masked = (u: unknown) => (typeof u === "string" ? mask(u) : u)
  const { _tag: _, ...props } = error as unknown as Record<string, unknown>
  const rebuilt: Record<string, unknown> = { ...props, message: masked(fields.message) }
  if (fields.excerpt !== undefined) rebuilt.excerpt = masked(fields.excerpt)
  if (fields.partialText !== undefined) rebuilt.partialText = masked(fields.partialText)
  const Class = error.constructor as new(props: Record<string, unknown>) => E
  return new Class(rebuilt)
}
