import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Ref from "effect/Ref"
import { RateLimitExceededError } from "../LlmError.js"
import type { Cost, DimensionStatus, Options, Service, Status } from "../RateLimiter.js"

/**
 * One bucket. `level` may go negative: a negative level is capacity already promised to
 * callers who are waiting, which is what makes admission FIFO without a queue.
 */
interface Bucket {
  readonly capacity: number
  readonly refillPerMs: number
  level: number
  last: number
}

const refill = (bucket: Bucket, now: number): void => {
  if (now > bucket.last) {
    bucket.level = Math.min(bucket.capacity, bucket.level + (now - bucket.last) * bucket.refillPerMs)
    bucket.last = now
  }
}

const bucketStatus = (bucket: Bucket | undefined): DimensionStatus | undefined =>
  bucket === undefined
    ? undefined
    : { available: Math.max(0, bucket.level), capacity: bucket.capacity, refillPerSecond: bucket.refillPerMs * 1000 }

export const make = (options: Options): Effect.Effect<Service> =>
  Effect.gen(function* () {
    const ratio = options.bufferRatio ?? 1
    const now = yield* Clock.currentTimeMillis
    const mk = (capacity: number, perSecond: number): Bucket => ({
      capacity: capacity * ratio,
      refillPerMs: (perSecond * ratio) / 1000,
      level: capacity * ratio,
      last: now
    })
    let requests: Bucket
    let tokens: Bucket | undefined
    if ("requestsPerMinute" in options) {
      requests = mk(options.requestsPerMinute, options.requestsPerMinute / 60)
      tokens = options.tokensPerMinute === undefined ? undefined : mk(options.tokensPerMinute, options.tokensPerMinute / 60)
    } else {
      requests = mk(options.capacity, options.refillPerSecond)
      tokens = options.tokenCapacity === undefined
        ? undefined
        : mk(options.tokenCapacity, options.tokenRefillPerSecond ?? options.tokenCapacity / 60)
    }
    const failFast = options.onExceeded === "fail"
    const provider = options.provider ?? "rate-limiter"
    // Serialises reservations; the buckets are only touched inside modify/update.
    const lock = yield* Ref.make(0)

    /** Reserves `cost` and returns how long the caller must wait (ms), or -1 when refused. */
    const reserve = (cost: Cost, at: number): number => {
      const r = cost.requests ?? 1
      const t = tokens === undefined ? 0 : (cost.tokens ?? 0)
      refill(requests, at)
      if (tokens !== undefined) refill(tokens, at)
      const waitReq = requests.level >= r ? 0 : (r - requests.level) / requests.refillPerMs
      const waitTok = tokens === undefined || tokens.level >= t ? 0 : (t - tokens.level) / tokens.refillPerMs
      const wait = Math.max(waitReq, waitTok)
      if (failFast && wait > 0) return -Math.ceil(wait) - 1
      requests.level -= r
      if (tokens !== undefined) tokens.level -= t
      return Math.ceil(wait)
    }

    const refund = (cost: Cost) =>
      Ref.update(lock, (n) => {
        requests.level = Math.min(requests.capacity, requests.level + (cost.requests ?? 1))
        if (tokens !== undefined) tokens.level = Math.min(tokens.capacity, tokens.level + (cost.tokens ?? 0))
        return n + 1
      })

    const admit = (cost: Cost): Effect.Effect<void, RateLimitExceededError> =>
      Effect.flatMap(Clock.currentTimeMillis, (at) =>
        Effect.flatMap(Ref.modify(lock, (n) => [reserve(cost, at), n + 1]), (wait) => {
          if (wait === 0) return Effect.void
          if (wait < 0) {
            return Effect.fail(
              new RateLimitExceededError({
                provider,
                model: "*",
                message: "client-side rate limit exceeded",
                retryAfter: Duration.millis(-wait - 1)
              })
            )
          }
          // an interrupted waiter gives its reservation back
          return Effect.onInterrupt(Effect.sleep(Duration.millis(wait)), () => refund(cost))
        }))

    const settle = (actualTokens: number, estimatedTokens: number): Effect.Effect<void> =>
      tokens === undefined || actualTokens === estimatedTokens
        ? Effect.void
        : Ref.update(lock, (n) => {
          const bucket = tokens!
          bucket.level = Math.min(bucket.capacity, bucket.level - (actualTokens - estimatedTokens))
          return n + 1
        })

    const status: Effect.Effect<Status> = Effect.flatMap(Clock.currentTimeMillis, (at) =>
      Ref.modify(lock, (n) => {
        refill(requests, at)
        if (tokens !== undefined) refill(tokens, at)
        return [{ requests: bucketStatus(requests), tokens: bucketStatus(tokens) }, n]
      }))

    const reset = Effect.flatMap(Clock.currentTimeMillis, (at) =>
      Ref.update(lock, (n) => {
        requests.level = requests.capacity
        requests.last = at
        if (tokens !== undefined) {
          tokens.level = tokens.capacity
          tokens.last = at
        }
        return n + 1
      }))

    return {
      admit,
      settle,
      // the plain bucket has fixed limits; header-driven adaptation is the adaptive limiter's job
      observe: () => Effect.void,
      status,
      reset
    }
  })
