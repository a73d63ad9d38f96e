/**
 * OpenRouter's key endpoint (`GET {baseUrl}/key`): the credit limit, usage and remaining
 * credit of the key, and (deprecated upstream, still sent) its request rate. Read when an
 * OpenRouter stack starts and then periodically; fed to the limiter and a budget.
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as KeyPool from "../../../KeyPool.js"
import * as RateLimiter from "../../../RateLimiter.js"

const KeyResponse = Schema.Struct({
  data: Schema.Struct({
    limit: Schema.optional(Schema.NullOr(Schema.Number)),
    usage: Schema.optional(Schema.NullOr(Schema.Number)),
    limit_remaining: Schema.optional(Schema.NullOr(Schema.Number)),
    rate_limit: Schema.optional(Schema.NullOr(Schema.Struct({ requests: Schema.Number, interval: Schema.String })))
  })
})
const decodeKeyResponse = Schema.decodeUnknownEither(Schema.parseJson(KeyResponse))

const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }

/** `"10s"`, `"1m"`, `"1h"` in millis; undefined for anything else. */
export const intervalMs = (interval: string): number | undefined => {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(interval.trim())
  return match === null ? undefined : Number(match[1]) * units[match[2]!]!
}

export const source = "openrouter GET /key"

/** The reading as limits for the limiter; undefined parts were not reported. */
export const reportedOf = (body: string, at: number): RateLimiter.ReportedLimits | string => {
  const decoded = decodeKeyResponse(body)
  if (Either.isLeft(decoded)) return ParseResult.TreeFormatter.formatErrorSync(decoded.left)
  const data = decoded.right.data
  const rate = data.rate_limit ?? undefined
  const perMs = rate === undefined ? undefined : intervalMs(rate.interval)
  return {
    source,
    at,
    requests: rate === undefined || perMs === undefined ? undefined : { limit: rate.requests, intervalMs: perMs },
    credit: { limit: data.limit ?? undefined, remaining: data.limit_remaining ?? undefined, used: data.usage ?? undefined }
  }
}

/** What the reading feeds its credit to: a `Budget.Controller` (named by shape, not imported). */
export interface CreditSink {
  readonly setCredit: (credit: { readonly remaining: number; readonly source: string } | undefined) => Effect.Effect<void>
}

export interface Options {
  readonly baseUrl: string
  readonly budget?: CreditSink | undefined
  readonly timeout: Duration.Duration
}

/**
 * One reading with a key the pool lends, fed to the limiter and the budget. It never fails:
 * what goes wrong is logged (without the key) and the previous reading stays.
 */
export const poll = (options: Options): Effect.Effect<void, never, KeyPool.KeyPool | RateLimiter.RateLimiter | HttpClient.HttpClient> =>
  Effect.scoped(Effect.gen(function* () {
    const pool = yield* KeyPool.KeyPool
    const limiter = yield* RateLimiter.RateLimiter
    const http = yield* HttpClient.HttpClient
    const lease = yield* pool.acquire
    const request = HttpClientRequest.get(`${options.baseUrl.replace(/\/+$/, "")}/key`).pipe(
      lease.key === undefined ? (r) => r : HttpClientRequest.bearerToken(Redacted.value(lease.key))
    )
    const response = yield* http.execute(request)
    const body = yield* response.text
    if (response.status < 200 || response.status >= 300) {
      return yield* Effect.logWarning(`OpenRouter key endpoint answered ${response.status} (key ${lease.keyId}); limits not updated`)
    }
    const reported = reportedOf(body, yield* Clock.currentTimeMillis)
    if (typeof reported === "string") {
      return yield* Effect.logWarning(`OpenRouter key endpoint: unexpected reply; limits not updated: ${reported}`)
    }
    yield* limiter.learnLimits(reported)
    const remaining = reported.credit?.remaining
    if (options.budget !== undefined) {
      yield* options.budget.setCredit(remaining === undefined ? undefined : { remaining, source })
    }
  })).pipe(
    Effect.timeoutFail({ duration: options.timeout, onTimeout: () => new Error(`no answer within ${Duration.format(options.timeout)}`) }),
    Effect.catchAllCause((cause) => Effect.logWarning("OpenRouter key endpoint could not be read; limits not updated", cause)),
    Effect.withSpan("OpenRouter.key")
  )
