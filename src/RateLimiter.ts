/**
 * Client-side rate limits: a token bucket on requests and, optionally, on tokens.
 * `admit` reserves capacity and waits, in FIFO order, until the reservation is covered.
 * `observe` adapts the buckets to what the provider's headers say remains, and pauses
 * admission on a `retry-after`.
 *
 * Where the buckets live is a separate service, `RateLimiterStore`: in memory
 * (`layerStoreMemory`; the default of the `RateLimiterStore` reference) or in Redis
 * (`Redis.layerRateLimiterStore` from `effect-llm/Redis`, so that many processes share one
 * budget). Waiting, FIFO order, headers, errors and spans are written once, over any store.
 *
 * @since 0.1.0
 */
import * as Config from "effect/Config"
import type { ConfigError } from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as internal from "./internal/rateLimiter.js"
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
  /** What the provider last reported about the key's limits and credit (`learnLimits`). */
  readonly reported?: ReportedLimits | undefined
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
 * when Redis does not answer (see `Redis.layerRateLimiter` in `effect-llm/Redis`).
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
  /**
   * Learns from limits a provider reports about its key (OpenRouter's key endpoint): the
   * request bucket's capacity and refill are lowered to the reported rate (scaled by
   * `bufferRatio`), never raised; the report shows in `status().reported`. Never fails.
   */
  readonly learnLimits: (reported: ReportedLimits) => Effect.Effect<void>
  readonly status: Effect.Effect<Status, StoreUnavailableError>
  /** Refills every bucket and clears any pause. */
  readonly reset: Effect.Effect<void, StoreUnavailableError>
}

/**
 * Limits and credit a provider reports for a key, as last read (`learnLimits`).
 * @since 0.1.0 @category models
 */
export interface ReportedLimits {
  /** Where they were read, e.g. `openrouter GET /key`. */
  readonly source: string
  /** Epoch millis of the reading. */
  readonly at: number
  /** `limit` requests per `intervalMs`. */
  readonly requests?: { readonly limit: number; readonly intervalMs: number } | undefined
  /** Credit in the provider's currency (USD for OpenRouter); `limit` undefined: no limit. */
  readonly credit?: {
    readonly limit: number | undefined
    readonly remaining: number | undefined
    readonly used: number | undefined
  } | undefined
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
    /**
     * Which budget in a shared store (Redis): limiters with the same name share it.
     * Default the `provider` option, else `default`.
     */
    readonly name?: string
  }

// ---------------------------------------------------------------------------
// The store
// ---------------------------------------------------------------------------

/**
 * One dimension's configured limits, after `bufferRatio`.
 * @since 0.1.0 @category stores
 */
export interface Dimension {
  readonly capacity: number
  readonly refillPerMs: number
}

/**
 * A limiter's configured limits, after `bufferRatio`.
 * @since 0.1.0 @category stores
 */
export interface Limits {
  readonly requests: Dimension
  readonly tokens: Dimension | undefined
  /** `bufferRatio`, applied to what the server says remains as well. */
  readonly ratio: number
}

/**
 * What `observe` asks the store to do: lower levels and capacities, and maybe pause.
 * @since 0.1.0 @category stores
 */
export interface Learned {
  readonly requestsRemaining: number | undefined
  readonly requestsLimit: number | undefined
  readonly tokensRemaining: number | undefined
  readonly tokensLimit: number | undefined
  readonly pauseMs: number | undefined
  /** A request refill rate reported by the provider; lowers the bucket's refill when lower. */
  readonly requestsRefillPerMs?: number | undefined
}

/**
 * A reservation: the whole wait, and the part of it until the buckets cover the cost (the
 * rest is a pause).
 * @since 0.1.0 @category stores
 */
export interface Reservation {
  readonly waitMs: number
  readonly turnMs: number
}

/**
 * What a store is built for: one limiter's budget.
 * @since 0.1.0 @category stores
 */
export interface StoreSpec {
  /** Which budget: the `name` option, else `provider`, else `default`. */
  readonly name: string
  /** Named in the store's errors. */
  readonly provider: string
  readonly limits: Limits
}

/**
 * One limiter's buckets. The token-bucket arithmetic runs inside the store, atomically: in
 * memory, or in a Redis script so that many processes share one budget. Everything around
 * it (waiting, FIFO order, interruption, headers, errors, spans) is the service's, written
 * once. A shared store that cannot answer fails what admission needs (`reserve`,
 * `pausedFor`) and what reads it (`status`, `reset`); `refund`, `adjustTokens` and `learn`
 * are bookkeeping that never fails nor holds the caller for long.
 * @since 0.1.0 @category stores
 */
export interface Store {
  /**
   * Reserves the cost and says how many millis the caller must wait until it is covered; a
   * level may go negative, which is capacity promised to earlier waiters and what makes
   * admission FIFO without a queue. With `failFast`, a cost that would wait is not reserved
   * and `waitMs` is `-(wait + 1)`. With `ignorePause`, a pause does not add to the wait.
   */
  readonly reserve: (
    requests: number,
    tokens: number,
    failFast: boolean,
    ignorePause: boolean
  ) => Effect.Effect<Reservation, StoreUnavailableError>
  readonly refund: (requests: number, tokens: number) => Effect.Effect<void>
  /** `level -= delta` on tokens, capped at capacity. */
  readonly adjustTokens: (delta: number) => Effect.Effect<void>
  readonly learn: (learned: Learned) => Effect.Effect<void>
  /** Millis left in a pause, 0 when there is none. */
  readonly pausedFor: Effect.Effect<number, StoreUnavailableError>
  readonly status: Effect.Effect<Status, StoreUnavailableError>
  readonly reset: Effect.Effect<void, StoreUnavailableError>
}

/**
 * The `RateLimiterStore` service: it builds the buckets of each limiter. A factory rather
 * than a store, because the buckets are shaped by the limiter's options; one store layer
 * (one Redis connection) then serves every limiter of a stack.
 * @since 0.1.0 @category stores
 */
export interface StoreFactory {
  readonly make: (spec: StoreSpec) => Effect.Effect<Store>
}

/**
 * Where limiters keep their buckets: a `Context.Reference` that `make` and `layer` read when
 * they build. Its default keeps every limiter in memory, each its own (what
 * `layerStoreMemory` provides); provide `Redis.layerRateLimiterStore` from `effect-llm/Redis`
 * for one budget across processes.
 * @since 0.1.0 @category tags
 */
export class RateLimiterStore extends Context.Reference<RateLimiterStore>()("effect-llm/RateLimiterStore", {
  defaultValue: (): StoreFactory => storesInMemory
}) {}

/**
 * The in-memory buckets of one limiter, on the clock of the fiber that builds them.
 * @since 0.1.0 @category stores
 */
export const makeStoreMemory: (spec: StoreSpec) => Effect.Effect<Store> = internal.memoryStore

const storesInMemory: StoreFactory = { make: makeStoreMemory }

/**
 * Every limiter in memory, each its own: `RateLimiterStore`'s default. Provide it to say so,
 * or to override a store provided further out.
 * @since 0.1.0 @category layers
 */
export const layerStoreMemory: Layer.Layer<RateLimiterStore> = Layer.succeed(RateLimiterStore, storesInMemory)

// ---------------------------------------------------------------------------
// The service
// ---------------------------------------------------------------------------

/**
 * Builds a limiter over the `RateLimiterStore` in context (by default, in memory).
 * Invalid numbers (a capacity of 0, a `bufferRatio` above 1) fail with a `ConfigError` that
 * names the option.
 * @since 0.1.0 @category constructors
 */
export const make = (options: Options): Effect.Effect<Service, ConfigError> =>
  Effect.flatMap(Effect.suspend(() => internal.limitsOf(options)), (limits) => {
    const spec: StoreSpec = {
      name: options.name ?? options.provider ?? "default",
      provider: options.provider ?? "rate-limiter",
      limits
    }
    return RateLimiterStore.pipe(
      Effect.flatMap((stores) => stores.make(spec)),
      Effect.map((store) => internal.makeWith(store, options, limits))
    )
  })

/**
 * A limiter over the `RateLimiterStore` provided to this layer (by default, in memory):
 * `RateLimiter.layer(options).pipe(Layer.provide(Redis.layerRateLimiterStore({ url })))`.
 * @since 0.1.0 @category layers
 */
export const layer = (options: Options): Layer.Layer<RateLimiter, ConfigError> => Layer.effect(RateLimiter, make(options))

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
        validation: (o) => Either.isRight(internal.limitsOf(o))
      }),
      make
    )
  )

/**
 * A limiter that admits everything at once.
 * @since 0.1.0 @category layers
 */
export const unlimited: Layer.Layer<RateLimiter> = Layer.succeed(RateLimiter, internal.unlimited)

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
