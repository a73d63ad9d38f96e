/**
 * Client-side rate limits: a token bucket on requests and, optionally, on tokens.
 * `admit` reserves capacity and waits, in FIFO order, until the reservation is covered.
 * `observe` adapts the buckets to what the provider's headers say remains, and pauses
 * admission on a `retry-after`. `layer` keeps the buckets in memory; `layerRedis` keeps
 * them in Redis, so that many processes share one budget.
 *
 * @since 0.1.0
 */
import * as Config from "effect/Config"
import type { ConfigError } from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redis from "./internal/redis.js"
import * as internal from "./internal/rateLimiter.js"
import * as redisStore from "./internal/rateLimiterRedisStore.js"
import type { RateLimitExceededError, StoreUnavailableError } from "./LlmError.js"

/** @since 0.1.0 @category models */
export interface Cost {
  readonly requests?: number | undefined
  readonly tokens?: number | undefined
  /**
   * An immediate re-try, on another key, of a request that was already admitted. It
   * still takes capacity, but a pause learned from the failed key's 429 does not hold it:
   * that key's cooldown is the pool's job.
   */
  readonly reattempt?: boolean | undefined
}

/** @since 0.1.0 @category models */
export interface DimensionStatus {
  readonly available: number
  readonly capacity: number
  readonly refillPerSecond: number
}

/** @since 0.1.0 @category models */
export interface Status {
  readonly requests: DimensionStatus | undefined
  readonly tokens: DimensionStatus | undefined
  /** Epoch millis until which admission is paused (after a `retry-after`), if it is. */
  readonly pausedUntil?: number | undefined
}

/**
 * One dimension of what a provider's headers say; each field is absent when no header
 * gave it, or when the header was malformed.
 * @since 0.1.0 @category models
 */
export interface ServerDimension {
  readonly limit: number | undefined
  readonly remaining: number | undefined
  /** Millis until the dimension is full again. */
  readonly resetMs: number | undefined
}

/**
 * What a response's rate-limit headers say.
 * @since 0.1.0 @category models
 */
export interface ServerLimits {
  readonly requests: ServerDimension
  readonly tokens: ServerDimension
  /** From `retry-after-ms` or `retry-after`. */
  readonly retryAfterMs: number | undefined
}

/**
 * Response headers, lower-cased, as `@effect/platform` gives them.
 * @since 0.1.0 @category models
 */
export type HeaderInput = Readonly<Record<string, string | undefined>>

/**
 * The limiter. One in memory never fails with `StoreUnavailableError`; one in Redis does
 * when Redis does not answer (see `layerRedis`).
 * @since 0.1.0 @category models
 */
export interface Service {
  /** Waits until the cost is admitted; with `onExceeded: "fail"` fails instead of waiting. */
  readonly admit: (cost: Cost) => Effect.Effect<void, RateLimitExceededError | StoreUnavailableError>
  /** Corrects a token estimate once real usage is known. Never fails. */
  readonly settle: (actualTokens: number, estimatedTokens: number) => Effect.Effect<void>
  /**
   * Learns from a provider's rate-limit headers: lowers each bucket to what the server
   * says remains (scaled by `bufferRatio`) and its capacity to the server's limit when
   * that is lower; pauses admission for a `retry-after`, or until the reset of a limit
   * with nothing left. Malformed headers are ignored. Never fails.
   */
  readonly observe: (headers: HeaderInput) => Effect.Effect<void>
  readonly status: Effect.Effect<Status, StoreUnavailableError>
  /** Refills every bucket and clears any pause. */
  readonly reset: Effect.Effect<void, StoreUnavailableError>
}

/** @since 0.1.0 @category tags */
export class RateLimiter extends Context.Tag("effect-llm/RateLimiter")<RateLimiter, Service>() {}

/** @since 0.1.0 @category models */
export type Options =
  & (
    | { readonly capacity: number; readonly refillPerSecond: number; readonly tokenCapacity?: number; readonly tokenRefillPerSecond?: number }
    | { readonly requestsPerMinute: number; readonly tokensPerMinute?: number }
  )
  & {
    /** Fraction of the configured limits to use; 0.9 keeps 10% headroom. Default 1. */
    readonly bufferRatio?: number
    /** Wait for capacity (default) or fail at once with `RateLimitExceededError`. */
    readonly onExceeded?: "wait" | "fail"
    /** Provider and model named in `RateLimitExceededError`. */
    readonly provider?: string
  }

/**
 * Builds an in-memory limiter. Invalid numbers (a capacity of 0, a `bufferRatio` above
 * 1) are a defect whose message names the option.
 * @since 0.1.0 @category constructors
 */
export const make = (options: Options): Effect.Effect<Service> => internal.make(options)

/** @since 0.1.0 @category layers */
export const layer = (options: Options): Layer.Layer<RateLimiter> => Layer.effect(RateLimiter, make(options))

/**
 * Options from config, e.g.
 * `layerConfig(Config.all({ requestsPerMinute: Config.number("OPENAI_RPM") }))`. Values
 * that are not positive fail with a `ConfigError` that names them.
 * @since 0.1.0 @category layers
 */
export const layerConfig = (options: Config.Config<Options>): Layer.Layer<RateLimiter, ConfigError> =>
  Layer.effect(
    RateLimiter,
    Effect.flatMap(
      Config.validate(options, {
        message: "rate limits must be positive numbers and bufferRatio in (0, 1]",
        validation: (o) => {
          try {
            internal.limitsOf(o)
            return true
          } catch {
            return false
          }
        }
      }),
      make
    )
  )

/**
 * `layerRedis` could not reach Redis when it was built, or its url is malformed. Once
 * built, a Redis failure is a `StoreUnavailableError` instead.
 * @since 0.1.0 @category errors
 */
export const RedisError = Redis.RedisError
/** @since 0.1.0 @category errors */
export type RedisError = Redis.RedisError

/**
 * What every Redis-backed layer takes: `url` like `redis://127.0.0.1:6379/0`, a key
 * `prefix` (default `effect-llm:`), and `commandTimeout`, the longest wait for one
 * command (default 1 second).
 * @since 0.1.0 @category models
 */
export type RedisOptions = Redis.RedisOptions

/**
 * One budget for many processes, on many hosts: the buckets live in Redis and each
 * reservation is one Lua script, timed by the Redis server's clock. Processes that use
 * the same `url`, `prefix` and `name` share the budget. The bucket arithmetic, FIFO
 * reservations, `observe`, `settle`, pauses and `onExceeded` behave as in `layer`.
 *
 * Redis outages. The layer fails with `RedisError` only when Redis is unreachable as it is
 * built. After that the connection reconnects forever (100 ms doubling to 2 s), and every
 * command is bounded by `commandTimeout` (default 1 second):
 * - `admit` fails with `StoreUnavailableError` (retryable) when Redis does not answer,
 *   and so does a waiter whose pause check gets no answer (its reservation is refunded):
 *   nothing is admitted without Redis's answer, so an outage never over-admits. A
 *   reservation whose answer was lost is not refunded, erring toward admitting less.
 *   `status` and `reset` fail the same way.
 * - `settle`, `observe` and the refund of an interrupted waiter are sent at once and
 *   waited for at most 100 ms: not at all once an outage is known, nor when the call's
 *   deadline has passed. So a frozen Redis never holds a call that was admitted past its
 *   deadline. When they fail they are dropped.
 * - One warning is logged when an outage starts, one info line when Redis answers again.
 * @since 0.1.0 @category layers
 */
export const layerRedis = (
  options: Options & RedisOptions & {
    /** Which budget, under the prefix. Default the `provider` option, else `default`. */
    readonly name?: string
  }
): Layer.Layer<RateLimiter, RedisError> =>
  Layer.scoped(
    RateLimiter,
    Effect.gen(function* () {
      const limits = internal.limitsOf(options)
      const connection = yield* Redis.connect(options, { store: "RateLimiter", provider: options.provider ?? "rate-limiter" })
      const store = redisStore.make(connection, options.name ?? options.provider ?? "default", limits)
      return internal.makeWith(store, options, limits)
    })
  )

/**
 * A limiter that admits everything at once.
 * @since 0.1.0 @category layers
 */
export const unlimited: Layer.Layer<RateLimiter> = Layer.succeed(RateLimiter, {
  admit: () => Effect.void,
  settle: () => Effect.void,
  observe: () => Effect.void,
  status: Effect.succeed({ requests: undefined, tokens: undefined }),
  reset: Effect.void
})

/**
 * The token estimate used before real usage is known: about four characters per token.
 * @since 0.1.0 @category utils
 */
export const estimateTokens = (text: string): number => Math.ceil(text.length / 4)

/**
 * Reads rate-limit headers (OpenAI `x-ratelimit-*`, Anthropic `anthropic-ratelimit-*`,
 * `retry-after`, `retry-after-ms`); `now` is epoch millis, for RFC 3339 resets.
 * @since 0.1.0 @category utils
 */
export const parseHeaders: (headers: HeaderInput, now: number) => ServerLimits = internal.parseHeaders

/** @since 0.1.0 @category accessors */
export const status: Effect.Effect<Status, StoreUnavailableError, RateLimiter> = Effect.flatMap(RateLimiter, (l) => l.status)

/** @since 0.1.0 @category accessors */
export const admit = (cost: Cost): Effect.Effect<void, RateLimitExceededError | StoreUnavailableError, RateLimiter> =>
  Effect.flatMap(RateLimiter, (l) => l.admit(cost))

/** @since 0.1.0 @category accessors */
export const observe = (headers: HeaderInput): Effect.Effect<void, never, RateLimiter> =>
  Effect.flatMap(RateLimiter, (l) => l.observe(headers))

/** @since 0.1.0 @category accessors */
export const reset: Effect.Effect<void, StoreUnavailableError, RateLimiter> = Effect.flatMap(RateLimiter, (l) => l.reset)
