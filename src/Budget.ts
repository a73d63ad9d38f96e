/**
 * Spending limits per calendar period. A decorator over `LanguageModel` that refuses, before
 * sending, a request whose estimated tokens or cost would take the period over budget; warns
 * once per period when spend crosses `warnAt`; and starts afresh when the period ends.
 *
 * @since 0.1.0
 */
import * as Channel from "effect/Channel"
import * as Chunk from "effect/Chunk"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import { decorate, type Decorator, LanguageModel, type Tracker, wrap } from "./LanguageModel.js"
import * as Streams from "./internal/streams.js"
import { BudgetExceededError, type LlmError } from "./LlmError.js"
import type { ChatRequest, StreamEvent, Usage as UsageData } from "./Message.js"
import * as Tokenizer from "./Tokenizer.js"
import * as Usage from "./Usage.js"

/**
 * Calendar periods in UTC: an hour starts at :00, a day at 00:00, a month on the 1st.
 * @since 0.1.0 @category models
 */
export type Period = "hour" | "day" | "month"

/** @since 0.1.0 @category models */
export interface Options {
  readonly period: Period
  readonly maxTokens?: number | undefined
  /**
   * US dollars, priced with `prices`, else the `Usage` tracker's prices, else the cost a
   * provider reports (OpenRouter), else the model catalog's (cache reads and writes at their own rates).
   */
  readonly maxCost?: number | undefined
  /** The fraction of a limit at which to warn, once per period. Default 0.8. */
  readonly warnAt?: number | undefined
  readonly prices?: Usage.PriceTable | undefined
  /** Output tokens assumed for a request without `maxTokens` when estimating it. Default 0. */
  readonly assumedOutputTokens?: number | undefined
}

/** @since 0.1.0 @category models */
export interface Status {
  readonly period: Period
  /** Epoch milliseconds. */
  readonly periodStart: number
  readonly periodEnd: number
  readonly tokens: number
  readonly cost: number
  /** Estimates held by requests in flight. */
  readonly reservedTokens: number
  readonly reservedCost: number
  readonly maxTokens: number | undefined
  readonly maxCost: number | undefined
  readonly warned: boolean
  /** The provider's remaining credit, when one was set (`setCredit`), and the cost spent since. */
  readonly credit?: { readonly remaining: number; readonly spentSince: number; readonly source: string } | undefined
}

/** @since 0.1.0 @category metrics */
export const warnings = Metric.counter("effect_llm_budget_warnings_total", {
  description: "Budget periods whose spend crossed the warning threshold",
  incremental: true
})

/** @since 0.1.0 @category metrics */
export const rejections = Metric.counter("effect_llm_budget_rejections_total", {
  description: "Requests refused because they would exceed a budget",
  incremental: true
})

/**
 * The period containing `now`, as epoch milliseconds `[start, end)`.
 * @since 0.1.0 @category utils
 */
export const periodBounds = (period: Period, now: number): readonly [number, number] => {
  switch (period) {
    case "hour": {
      const start = now - (now % 3_600_000)
      return [start, start + 3_600_000]
    }
    case "day": {
      const start = now - (now % 86_400_000)
      return [start, start + 86_400_000]
    }
    case "month": {
      const date = new Date(now)
      return [Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), 1), Date.UTC(date.getUTCFullYear(), date.getUTCMonth() + 1, 1)]
    }
  }
}

interface Reservation {
  readonly periodStart: number
  readonly tokens: number
  readonly cost: number
}

/** @since 0.1.0 @category models */
export interface Controller {
  readonly status: Effect.Effect<Status>
  /** Wraps a model; every model it wraps draws on this budget. */
  readonly decorator: Decorator
  /**
   * The credit a provider reports as remaining (OpenRouter's key endpoint), in the price
   * table's currency: a request whose estimated cost would exceed it, less what was spent
   * since and what is in flight, fails with `BudgetExceededError` (`dimension: "credit"`)
   * before it is sent. `undefined` forgets it.
   */
  readonly setCredit: (credit: { readonly remaining: number; readonly source: string } | undefined) => Effect.Effect<void>
}

/**
 * A budget whose `status` you can read, and whose `decorator` wraps models. Every model it
 * wraps draws on the same budget.
 * @since 0.1.0 @category constructors
 */
export const make = (options: Options): Effect.Effect<Controller> =>
  Effect.gen(function* () {
    // these options' prices over the tracker's, then the catalog (imported here, once) unless the tracker replaced it
    const tracker = yield* Usage.UsageTracker
    const prices: Usage.PriceTable = { ...tracker.prices, ...options.prices }
    const price = yield* Usage.pricing(prices, { catalog: tracker.catalog })
    const warnAt = options.warnAt ?? 0.8
    const [start, end] = periodBounds(options.period, yield* Clock.currentTimeMillis)
    const state = { periodStart: start, periodEnd: end, tokens: 0, cost: 0, reservedTokens: 0, reservedCost: 0, warned: false }
    const unpriced = new Set<string>()
    let credit: { remaining: number; spentSince: number; source: string } | undefined

    // every state change below is one synchronous step, so fibers cannot interleave inside it
    const roll = (now: number) => {
      if (now < state.periodEnd) return
      const [s, e] = periodBounds(options.period, now)
      Object.assign(state, { periodStart: s, periodEnd: e, tokens: 0, cost: 0, reservedTokens: 0, reservedCost: 0, warned: false })
    }

    const costOf = (provider: string, model: string, usage: Pick<UsageData, "inputTokens" | "outputTokens" | "cachedInputTokens" | "cacheWriteTokens" | "cost">) => {
      // a user's price wins; else the cost the provider reported; else the catalog's price
      const own = Usage.priceOf(prices, provider, model)
      if (own !== undefined) return Usage.costOf(own, usage)
      if (usage.cost !== undefined) return usage.cost
      const found = price(provider, model)
      return found === undefined ? undefined : Usage.costOf(found, usage)
    }

    const noPriceWarning = (provider: string, model: string) =>
      Effect.suspend(() => {
        if (options.maxCost === undefined || unpriced.has(`${provider}/${model}`)) return Effect.void
        unpriced.add(`${provider}/${model}`)
        return Effect.logWarning(`Budget: no price for ${provider}/${model}; its cost does not count towards maxCost`)
      })

    const reserve = (provider: string, model: string, request: ChatRequest): Effect.Effect<Reservation, BudgetExceededError> =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        const inputTokens = Tokenizer.estimate(request.messages, { tools: request.tools }).tokens
        const outputTokens = request.maxTokens ?? options.assumedOutputTokens ?? 0
        const cost = costOf(provider, model, { inputTokens, outputTokens })
        roll(now)
        const over = (dimension: "tokens" | "cost" | "credit", limit: number, spent: number, requested: number) =>
          Effect.zipRight(
            Metric.increment(rejections),
            Effect.fail(
              new BudgetExceededError({
                provider,
                model,
                message: dimension === "credit"
                  ? `the credit ${credit?.source ?? "the provider"} reports (${format("cost", limit)}) would be exceeded: ` +
                    `${format("cost", spent)} spent since or in flight, this request needs about ${format("cost", requested)}`
                  : `${options.period}ly ${dimension} budget of ${format(dimension, limit)} would be exceeded: ` +
                    `${format(dimension, spent)} spent or in flight, this request needs about ${format(dimension, requested)}; ` +
                    `it resets at ${new Date(state.periodEnd).toISOString()}`,
                dimension,
                limit,
                spent,
                requested,
                retryAfter: dimension === "credit" ? undefined : Duration.millis(state.periodEnd - now)
              })
            )
          )
        const tokens = inputTokens + outputTokens
        const spentTokens = state.tokens + state.reservedTokens
        if (options.maxTokens !== undefined && spentTokens + tokens > options.maxTokens) {
          return over("tokens", options.maxTokens, spentTokens, tokens)
        }
        const spentCost = state.cost + state.reservedCost
        if (options.maxCost !== undefined && cost !== undefined && spentCost + cost > options.maxCost) {
          return over("cost", options.maxCost, spentCost, cost)
        }
        if (credit !== undefined && cost !== undefined && credit.spentSince + state.reservedCost + cost > credit.remaining) {
          return over("credit", credit.remaining, credit.spentSince + state.reservedCost, cost)
        }
        state.reservedTokens += tokens
        state.reservedCost += cost ?? 0
        const reservation: Reservation = { periodStart: state.periodStart, tokens, cost: cost ?? 0 }
        return cost === undefined ? Effect.as(noPriceWarning(provider, model), reservation) : Effect.succeed(reservation)
      })

    const settle = (provider: string, model: string, reservation: Reservation, usage: UsageData | undefined) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        roll(now)
        if (reservation.periodStart === state.periodStart) {
          state.reservedTokens -= reservation.tokens
          state.reservedCost -= reservation.cost
        }
        if (usage === undefined) return Effect.void
        const spent = costOf(provider, model, usage) ?? 0
        state.tokens += usage.totalTokens
        state.cost += spent
        if (credit !== undefined) credit.spentSince += spent
        const fraction = Math.max(
          options.maxTokens === undefined ? 0 : state.tokens / options.maxTokens,
          options.maxCost === undefined ? 0 : state.cost / options.maxCost
        )
        if (state.warned || fraction < warnAt) return Effect.void
        state.warned = true
        return Effect.zipRight(
          Metric.increment(warnings),
          Effect.logWarning(
            `Budget: ${Math.round(fraction * 100)}% of the ${options.period}ly budget is spent ` +
              `(${state.tokens} tokens${options.maxTokens === undefined ? "" : ` of ${options.maxTokens}`}, ` +
              `$${state.cost.toFixed(4)}${options.maxCost === undefined ? "" : ` of $${options.maxCost}`}); ` +
              `it resets at ${new Date(state.periodEnd).toISOString()}`
          )
        )
      })

    const decorator: Decorator = (upstream) => Effect.sync(() => {
      const chat = (request: ChatRequest) => {
        const model = request.model ?? upstream.model
        return Effect.uninterruptibleMask((restore) =>
          Effect.flatMap(reserve(upstream.provider, model, request), (reservation) =>
            restore(upstream.chat(request)).pipe(
              Effect.onExit((exit) =>
                settle(upstream.provider, model, reservation, Exit.isSuccess(exit) ? exit.value.usage : undefined)
              )
            ))
        ).pipe(Effect.withSpan("Budget.chat"))
      }
      const stream = (request: ChatRequest, tracker?: Tracker): Stream.Stream<StreamEvent, LlmError> => {
        const model = request.model ?? upstream.model
        const budgeted = Stream.suspend(() => {
          let usage: UsageData | undefined
          // one channel stage: reserved when it starts, settled however it ends
          return Stream.fromChannel(Channel.acquireUseRelease(
            reserve(upstream.provider, model, request),
            () =>
              // Finish is a stream's last event: look at each chunk's tail, not at every event
              Stream.toChannel(Stream.mapChunks(upstream.stream(request, tracker), (chunk) => {
                const last = Chunk.last(chunk)
                if (Option.isSome(last) && last.value._tag === "Finish") usage = last.value.usage
                return chunk
              })),
            (reservation) => settle(upstream.provider, model, reservation, usage)
          ))
        })
        return Streams.withSpan(budgeted, "Budget.stream")
      }
      return wrap(upstream, { chat, stream })
    })

    const status = Effect.map(Clock.currentTimeMillis, (now): Status => {
      roll(now)
      return {
        period: options.period,
        periodStart: state.periodStart,
        periodEnd: state.periodEnd,
        tokens: state.tokens,
        cost: state.cost,
        reservedTokens: state.reservedTokens,
        reservedCost: state.reservedCost,
        maxTokens: options.maxTokens,
        maxCost: options.maxCost,
        warned: state.warned,
        credit: credit === undefined ? undefined : { ...credit }
      }
    })

    const setCredit = (next: { readonly remaining: number; readonly source: string } | undefined) =>
      Effect.sync(() => {
        credit = next === undefined || !Number.isFinite(next.remaining) ? undefined : { remaining: next.remaining, spentSince: 0, source: next.source }
      })

    return { status, decorator, setCredit }
  })

const format = (dimension: "tokens" | "cost", n: number) => (dimension === "tokens" ? `${n} tokens` : `$${n.toFixed(4)}`)

/**
 * The decorator. Prices come from `options.prices`, else from a `Usage` tracker in context.
 * @since 0.1.0 @category layers
 */
export const layer = (options: Options): Layer.Layer<LanguageModel, never, LanguageModel> =>
  decorate((inner) => Effect.flatMap(make(options), (controller) => controller.decorator(inner)))
