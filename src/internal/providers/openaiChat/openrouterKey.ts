/**
 * OpenRouter's key endpoint (`GET {baseUrl}/key`): the key's credit limit, remaining credit and
 * usage, read when an OpenRouter stack starts and then periodically; fed to the limiter's
 * `reported` limits and to a budget.
 *
 * What is read, and why (OpenRouter's "Limits" page and its `/key` reference):
 * - `limit`, `limit_remaining` and `usage`, in USD, each on its own: a field that is not a
 *   finite amount (nor `null`, OpenRouter's "no limit") is ignored and named, never quoted, and
 *   the others still count. A negative `limit_remaining` reads as 0; amounts past a trillion
 *   are not a reading.
 * - Not `rate_limit`: documented as deprecated and "safe to ignore", and it is not the rate
 *   OpenRouter enforces (it reported `{requests: 1000, interval: "1h"}` for keys that may send
 *   far more). Paid models have no platform request cap; the free-model caps
 *   (`free_model_daily_requests`, 20 a minute) hold for `:free` variants only, account-wide,
 *   so no request rate from this endpoint is applied to a limiter.
 *
 * The body is read up to 64 KiB (a real one is under 1 KiB). Nothing logged carries the key or
 * a Bearer token, even when the endpoint or a proxy quotes them back.
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as ConfigError from "effect/ConfigError"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import * as KeyPool from "../../../KeyPool.js"
import * as RateLimiter from "../../../RateLimiter.js"
import { tryJson } from "../../request/errorBody.js"
import { maskSecret } from "../../request/errors.js"

export const source = "openrouter GET /key"

/** The most of a reply read: a real one is under 1 KiB. */
export const maxBodyBytes = 64 * 1024

/** Amounts at or past this (USD) are not a credit reading. */
const maxAmount = 1e12

/** One reading of the endpoint. */
export interface Reading {
  /** What the limiter records (`status().reported`): the credit only, never a request rate. */
  readonly reported: RateLimiter.ReportedLimits
  /** The remaining credit; `null` when the key has no limit; undefined when absent or unreadable. */
  readonly remaining: number | null | undefined
  /** The credit fields present but not an amount in range, by name (never their values). */
  readonly ignored: ReadonlyArray<string>
}

/**
 * One credit field: a finite amount in range, `null` (no limit), or undefined when absent or
 * unreadable (then named in `ignored`).
 */
const amountOf = (data: Record<string, unknown>, field: string, ignored: Array<string>): number | null | undefined => {
  if (!(field in data)) return undefined
  const value = data[field]
  if (value === null) return null
  if (typeof value === "number" && Number.isFinite(value) && Math.abs(value) < maxAmount) {
    if (value >= 0) return value
    // spent past the cap: nothing left
    if (field === "limit_remaining") return 0
  }
  ignored.push(field)
  return undefined
}

/** The reading of a 2xx body, or why it is not one (without quoting it). */
export const reportedOf = (body: string, at: number): Reading | string => {
  const json = tryJson(body)
  if (json === undefined) return "the reply is not JSON"
  const data = typeof json === "object" && json !== null ? (json as { data?: unknown }).data : undefined
  if (typeof data !== "object" || data === null || Array.isArray(data)) return "the reply has no data object"
  const fields = data as Record<string, unknown>
  const ignored: Array<string> = []
  const limit = amountOf(fields, "limit", ignored)
  const remaining = amountOf(fields, "limit_remaining", ignored)
  const used = amountOf(fields, "usage", ignored)
  return {
    reported: { source, at, credit: { limit: limit ?? undefined, remaining: remaining ?? undefined, used: used ?? undefined } },
    remaining,
    ignored
  }
}

/** What the reading feeds its credit to: a `Budget.Controller` (named by shape, not imported). */
export interface CreditSink {
  readonly setCredit: (credit: { readonly remaining: number; readonly source: string } | undefined) => Effect.Effect<void>
}

/** The layer's options as given (see `OpenAiCompatible.OpenRouterLimitsOptions`). */
export interface LayerOptions {
  readonly baseUrl: string
  readonly every?: Duration.DurationInput | undefined
  readonly budget?: CreditSink | undefined
  readonly timeout?: Duration.DurationInput | undefined
}

export interface Options {
  readonly baseUrl: string
  readonly budget?: CreditSink | undefined
  readonly timeout: Duration.Duration
}

/** The shortest period between readings: the endpoint is metadata, not a heartbeat. */
export const minEvery = Duration.seconds(10)

const invalid = (option: string, message: string) =>
  Effect.fail(ConfigError.InvalidData([option], `OpenRouter key endpoint: ${option} ${message}`))

const durationOption = (
  option: string,
  input: Duration.DurationInput | undefined,
  fallback: Duration.Duration,
  min: Duration.Duration,
  rule: string
): Effect.Effect<Duration.Duration, ConfigError.ConfigError> => {
  if (input === undefined) return Effect.succeed(fallback)
  const decoded = Duration.decodeUnknown(input)
  if (Option.isSome(decoded) && Duration.isFinite(decoded.value) && Duration.greaterThanOrEqualTo(decoded.value, min)) {
    return Effect.succeed(decoded.value)
  }
  return invalid(option, `${rule}, got ${Option.match(decoded, { onNone: () => "no duration", onSome: Duration.format })}`)
}

const httpUrl = (baseUrl: string): boolean => {
  try {
    const protocol = new URL(baseUrl).protocol
    return protocol === "http:" || protocol === "https:"
  } catch {
    return false
  }
}

/**
 * Reads the endpoint when the layer builds, then every `every` in the background (stopped with
 * the layer's scope). Options out of range fail the layer with a `ConfigError` naming the
 * option, before any request.
 */
export const layer = (
  options: LayerOptions
): Layer.Layer<never, ConfigError.ConfigError, KeyPool.KeyPool | RateLimiter.RateLimiter | HttpClient.HttpClient> =>
  Layer.scopedDiscard(Effect.gen(function* () {
    if (!httpUrl(options.baseUrl)) return yield* invalid("baseUrl", "must be an http(s) URL")
    const every = yield* durationOption("every", options.every, Duration.minutes(5), minEvery, `must be a finite duration of at least ${Duration.format(minEvery)}`)
    const timeout = yield* durationOption("timeout", options.timeout, Duration.seconds(10), Duration.millis(1), "must be a finite, positive duration")
    const reading = poll({ baseUrl: options.baseUrl, budget: options.budget, timeout })
    yield* reading
    yield* Effect.forkScoped(Effect.schedule(reading, Schedule.spaced(every)))
  }))

/** A Bearer token anywhere in a text (a header quoted back), up to its end. */
const bearerToken = /\b(Bearer)\s+[^\s"'\\,;]+/gi

/** `text` as it may be logged: the key, in any form a server quotes it, and any Bearer token masked. */
const loggable = (text: string, key: Redacted.Redacted<string> | undefined): string =>
  maskSecret(text, key).replace(bearerToken, "$1 [redacted]")

const describe = (cause: Cause.Cause<unknown>): string => {
  const error = Cause.squash(cause)
  return error instanceof Error ? error.message : String(error)
}

/** The body, when it fits in `maxBodyBytes`; undefined past it (the rest is not read). */
const readCapped = (response: HttpClientResponse.HttpClientResponse) =>
  Effect.map(
    Stream.runFoldWhile(
      response.stream,
      { bytes: 0, chunks: [] as Array<Uint8Array> },
      (read) => read.bytes <= maxBodyBytes,
      (read, chunk) => {
        read.chunks.push(chunk)
        read.bytes += chunk.length
        return read
      }
    ),
    (read) => (read.bytes > maxBodyBytes ? undefined : Buffer.concat(read.chunks).toString("utf8"))
  )

/**
 * One reading with a key the pool lends, fed to the limiter and the budget. It never fails:
 * what goes wrong is logged (without the key) and the previous reading stays.
 */
export const poll = (options: Options): Effect.Effect<void, never, KeyPool.KeyPool | RateLimiter.RateLimiter | HttpClient.HttpClient> => {
  // the key of the current reading, so that whatever is logged masks it
  let leased: Redacted.Redacted<string> | undefined
  const warn = (message: string) => Effect.logWarning(loggable(`OpenRouter key endpoint: ${message}`, leased))
  return Effect.scoped(Effect.gen(function* () {
    const pool = yield* KeyPool.KeyPool
    const limiter = yield* RateLimiter.RateLimiter
    const http = yield* HttpClient.HttpClient
    const lease = yield* pool.acquire
    leased = lease.key
    const request = HttpClientRequest.get(`${options.baseUrl.replace(/\/+$/, "")}/key`).pipe(
      lease.key === undefined ? (r) => r : HttpClientRequest.bearerToken(Redacted.value(lease.key))
    )
    const response = yield* http.execute(request)
    // read (capped) whatever the status, so that the connection is freed
    const body = yield* readCapped(response)
    if (response.status < 200 || response.status >= 300) {
      return yield* warn(`answered ${response.status} (key ${lease.keyId}); limits not updated`)
    }
    if (body === undefined) return yield* warn(`the reply is larger than ${maxBodyBytes / 1024} KiB; limits not updated`)
    const reading = reportedOf(body, yield* Clock.currentTimeMillis)
    if (typeof reading === "string") return yield* warn(`${reading}; limits not updated`)
    const credit = reading.reported.credit
    const known = reading.remaining !== undefined || credit?.limit !== undefined || credit?.used !== undefined
    if (reading.ignored.length > 0) {
      yield* warn(`ignored ${reading.ignored.join(", ")} (not an amount in USD)${known ? "" : "; limits not updated"}`)
    }
    if (!known) return
    yield* limiter.learnLimits(reading.reported)
    // an unknown remaining credit leaves the budget's as it was; null is "no limit"
    if (options.budget !== undefined && reading.remaining !== undefined) {
      yield* options.budget.setCredit(reading.remaining === null ? undefined : { remaining: reading.remaining, source })
    }
  })).pipe(
    Effect.timeoutFail({ duration: options.timeout, onTimeout: () => new Error(`no answer within ${Duration.format(options.timeout)}`) }),
    Effect.catchAllCause((cause) => warn(`could not be read (${describe(cause)}); limits not updated`)),
    Effect.withSpan("OpenRouter.key")
  )
}
