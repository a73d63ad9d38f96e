/**
 * Maps HTTP statuses and provider error bodies to typed `LlmError`s. One mapping serves
 * every provider: OpenAI-style `{error:{message,type,code}}`, Anthropic
 * `{type:"error",error:{type,message}}` and Gemini `{error:{code,message,status,details}}`.
 */
import * as Duration from "effect/Duration"
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Redacted from "effect/Redacted"
import * as Err from "../../LlmError.js"
import { derivedPattern } from "./credentials.js"

export interface ErrorInfo {
  readonly message: string | undefined
  readonly type: string | undefined
  readonly code: string | undefined
  /** Gemini's `RetryInfo.retryDelay`, e.g. `"13s"`. */
  readonly retryDelay: string | undefined
}

const str = (u: unknown): string | undefined =>
  typeof u === "string" ? u : typeof u === "number" ? String(u) : undefined

/** Reads whatever error fields a body has; never throws. */
export const errorInfo = (body: unknown): ErrorInfo => {
  let message: string | undefined
  let type: string | undefined
  let code: string | undefined
  let retryDelay: string | undefined
  if (typeof body === "object" && body !== null) {
    const outer = body as Record<string, unknown>
    const inner = (typeof outer.error === "object" && outer.error !== null ? outer.error : outer) as Record<string, unknown>
    message = str(inner.message) ?? (typeof outer.error === "string" ? outer.error : undefined)
    type = str(inner.type) ?? str(inner.status)
    code = str(inner.code)
    if (Array.isArray(inner.details)) {
      for (const detail of inner.details) {
        if (typeof detail === "object" && detail !== null && typeof (detail as { retryDelay?: unknown }).retryDelay === "string") {
          retryDelay = (detail as { retryDelay: string }).retryDelay
        }
      }
    }
  }
  return { message, type, code, retryDelay }
}

/** Parses JSON or returns undefined. */
export const tryJson = (text: string): unknown => {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

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

export interface ResponseContext {
  readonly provider: string
  readonly model: string
  readonly status: number
  /** The status the reply really had, when `status` was inferred from an error body sent with another. */
  readonly sentWith?: number | undefined
  readonly headers: Readonly<Record<string, string | undefined>>
  readonly body: string
  readonly now: number
}

const has = (haystack: string | undefined, needle: string) => haystack !== undefined && haystack.includes(needle)

/** The typed error for a non-2xx response. */
export const fromResponse = (ctx: ResponseContext): Err.LlmError => {
  const parsed = tryJson(ctx.body)
  const info = errorInfo(parsed)
  const { provider, model, status } = ctx
  const detail = info.message ?? (parsed === undefined ? Err.excerptOf(ctx.body) : undefined)
  const sent = ctx.sentWith === undefined ? `${status}` : `error body (sent with HTTP ${ctx.sentWith})`
  const message = `${provider} ${sent}${info.type ? ` ${info.type}` : ""}${detail ? `: ${detail}` : ""}`
  const base = { provider, model, message, status }
  const shouldRetry = ctx.headers["x-should-retry"]
  const override = shouldRetry === "true" ? { retryable: true } : shouldRetry === "false" ? { retryable: false } : {}
  const tag = `${info.type ?? ""} ${info.code ?? ""}`

  if (has(tag, "insufficient_quota") || has(tag, "billing_hard_limit") || has(tag, "billing_error")) return new Err.QuotaExceededError({ ...base, ...override })
  if (has(tag, "context_length_exceeded") || has(info.message, "maximum context length") || has(info.message, "prompt is too long")) {
    return new Err.ContextLengthError({ ...base, ...override })
  }
  if (has(tag, "content_filter") || has(tag, "content_policy")) return new Err.ContentFilterError({ ...base, ...override })
  if (status === 401) return new Err.AuthenticationError({ ...base, ...override })
  if (status === 403) return new Err.PermissionError({ ...base, ...override })
  if (status === 429) {
    const retryAfter = retryAfterOf(ctx.headers, ctx.now) ??
      (info.retryDelay === undefined ? undefined : durationOf(parseGoDuration(info.retryDelay)))
    return new Err.RateLimitError({ ...base, ...override, ...(retryAfter === undefined ? {} : { retryAfter }) })
  }
  if (status === 408) return new Err.TimeoutError({ provider, model, message, phase: "server", ...override })
  if (status === 409) return new Err.InvalidRequestError({ ...base, retryable: true, ...override })
  if (status >= 500) {
    const retryAfter = retryAfterOf(ctx.headers, ctx.now)
    return new Err.ServerError({ ...base, ...override, ...(retryAfter === undefined ? {} : { retryAfter }) })
  }
  return new Err.InvalidRequestError({ ...base, ...override })
}

/** Whether a body starts like an error object (`{"error": …` or `{"type": "error", …`): cheap, no parse. */
export const startsLikeErrorBody = (body: string): boolean => /^\s*\{\s*"(?:error"|type"\s*:\s*"error")/.test(body.slice(0, 64))

/** The HTTP status an error body stands for, read from its numeric code, else its type, else its message. */
const statusOfInfo = (info: ErrorInfo): number => {
  const numeric = info.code === undefined ? NaN : Number(info.code)
  if (Number.isInteger(numeric) && numeric >= 400 && numeric <= 599) return numeric
  // an error with neither type nor code (Ollama's `{"error": "…"}`) is read by its message
  const kind = (info.type === undefined && info.code === undefined ? info.message ?? "" : `${info.type ?? ""} ${info.code ?? ""}`)
    .toLowerCase()
  const is = (pattern: RegExp) => pattern.test(kind)
  if (is(/insufficient[ _]quota|billing|rate[ _-]?limit|too[ _]many[ _]requests|resource[ _]exhausted|throttl/)) return 429
  if (is(/overloaded/)) return 529
  if (is(/authentication|invalid[ _]api[ _]key|unauthenticated|unauthorized/)) return 401
  if (is(/permission|forbidden/)) return 403
  if (is(/not[ _]found/)) return 404
  if (is(/context[ _]length|invalid[ _]request|invalid[ _]argument|bad[ _]request|content[ _](filter|policy)/)) return 400
  if (is(/deadline[ _]exceeded|timeout|timed out/)) return 504
  // a server error, or a kind this mapping does not know: retryable, as a 5xx
  return is(/unavailable/) ? 503 : 500
}

/**
 * A body sent with a 2xx status that is an error object (`{"error": {…}}`, Anthropic's
 * `{"type": "error", …}`, Ollama's `{"error": "…"}`), as the error the same body under its
 * own status would be; undefined for any other body.
 */
export const embeddedError = (ctx: Omit<ResponseContext, "status" | "sentWith">): Err.LlmError | undefined => {
  const parsed = tryJson(ctx.body)
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return undefined
  const body = parsed as Record<string, unknown>
  const inner = body.error
  const isError = (typeof inner === "object" && inner !== null && !Array.isArray(inner)) ||
    (typeof inner === "string" && inner.length > 0 &&
      Object.keys(body).every((key) => key === "error" || key === "code" || key === "status" || key === "message" || key === "type"))
  if (!isError) return undefined
  return fromResponse({ ...ctx, status: statusOfInfo(errorInfo(body)), sentWith: 200 })
}

const durationOf = (ms: number | undefined) => (ms === undefined ? undefined : Duration.millis(ms))

/** An error event inside a stream (`data: {"error": …}` or `event: error`). */
export const fromStreamErrorEvent = (
  provider: string,
  model: string,
  payload: unknown,
  partialText: string,
  partial: boolean
): Err.StreamError => {
  const info = errorInfo(payload)
  const kind = info.type ?? info.code
  return new Err.StreamError({
    provider,
    model,
    message: `${provider} stream error${kind ? ` ${kind}` : ""}: ${info.message ?? "unknown error"}`,
    partial,
    partialText,
    retryable: !(has(kind, "invalid_request") || has(kind, "insufficient_quota") || has(kind, "authentication"))
  })
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

/**
 * A JSON body decoded with a provider's tolerant response schema, or the typed error that
 * says what was wrong with it.
 */
export const decodeJsonBody = <A>(
  decode: (u: unknown) => Either.Either<A, ParseResult.ParseError>,
  provider: string,
  model: string,
  body: string,
  status: number
): Either.Either<A, Err.MalformedResponseError> => {
  const json = tryJson(body)
  if (json === undefined) return Either.left(malformed(provider, model, body, "body is not JSON", status))
  return Either.mapLeft(decode(json), (error) => malformed(provider, model, body, ParseResult.TreeFormatter.formatErrorSync(error), status))
}

/** One stream frame parsed as a JSON object, or the typed error for a frame that is not one. */
export const jsonObjectFrame = (
  provider: string,
  model: string,
  data: string,
  what = "a stream event"
): Record<string, unknown> | Err.MalformedResponseError => {
  const json = tryJson(data)
  return typeof json === "object" && json !== null && !Array.isArray(json)
    ? (json as Record<string, unknown>)
    : malformed(provider, model, data, `${what} is not a JSON object`)
}
