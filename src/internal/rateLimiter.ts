import * as ConfigError from "effect/ConfigError"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Metric from "effect/Metric"
import { RateLimitExceededError, type StoreUnavailableError } from "../LlmError.js"
import type {
  Cost,
  Dimension,
  DimensionStatus,
  HeaderInput,
  Learned,
  Limits,
  Options,
  ReportedLimits,
  Reservation,
  ServerLimits,
  Service,
  Store,
  StoreSpec
} from "../RateLimiter.js"
import { parseGoDuration, retryAfterOf } from "./request/errors.js"
import * as syncOps from "./syncOps.js"

// ---------------------------------------------------------------------------
// Limits
// ---------------------------------------------------------------------------

const invalid = (name: string, message: string) => Either.left(ConfigError.InvalidData([name], `RateLimiter: ${message}`))

const positive = (name: string, value: number | undefined): Either.Either<number, ConfigError.ConfigError> =>
  value === undefined || !Number.isFinite(value) || value <= 0
    ? invalid(name, `${name} must be a positive number, got ${String(value)}`)
    : Either.right(value)

/** Reads the options into limits, or a `ConfigError` naming the option that is not a number it can use. */
export const limitsOf = (options: Options): Either.Either<Limits, ConfigError.ConfigError> =>
  Either.gen(function* () {
    const ratio = options.bufferRatio ?? 1
    if (!Number.isFinite(ratio) || ratio <= 0 || ratio > 1) {
      return yield* invalid("bufferRatio", `bufferRatio must be in (0, 1], got ${String(ratio)}`)
    }
    const dim = (capacity: number, perSecond: number): Dimension => ({
      capacity: capacity * ratio,
      refillPerMs: (perSecond * ratio) / 1000
    })
    if ("requestsPerMinute" in options) {
      const rpm = yield* positive("requestsPerMinute", options.requestsPerMinute)
      const tpm = options.tokensPerMinute === undefined ? undefined : yield* positive("tokensPerMinute", options.tokensPerMinute)
      return { requests: dim(rpm, rpm / 60), tokens: tpm === undefined ? undefined : dim(tpm, tpm / 60), ratio }
    }
    const capacity = yield* positive("capacity", options.capacity)
    const refill = yield* positive("refillPerSecond", options.refillPerSecond)
    const tokenCapacity = options.tokenCapacity === undefined ? undefined : yield* positive("tokenCapacity", options.tokenCapacity)
    return {
      requests: dim(capacity, refill),
      tokens: tokenCapacity === undefined
        ? undefined
        : dim(tokenCapacity, yield* positive("tokenRefillPerSecond", options.tokenRefillPerSecond ?? tokenCapacity / 60)),
      ratio
    }
  })

// ---------------------------------------------------------------------------
// Headers
// ---------------------------------------------------------------------------

const count = (value: string | undefined): number | undefined => {
  if (value === undefined) return undefined
  const n = Number(value.trim())
  return value.trim().length > 0 && Number.isFinite(n) && n >= 0 ? n : undefined
}

const min = (a: number | undefined, b: number | undefined) => (a === undefined ? b : b === undefined ? a : Math.min(a, b))
const max = (a: number | undefined, b: number | undefined) => (a === undefined ? b : b === undefined ? a : Math.max(a, b))

/** An OpenAI reset (`6m0s`, `12ms`) or an Anthropic one (RFC 3339), as millis from now. */
const resetIn = (value: string | undefined, now: number): number | undefined => {
  if (value === undefined) return undefined
  const duration = parseGoDuration(value)
  if (duration !== undefined) return duration
  // only full RFC 3339 timestamps: Date.parse alone would accept "1" as a year
  if (!/^\d{4}-\d\d-\d\dT/.test(value.trim())) return undefined
  const at = Date.parse(value.trim())
  return Number.isFinite(at) ? Math.max(0, at - now) : undefined
}

/**
 * What the server said about its limits. Anthropic's input- and output-token limits
 * fold into the token dimension by their minimum, the tightest one being what binds.
 * Malformed values are left out.
 */
export const parseHeaders = (headers: HeaderInput, now: number): ServerLimits => {
  const requests = {
    limit: min(count(headers["x-ratelimit-limit-requests"]), count(headers["anthropic-ratelimit-requests-limit"])),
    remaining: min(
      count(headers["x-ratelimit-remaining-requests"]),
      count(headers["anthropic-ratelimit-requests-remaining"])
    ),
    resetMs: max(
      resetIn(headers["x-ratelimit-reset-requests"], now),
      resetIn(headers["anthropic-ratelimit-requests-reset"], now)
    )
  }
  let tokens = {
    limit: count(headers["x-ratelimit-limit-tokens"]),
    remaining: count(headers["x-ratelimit-remaining-tokens"]),
    resetMs: resetIn(headers["x-ratelimit-reset-tokens"], now)
  }
  for (const kind of ["tokens", "input-tokens", "output-tokens"]) {
    tokens = {
      limit: min(tokens.limit, count(headers[`anthropic-ratelimit-${kind}-limit`])),
      remaining: min(tokens.remaining, count(headers[`anthropic-ratelimit-${kind}-remaining`])),
      resetMs: max(tokens.resetMs, resetIn(headers[`anthropic-ratelimit-${kind}-reset`], now))
    }
  }
  const retryAfter = retryAfterOf(headers, now)
  return {
    requests,
    tokens,
    retryAfterMs: retryAfter === undefined ? undefined : Duration.toMillis(retryAfter)
  }
}

export const learnedOf = (limits: ServerLimits, ratio: number): Learned | undefined => {
  const scale = (n: number | undefined) => (n === undefined ? undefined : n * ratio)
  // the server will not admit before its reset when nothing remains, whatever our refill says
  const exhausted = (d: ServerLimits["requests"]) => (d.remaining === 0 ? d.resetMs : undefined)
  const pauseMs = max(limits.retryAfterMs, max(exhausted(limits.requests), exhausted(limits.tokens)))
  const learned: Learned = {
    requestsRemaining: scale(limits.requests.remaining),
    requestsLimit: scale(limits.requests.limit),
    tokensRemaining: scale(limits.tokens.remaining),
    tokensLimit: scale(limits.tokens.limit),
    pauseMs
  }
  return learned.requestsRemaining === undefined && learned.requestsLimit === undefined &&
      learned.tokensRemaining === undefined && learned.tokensLimit === undefined && pauseMs === undefined
    ? undefined
    : learned
}

// ---------------------------------------------------------------------------
// Stores
// ---------------------------------------------------------------------------

/** Mutable bucket state for one dimension. */
interface Bucket {
  capacity: number
  refillPerMs: number
  level: number
  last: number
}

const refill = (bucket: Bucket, now: number): void => {
  if (now > bucket.last) {
    bucket.level = Math.min(bucket.capacity, bucket.level + (now - bucket.last) * bucket.refillPerMs)
    bucket.last = now
  }
}

const waitFor = (bucket: Bucket, cost: number): number =>
  bucket.level >= cost ? 0 : (cost - bucket.level) / bucket.refillPerMs

const lower = (bucket: Bucket, remaining: number | undefined, limit: number | undefined): void => {
  if (limit !== undefined && limit > 0 && limit < bucket.capacity) {
    bucket.capacity = limit
    bucket.level = Math.min(bucket.level, limit)
  }
  if (remaining !== undefined && remaining < bucket.level) bucket.level = remaining
}

const dimensionStatus = (bucket: Bucket | undefined): DimensionStatus | undefined =>
  bucket === undefined
    ? undefined
    : { available: Math.max(0, bucket.level), capacity: bucket.capacity, refillPerSecond: bucket.refillPerMs * 1000 }

/**
 * The in-memory store. JavaScript runs one fiber step at a time, so each operation below
 * (a synchronous read-modify-write) is atomic without a lock. Its clock is the one of the
 * fiber that builds it.
 */
export const memoryStore = ({ limits }: StoreSpec): Effect.Effect<Store> =>
  Effect.clockWith((clock) =>
    Effect.sync(() => {
      const start = clock.unsafeCurrentTimeMillis()
      const mk = (d: Dimension): Bucket => ({ capacity: d.capacity, refillPerMs: d.refillPerMs, level: d.capacity, last: start })
      const requests = mk(limits.requests)
      const tokens = limits.tokens === undefined ? undefined : mk(limits.tokens)
      let pausedUntil = 0
      const now = () => clock.unsafeCurrentTimeMillis()
      const learnNow = (learned: Learned) => {
        const at = now()
        refill(requests, at)
        lower(requests, learned.requestsRemaining, learned.requestsLimit)
        if (learned.requestsRefillPerMs !== undefined && learned.requestsRefillPerMs > 0) {
          requests.refillPerMs = Math.min(requests.refillPerMs, learned.requestsRefillPerMs)
        }
        if (tokens !== undefined) {
          refill(tokens, at)
          lower(tokens, learned.tokensRemaining, learned.tokensLimit)
        }
        if (learned.pauseMs !== undefined && learned.pauseMs > 0) pausedUntil = Math.max(pausedUntil, at + learned.pauseMs)
      }
      const refundNow = (r: number, t: number) => {
        requests.level = Math.min(requests.capacity, requests.level + r)
        if (tokens !== undefined) tokens.level = Math.min(tokens.capacity, tokens.level + t)
      }
      const store: Store = {
        reserve: (r, t, failFast, ignorePause) =>
          Effect.sync(() => {
            const at = now()
            refill(requests, at)
            let wait = waitFor(requests, r)
            if (tokens !== undefined) {
              refill(tokens, at)
              wait = Math.max(wait, waitFor(tokens, t))
            }
            const turnMs = Math.ceil(wait)
            const waitMs = !ignorePause && pausedUntil > at ? Math.max(turnMs, Math.ceil(pausedUntil - at)) : turnMs
            if (failFast && waitMs > 0) return { waitMs: -waitMs - 1, turnMs: 0 }
            // a waiter woken on the whole millisecond takes the refill of the fraction it
            // rounded up, so that rounding never lets the next one in early
            const rounding = turnMs - wait
            requests.level -= r + rounding * requests.refillPerMs
            if (tokens !== undefined) tokens.level -= t + rounding * tokens.refillPerMs
            return { waitMs, turnMs }
          }),
        refund: (r, t) => Effect.sync(() => refundNow(r, t)),
        adjustTokens: (delta) =>
          Effect.sync(() => {
            if (tokens !== undefined) tokens.level = Math.min(tokens.capacity, tokens.level - delta)
          }),
        learn: (learned) => Effect.sync(() => learnNow(learned)),
        pausedFor: Effect.sync(() => Math.max(0, pausedUntil - now())),
        status: Effect.sync(() => {
          const at = now()
          refill(requests, at)
          if (tokens !== undefined) refill(tokens, at)
          return {
            requests: dimensionStatus(requests),
            tokens: dimensionStatus(tokens),
            pausedUntil: pausedUntil > at ? pausedUntil : undefined
          }
        }),
        reset: Effect.sync(() => {
          const at = now()
          for (const bucket of tokens === undefined ? [requests] : [requests, tokens]) {
            bucket.level = bucket.capacity
            bucket.last = at
          }
          pausedUntil = 0
        })
      }
      syncOps.limiterStoreOps.set(store, {
        // `reserve` when the cost is covered now; nothing is taken when it is not
        tryReserve: (r, t, ignorePause) => {
          const at = now()
          refill(requests, at)
          if (requests.level < r) return false
          if (tokens !== undefined) {
            refill(tokens, at)
            if (tokens.level < t) return false
          }
          if (!ignorePause && pausedUntil > at) return false
          requests.level -= r
          if (tokens !== undefined) tokens.level -= t
          return true
        },
        refund: refundNow,
        adjustTokens: (delta) => {
          if (tokens !== undefined) tokens.level = Math.min(tokens.capacity, tokens.level - delta)
        },
        learn: learnNow
      })
      return store
    })
  )

// ---------------------------------------------------------------------------
// The service, over any store
// ---------------------------------------------------------------------------

const admitted = Metric.counter("effect_llm_rate_limiter_admitted", { description: "requests admitted" })
const waited = Metric.counter("effect_llm_rate_limiter_waited", { description: "admissions that had to wait" })
const refused = Metric.counter("effect_llm_rate_limiter_refused", { description: "admissions refused (onExceeded: fail)" })
const paused = Metric.counter("effect_llm_rate_limiter_paused", { description: "pauses learned from retry-after or exhausted limits" })

export const makeWith = (store: Store, options: Options, limits: Limits): Service => {
  const failFast = options.onExceeded === "fail"
  const provider = options.provider ?? "rate-limiter"
  const hasTokens = limits.tokens !== undefined

  // After its reservation is covered, a waiter also honours a pause learned meanwhile.
  const afterPause = (): Effect.Effect<void, StoreUnavailableError> =>
    Effect.flatMap(store.pausedFor, (ms) => (ms <= 0 ? Effect.void : Effect.zipRight(Effect.sleep(ms), afterPause())))

  const wait = ({ turnMs, waitMs }: Reservation, r: number, t: number, ignorePause: boolean) =>
    Effect.sleep(turnMs).pipe(
      // a waiter interrupted before its turn gives its reservation back; once its turn has
      // come (a pause may hold it longer), the bucket has refilled past it, and giving it
      // back would admit one too many
      Effect.onInterrupt(() => store.refund(r, t)),
      Effect.zipRight(waitMs > turnMs ? Effect.sleep(waitMs - turnMs) : Effect.void),
      Effect.zipRight(ignorePause ? Effect.void : afterPause()),
      Effect.zipRight(Metric.increment(waited)),
      Effect.withSpan("RateLimiter.wait", { attributes: { waitMs } })
    )

  // No span on an admission that does not wait: it runs once per request and costs about
  // as much as the bucket itself. A wait gets its "RateLimiter.wait" span.
  const admit = (cost: Cost): Effect.Effect<void, RateLimitExceededError | StoreUnavailableError> => {
    const r = cost.requests ?? 1
    const t = hasTokens ? (cost.tokens ?? 0) : 0
    const ignorePause = cost.reattempt === true
    type Admission = Effect.Effect<void, RateLimitExceededError | StoreUnavailableError>
    return Effect.flatMap(store.reserve(r, t, failFast, ignorePause), (reservation): Admission => {
      const ms = reservation.waitMs
      if (ms === 0) return Metric.increment(admitted)
      if (ms < 0) {
        return Effect.zipRight(
          Metric.increment(refused),
          Effect.fail(
            new RateLimitExceededError({
              provider,
              model: "*",
              message: `client-side rate limit of ${provider} exceeded; capacity returns in ${-ms - 1}ms`,
              retryAfter: Duration.millis(-ms - 1)
            })
          )
        )
      }
      return Effect.zipRight(wait(reservation, r, t, ignorePause), Metric.increment(admitted))
    })
  }

  const settle = (actualTokens: number, estimatedTokens: number): Effect.Effect<void> =>
    !hasTokens || !Number.isFinite(actualTokens) || actualTokens === estimatedTokens
      ? Effect.void
      : store.adjustTokens(actualTokens - estimatedTokens)

  const observe = (headers: HeaderInput): Effect.Effect<void> =>
    Effect.clockWith((clock) => {
      const learned = learnedOf(parseHeaders(headers, clock.unsafeCurrentTimeMillis()), limits.ratio)
      if (learned === undefined) return Effect.void
      const learn = store.learn(learned)
      return learned.pauseMs !== undefined && learned.pauseMs > 0 ? Effect.zipRight(learn, Metric.increment(paused)) : learn
    })

  let reported: ReportedLimits | undefined
  const learnLimits = (report: ReportedLimits): Effect.Effect<void> =>
    Effect.suspend(() => {
      reported = report
      const rate = report.requests
      if (rate === undefined || !(rate.limit > 0) || !(rate.intervalMs > 0)) return Effect.void
      return store.learn({
        requestsRemaining: undefined,
        requestsLimit: rate.limit * limits.ratio,
        tokensRemaining: undefined,
        tokensLimit: undefined,
        pauseMs: undefined,
        requestsRefillPerMs: (rate.limit / rate.intervalMs) * limits.ratio
      })
    })

  const service: Service = {
    admit,
    settle,
    observe,
    learnLimits,
    status: Effect.map(store.status, (status) => reported === undefined ? status : { ...status, reported }),
    reset: Effect.withSpan(store.reset, "RateLimiter.reset")
  }
  const ops = syncOps.limiterStoreOps.get(store)
  if (ops !== undefined) {
    syncOps.limiterOps.set(service, {
      tryAdmit: (r, t, reattempt) => ops.tryReserve(r, hasTokens ? t : 0, reattempt),
      refund: (r, t) => ops.refund(r, hasTokens ? t : 0),
      admitted: (ambient) => admitted.unsafeUpdate(1, ambient),
      settle: (actualTokens, estimatedTokens) => {
        if (hasTokens && Number.isFinite(actualTokens) && actualTokens !== estimatedTokens) ops.adjustTokens(actualTokens - estimatedTokens)
      },
      observe: (headers, now, ambient) => {
        const learned = learnedOf(parseHeaders(headers, now), limits.ratio)
        if (learned === undefined) return
        ops.learn(learned)
        if (learned.pauseMs !== undefined && learned.pauseMs > 0) paused.unsafeUpdate(1, ambient)
      }
    })
  }
  return service
}

/** A limiter that admits everything at once (`RateLimiter.unlimited`). */
export const unlimited: Service = {
  admit: () => Effect.void,
  settle: () => Effect.void,
  observe: () => Effect.void,
  learnLimits: () => Effect.void,
  status: Effect.succeed({ requests: undefined, tokens: undefined }),
  reset: Effect.void
}
const admitAll = () => true
const nothing = () => {}
syncOps.limiterOps.set(unlimited, { tryAdmit: admitAll, refund: nothing, admitted: nothing, settle: nothing, observe: nothing })
