/**
 * Hedged requests: when a call has not answered after a delay, a second one is sent, and the
 * first to succeed answers; the others are interrupted. The delay is fixed, or a percentile
 * of this model's own recent latencies (with a floor, and a warm-up during which nothing is
 * hedged). A budget bounds the share of calls that may be hedged, so that an outage never
 * doubles the load.
 *
 * - A stream hedges on its time to first event. The first attempt to deliver an event wins;
 *   the others are interrupted before any of their events reaches the caller.
 * - A failure is not hedged: an attempt that fails while no other runs fails the call
 *   (`Retry` and `Fallback` decide what comes next); while another runs, the call waits for it.
 * - An extra attempt is another call to the model below, so it leases its own key (the pool
 *   gives the least-loaded one, which the first attempt is not while it runs) and is admitted
 *   by the rate limiter. Interrupting a loser releases its lease and closes its connection.
 * - A loser was sent and is paid for: when it was interrupted before the provider reported its
 *   usage, an estimate of its input tokens (marked `estimated`) goes to the `UsageTracker`.
 * - A chat still unanswered after its delay has a `Hedge.chat` span, a stream that may hedge a
 *   `Hedge.stream` span, each extra attempt a `Hedge.attempt` span; the metrics count the extra
 *   attempts started, those the budget refused, and which attempt won. A chat answered before
 *   its delay costs a fiber for its attempt and, under the live `Clock`, a plain timer.
 *
 * In a stack it sits inside `Fallback` and outside `CircuitBreaker` and `Retry`: each attempt
 * is retried on its own, a cache above fills once with the winner's reply, and a `Budget`
 * provided below it reserves for every attempt (one that the budget refuses is not sent).
 *
 * @since 0.1.0
 */
import type * as ConfigError from "effect/ConfigError"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import * as internal from "./internal/hedge.js"
import { decorate, type Decorator, type LanguageModel } from "./LanguageModel.js"
import * as Tokenizer from "./Tokenizer.js"
import * as Usage from "./Usage.js"

/**
 * A delay read from this model's recent latencies (a reply's time; a stream's time to its
 * first event), per model name.
 * @since 0.1.0 @category models
 */
export interface Percentile {
  /** Which percentile of the window, in (0, 100): e.g. 95. */
  readonly percentile: number
  /** The delay is never shorter than this. Default 0. */
  readonly floor?: Duration.DurationInput | undefined
  /** How many recent latencies the window keeps. Default 1000. */
  readonly window?: number | undefined
  /** Nothing is hedged until the window holds this many latencies. Default 20. */
  readonly warmup?: number | undefined
}

/** @since 0.1.0 @category models */
export interface Options {
  /** When to send an extra attempt: a fixed delay, or a `Percentile` of this model's latencies. */
  readonly after: Duration.DurationInput | Percentile
  /** Extra attempts at most, the k-th sent k × the delay after the call began. Default 1. */
  readonly max?: number | undefined
  /**
   * The share of calls that may send an extra attempt, in (0, 1]: each call adds this much
   * credit, each extra attempt spends one (the first is free). Default 0.1.
   */
  readonly budget?: number | undefined
}

/** @since 0.1.0 @category models */
export interface Stats {
  /** Calls through the decorator. */
  readonly requests: number
  /** Extra attempts sent. */
  readonly hedges: number
  /** Extra attempts the budget refused. */
  readonly refused: number
  /** Calls won by each attempt: `[0]` by the first, `[1]` by the first extra one, … */
  readonly wins: ReadonlyArray<number>
  /** The delay each model's calls hedge after now, in millis (undefined while warming up). */
  readonly delays: Readonly<Record<string, number | undefined>>
}

/** @since 0.1.0 @category models */
export interface Controller {
  /** Wraps a model; every model it wraps shares this controller's budget and statistics. */
  readonly decorator: Decorator
  readonly stats: Effect.Effect<Stats>
}

/** @since 0.1.0 @category metrics */
export const hedges = internal.hedgesStarted
/** @since 0.1.0 @category metrics */
export const refused = internal.hedgesRefused
/** @since 0.1.0 @category metrics */
export const wins = internal.hedgeWins

/**
 * A hedging controller. An option out of its range (a negative or infinite delay, a
 * percentile outside (0, 100), a `max` that is not a whole number ≥ 1, a `budget` outside
 * (0, 1], a `warmup` larger than the `window`) fails with a `ConfigError` naming it. Losers'
 * usage goes to the `UsageTracker` in context.
 * @since 0.1.0 @category constructors
 */
export const make = (options: Options): Effect.Effect<Controller, ConfigError.ConfigError> =>
  Effect.flatMap(Usage.UsageTracker, (tracker) =>
    internal.make(options, {
      record: tracker.record,
      estimate: (request) => Tokenizer.estimate(request.messages, { tools: request.tools }).tokens
    }))

/**
 * The decorator: the model below, hedged.
 * @since 0.1.0 @category decorators
 */
export const decorator = (options: Options): Decorator<ConfigError.ConfigError> => (inner) =>
  Effect.flatMap(make(options), (controller) => controller.decorator(inner))

/**
 * `Hedge.layer({ after: { percentile: 95, floor: "500 millis" }, budget: 0.1 })`.
 * @since 0.1.0 @category layers
 */
export const layer = (options: Options): Layer.Layer<LanguageModel, ConfigError.ConfigError, LanguageModel> =>
  decorate(decorator(options))
