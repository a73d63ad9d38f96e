/**
 * Client-side rate limits: a token bucket on requests and, optionally, on tokens.
 * `admit` reserves capacity and waits, in FIFO order, until the reservation is covered.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as internal from "./internal/rateLimiter.js"
import type { RateLimitExceededError } from "./LlmError.js"

/** @since 0.1.0 @category models */
export interface Cost {
  readonly requests?: number | undefined
  readonly tokens?: number | undefined
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
}

/**
 * Response headers, lower-cased, as `@effect/platform` gives them.
 * @since 0.1.0 @category models
 */
export type HeaderInput = Readonly<Record<string, string | undefined>>

/** @since 0.1.0 @category models */
export interface Service {
  /** Waits until the cost is admitted; with `onExceeded: "fail"` fails instead of waiting. */
  readonly admit: (cost: Cost) => Effect.Effect<void, RateLimitExceededError>
  /** Corrects a token estimate once real usage is known. */
  readonly settle: (actualTokens: number, estimatedTokens: number) => Effect.Effect<void>
  /** Learns from a provider's rate-limit headers. */
  readonly observe: (headers: HeaderInput) => Effect.Effect<void>
  readonly status: Effect.Effect<Status>
  /** Refills every bucket and clears any pause. */
  readonly reset: Effect.Effect<void>
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

/** @since 0.1.0 @category constructors */
export const make = (options: Options): Effect.Effect<Service> => internal.make(options)

/** @since 0.1.0 @category layers */
export const layer = (options: Options): Layer.Layer<RateLimiter> => Layer.effect(RateLimiter, make(options))

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

/** @since 0.1.0 @category accessors */
export const status: Effect.Effect<Status, never, RateLimiter> = Effect.flatMap(RateLimiter, (l) => l.status)
