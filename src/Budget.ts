/**
 * Spending limits per calendar period. A decorator over `LanguageModel` that refuses, before
 * sending, a request whose estimated tokens or cost would take the period over budget; warns
 * once per period when spend crosses `warnAt`; and starts afresh when the period ends.
 *
 * Where the period's spend lives is a separate service, `BudgetStore`: in memory (the
 * default of the `BudgetStore` reference, each budget its own) or in Redis
 * (`Redis.layerBudgetStore` from `effect-llm/Redis`: one budget for every process that uses
 * the same prefix and `name`). The rules are the same in both: a request's estimate is
 * checked and reserved in one atomic step before it is sent; the reservation is a lease
 * that its holder renews while the request runs and that ends `leaseTtl` after the holder
 * stops (it crashed); the actual usage is settled after, once per request id however often
 * the settlement is sent; a request is charged to the period that admitted it.
 *
 * Over a shared store each request has a `Budget.chat` (or `Budget.stream`) span covering
 * its round trips to the store; over the memory store it has none, as an idle decorator.
 *
 * @since 0.1.0
 */
import * as Channel from "effect/Channel"
import * as Chunk from "effect/Chunk"
import * as Clock from "effect/Clock"
import * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as internal from "./internal/budget.js"
import { backgroundSleep } from "./internal/liveClock.js"
import * as Streams from "./internal/streams.js"
import { decorate, type Decorator, LanguageModel, type Tracker, wrap } from "./LanguageModel.js"
import { BudgetExceededError, type LlmError, type StoreUnavailableError } from "./LlmError.js"
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
  /**
   * The budget's name in a shared store: processes whose budgets have the same name (and,
   * in Redis, the same prefix) draw on one budget. Default `default`.
   */
  readonly name?: string | undefined
  /**
   * How long a reservation outlives a holder that stops renewing it (its process crashed or
   * froze); a holder renews its reservations every third of it. The same in memory and in
   * Redis. Default 1 minute.
   */
  readonly leaseTtl?: Duration.DurationInput | undefined
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

/** @since 0.1.0 @category models */
export interface Controller {
  /** The period's spend: in a shared store, the spend of every process on it. */
  readonly status: Effect.Effect<Status, StoreUnavailableError>
  /** Wraps a model; every model it wraps draws on this budget. */
  readonly decorator: Decorator
  /**
   * The credit a provider reports as remaining (OpenRouter's key endpoint), in the price
   * table's currency: a request whose estimated cost would exceed it, less what was spent
   * since and what is in flight, fails with `BudgetExceededError` (`dimension: "credit"`)
   * before it is sent. `undefined` forgets it. In a shared store every process sees it.
   */
  readonly setCredit: (credit: { readonly remaining: number; readonly source: string } | undefined) => Effect.Effect<void>
}

// ---------------------------------------------------------------------------
// The store
// ---------------------------------------------------------------------------

/**
 * What a store is built for: one budget, by name, with its limits.
 * @since 0.1.0 @category stores
 */
export interface StoreSpec {
  readonly name: string
  readonly maxTokens: number | undefined
  readonly maxCost: number | undefined
  /** The fraction of a limit at which the period is marked warned, once. */
  readonly warnAt: number
  /** How long a reservation lasts unless renewed. */
  readonly leaseTtlMillis: number
  /**
   * Called once per period, by the store, for the settlement whose spend first crossed
   * `warnAt` (in a shared store: once across every process).
   */
  readonly onWarning: (spent: { readonly periodEnd: number; readonly tokens: number; readonly cost: number }) => Effect.Effect<void>
}

/**
 * A calendar period, epoch milliseconds `[start, end)`.
 * @since 0.1.0 @category stores
 */
export interface Window {
  readonly start: number
  readonly end: number
}

/**
 * A request's estimate, to be checked and reserved in one step. `id` is unique per
 * request; `cost` is undefined when the model has no price (no cost or credit check);
 * `now` is the caller's clock (a store with a clock of its own, as Redis, uses that).
 * @since 0.1.0 @category stores
 */
export interface Claim {
  readonly id: string
  readonly period: Window
  readonly tokens: number
  readonly cost: number | undefined
  readonly now: number
}

/**
 * A claim's answer: reserved, or refused by the first limit it would cross, with the spend
 * (settled and reserved) it met.
 * @since 0.1.0 @category stores
 */
export type Reservation =
  | { readonly _tag: "Reserved" }
  | {
    readonly _tag: "Refused"
    readonly dimension: "tokens" | "cost" | "credit"
    readonly limit: number
    readonly spent: number
    /** For `credit`: who reported it. */
    readonly source?: string | undefined
  }

/**
 * A request's actual usage (zero for one that failed), settling the reservation of `id`.
 * @since 0.1.0 @category stores
 */
export interface Settlement {
  readonly id: string
  readonly period: Window
  readonly tokens: number
  readonly cost: number
  readonly now: number
}

/**
 * A reservation still in flight, renewed by its holder.
 * @since 0.1.0 @category stores
 */
export interface Held {
  readonly id: string
  readonly period: Window
  readonly tokens: number
  readonly cost: number
}

/** @since 0.1.0 @category stores */
export interface StoreStatus {
  readonly tokens: number
  readonly cost: number
  readonly reservedTokens: number
  readonly reservedCost: number
  readonly warned: boolean
  readonly credit: { readonly remaining: number; readonly spentSince: number; readonly source: string } | undefined
}

/**
 * One budget's state. `reserve` checks and reserves in one atomic step (across every
 * process on a shared store); `settle` is idempotent by request id, releases the
 * reservation and adds the usage to the period of the reservation; `renew` extends held
 * reservations by `leaseTtlMillis` (and puts back one the store lost, unless it was
 * settled). A shared store that cannot answer fails `reserve` and `status` with
 * `StoreUnavailableError`; `settle`, `renew` and `setCredit` are bookkeeping that never fails
 * nor holds the caller for long (a shared store keeps a settlement it could not send, and
 * sends it again).
 * @since 0.1.0 @category stores
 */
export interface Store {
  readonly reserve: (claim: Claim) => Effect.Effect<Reservation, StoreUnavailableError>
  readonly settle: (settlement: Settlement) => Effect.Effect<void>
  readonly renew: (held: ReadonlyArray<Held>, now: number) => Effect.Effect<void>
  readonly status: (period: Window, now: number) => Effect.Effect<StoreStatus, StoreUnavailableError>
  readonly setCredit: (credit: { readonly remaining: number; readonly source: string } | undefined) => Effect.Effect<void>
}

/**
 * The `BudgetStore` service: it builds the store of each budget.
 * @since 0.1.0 @category stores
 */
export interface StoreFactory {
  readonly make: (spec: StoreSpec) => Effect.Effect<Store>
}

/**
 * Where budgets keep their spend: a `Context.Reference` that `make` and `layer` read when
 * they build. Its default keeps every budget in memory, each its own (what
 * `layerStoreMemory` provides); provide `Redis.layerBudgetStore` from `effect-llm/Redis` to
 * share budgets across processes.
 * @since 0.1.0 @category tags
 */
export class BudgetStore extends Context.Reference<BudgetStore>()("effect-llm/BudgetStore", {
  defaultValue: (): StoreFactory => storesInMemory
}) {}

/**
 * The in-memory store of one budget, timed by the caller's clock: the same reservations,
 * leases, idempotent settlements and periods as the Redis store, for one process.
 * @since 0.1.0 @category stores
 */
export const makeStoreMemory: (spec: StoreSpec) => Effect.Effect<Store> = internal.memoryStore

const storesInMemory: StoreFactory = { make: makeStoreMemory }

/**
 * Every budget in memory, each its own: `BudgetStore`'s default. Provide it to say so, or to
 * override a store provided further out.
 * @since 0.1.0 @category layers
 */
export const layerStoreMemory: Layer.Layer<BudgetStore> = Layer.succeed(BudgetStore, storesInMemory)

// ---------------------------------------------------------------------------
// The budget
// ---------------------------------------------------------------------------

/**
 * A budget whose `status` you can read, and whose `decorator` wraps models. Every model it
 * wraps draws on the same budget, kept in the `BudgetStore` in context (by default, in
 * memory). A `leaseTtl` that is not a positive duration fails with a `ConfigError` naming it.
 * @since 0.1.0 @category constructors
 */
export const make = (options: Options): Effect.Effect<Controller, ConfigError.ConfigError> =>
  Effect.gen(function* () {
    const leaseTtlMillis = Duration.toMillis(Duration.decode(options.leaseTtl ?? "1 minute"))
    if (!(leaseTtlMillis > 0) || !Number.isFinite(leaseTtlMillis)) {
      return yield* Effect.fail(
        ConfigError.InvalidData(["leaseTtl"], `Budget: leaseTtl must be a positive duration, got ${String(options.leaseTtl)}`)
      )
    }
    // these options' prices over the tracker's, then the catalog (imported here, once) unless the tracker replaced it
    const tracker = yield* Usage.UsageTracker
    const prices: Usage.PriceTable = { ...tracker.prices, ...options.prices }
    const price = yield* Usage.pricing(prices, { catalog: tracker.catalog })
    const warnAt = options.warnAt ?? 0.8
    const unpriced = new Set<string>()

    const onWarning = (spent: { readonly periodEnd: number; readonly tokens: number; readonly cost: number }) => {
      const fraction = Math.max(
        options.maxTokens === undefined ? 0 : spent.tokens / options.maxTokens,
        options.maxCost === undefined ? 0 : spent.cost / options.maxCost
      )
      return Effect.zipRight(
        Metric.increment(warnings),
        Effect.logWarning(
          `Budget: ${Math.round(fraction * 100)}% of the ${options.period}ly budget is spent ` +
            `(${spent.tokens} tokens${options.maxTokens === undefined ? "" : ` of ${options.maxTokens}`}, ` +
            `$${spent.cost.toFixed(4)}${options.maxCost === undefined ? "" : ` of $${options.maxCost}`}); ` +
            `it resets at ${new Date(spent.periodEnd).toISOString()}`
        )
      )
    }
    const stores = yield* BudgetStore
    const store = yield* stores.make({
      name: options.name ?? "default",
      maxTokens: options.maxTokens,
      maxCost: options.maxCost,
      warnAt,
      leaseTtlMillis,
      onWarning
    })
    // a span per request shows a shared store's round trips; in memory it would cost more than the budget itself
    const traced = stores !== storesInMemory

    // a model's prices, looked up once: the user's own, and the catalog's
    const pricesOf = new Map<string, { readonly own: Usage.Price | undefined; readonly catalog: Usage.Price | undefined }>()
    let last: { readonly provider: string; readonly model: string; readonly own: Usage.Price | undefined; readonly catalog: Usage.Price | undefined } | undefined
    const pricesFor = (provider: string, model: string) => {
      if (last !== undefined && last.provider === provider && last.model === model) return last
      const key = `${provider}\0${model}`
      let found = pricesOf.get(key)
      if (found === undefined) {
        const own = Usage.priceOf(prices, provider, model)
        found = { own, catalog: own === undefined ? price(provider, model) : undefined }
        if (pricesOf.size >= 1024) pricesOf.clear()
        pricesOf.set(key, found)
      }
      last = { provider, model, ...found }
      return found
    }
    const costOf = (provider: string, model: string, usage: Pick<UsageData, "inputTokens" | "outputTokens" | "cachedInputTokens" | "cacheWriteTokens" | "cost">) => {
      // a user's price wins; else the cost the provider reported; else the catalog's price
      const { catalog, own } = pricesFor(provider, model)
      if (own !== undefined) return Usage.costOf(own, usage)
      if (usage.cost !== undefined) return usage.cost
      return catalog === undefined ? undefined : Usage.costOf(catalog, usage)
    }

    const noPriceWarning = (provider: string, model: string) =>
      Effect.suspend(() => {
        if (options.maxCost === undefined || unpriced.has(`${provider}/${model}`)) return Effect.void
        unpriced.add(`${provider}/${model}`)
        return Effect.logWarning(`Budget: no price for ${provider}/${model}; its cost does not count towards maxCost`)
      })

    // This budget's reservations in flight, renewed every third of their lease by one fiber
    // that runs while there are any: a reservation whose holder stops (a crash) ends with it.
    const holder = Math.random().toString(36).slice(2, 10)
    let counter = 0
    const live = new Map<string, Held>()
    let renewing = false
    const renewLoop: Effect.Effect<void> = Effect.suspend(() => {
      if (live.size === 0) {
        renewing = false
        return Effect.void
      }
      // a timer that keeps no finished process alive: the last settlement leaves this fiber
      // asleep until its next round, and stopping it there would cost every request a fork
      return backgroundSleep(leaseTtlMillis / 3).pipe(
        Effect.zipRight(Effect.suspend(() =>
          live.size === 0 ? Effect.void : Effect.flatMap(Clock.currentTimeMillis, (now) => store.renew([...live.values()], now))
        )),
        Effect.zipRight(renewLoop)
      )
    })
    const startRenewing = Effect.suspend(() => {
      if (renewing) return Effect.void
      renewing = true
      // started within a request's uninterruptible region, whose status a fork inherits
      return Effect.asVoid(Effect.forkDaemon(Effect.interruptible(renewLoop)))
    })

    /** Called when the request starts (its clock read then): estimates, then reserves in the store. */
    const reserve = (now: number, provider: string, model: string, request: ChatRequest): Effect.Effect<Held, BudgetExceededError | StoreUnavailableError> => {
      const inputTokens = Tokenizer.estimate(request.messages, { tools: request.tools }).tokens
      const outputTokens = request.maxTokens ?? options.assumedOutputTokens ?? 0
      const cost = costOf(provider, model, { inputTokens, outputTokens })
      const tokens = inputTokens + outputTokens
      const [start, end] = periodBounds(options.period, now)
      const held: Held = { id: `${holder}-${(counter++).toString(36)}`, period: { start, end }, tokens, cost: cost ?? 0 }
      return Effect.flatMap(store.reserve({ id: held.id, period: held.period, tokens, cost, now }), (answer) => {
        if (answer._tag === "Refused") {
          const { dimension, limit, source, spent } = answer
          const requested = dimension === "tokens" ? tokens : cost ?? 0
          return Effect.zipRight(
            Metric.increment(rejections),
            Effect.fail(
              new BudgetExceededError({
                provider,
                model,
                message: dimension === "credit"
                  ? `the credit ${source ?? "the provider"} reports (${format("cost", limit)}) would be exceeded: ` +
                    `${format("cost", spent)} spent since or in flight, this request needs about ${format("cost", requested)}`
                  : `${options.period}ly ${dimension} budget of ${format(dimension, limit)} would be exceeded: ` +
                    `${format(dimension, spent)} spent or in flight, this request needs about ${format(dimension, requested)}; ` +
                    `it resets at ${new Date(end).toISOString()}`,
                dimension,
                limit,
                spent,
                requested,
                retryAfter: dimension === "credit" ? undefined : Duration.millis(end - now)
              })
            )
          )
        }
        live.set(held.id, held)
        if (renewing && cost !== undefined) return Effect.succeed(held)
        return Effect.as(
          Effect.zipRight(startRenewing, cost === undefined ? noPriceWarning(provider, model) : Effect.void),
          held
        )
      })
    }

    const settle = (now: number, provider: string, model: string, held: Held, usage: UsageData | undefined) => {
      live.delete(held.id)
      return store.settle({
        id: held.id,
        period: held.period,
        tokens: usage?.totalTokens ?? 0,
        cost: usage === undefined ? 0 : costOf(provider, model, usage) ?? 0,
        now
      })
    }

    const decorator: Decorator = (upstream) => Effect.sync(() => {
      const chat = (request: ChatRequest) => {
        const model = request.model ?? upstream.model
        // reserved, then settled however the call ends: the region is uninterruptible but for the call
        const budgeted = Effect.clockWith((clock) =>
          Effect.uninterruptibleMask((restore) =>
            Effect.flatMap(reserve(clock.unsafeCurrentTimeMillis(), upstream.provider, model, request), (held) =>
              Effect.matchCauseEffect(restore(upstream.chat(request)), {
                onFailure: (cause) => Effect.zipRight(settle(clock.unsafeCurrentTimeMillis(), upstream.provider, model, held, undefined), Effect.failCause(cause)),
                onSuccess: (response) => Effect.as(settle(clock.unsafeCurrentTimeMillis(), upstream.provider, model, held, response.usage), response)
              }))
          )
        )
        return traced ? Effect.withSpan(budgeted, "Budget.chat") : budgeted
      }
      const stream = (request: ChatRequest, tracker?: Tracker): Stream.Stream<StreamEvent, LlmError> => {
        const model = request.model ?? upstream.model
        const budgeted = Stream.suspend(() => {
          let usage: UsageData | undefined
          // one channel stage: reserved when it starts, settled however it ends
          return Stream.fromChannel(Channel.acquireUseRelease(
            Effect.clockWith((clock) => reserve(clock.unsafeCurrentTimeMillis(), upstream.provider, model, request)),
            () =>
              // Finish is a stream's last event: look at each chunk's tail, not at every event
              Stream.toChannel(Stream.mapChunks(upstream.stream(request, tracker), (chunk) => {
                const last = Chunk.last(chunk)
                if (Option.isSome(last) && last.value._tag === "Finish") usage = last.value.usage
                return chunk
              })),
            (held) => Effect.clockWith((clock) => settle(clock.unsafeCurrentTimeMillis(), upstream.provider, model, held, usage))
          ))
        })
        return traced ? Streams.withSpan(budgeted, "Budget.stream") : budgeted
      }
      return wrap(upstream, { chat, stream })
    })

    const status = Effect.flatMap(Clock.currentTimeMillis, (now) => {
      const [start, end] = periodBounds(options.period, now)
      return Effect.map(store.status({ start, end }, now), (s): Status => ({
        period: options.period,
        periodStart: start,
        periodEnd: end,
        tokens: s.tokens,
        cost: s.cost,
        reservedTokens: s.reservedTokens,
        reservedCost: s.reservedCost,
        maxTokens: options.maxTokens,
        maxCost: options.maxCost,
        warned: s.warned,
        credit: s.credit
      }))
    })

    const setCredit = (next: { readonly remaining: number; readonly source: string } | undefined) =>
      store.setCredit(next === undefined || !Number.isFinite(next.remaining) ? undefined : next)

    return { status, decorator, setCredit }
  })

const format = (dimension: "tokens" | "cost", n: number) => (dimension === "tokens" ? `${n} tokens` : `$${n.toFixed(4)}`)

/**
 * The decorator. Prices come from `options.prices`, else from a `Usage` tracker in context.
 * The budget lives in the `BudgetStore` provided to this layer (by default, in memory):
 * `Budget.layer(options).pipe(Layer.provide(Redis.layerBudgetStore({ url })))` shares it.
 * @since 0.1.0 @category layers
 */
export const layer = (options: Options): Layer.Layer<LanguageModel, ConfigError.ConfigError, LanguageModel> =>
  decorate((inner) => Effect.flatMap(make(options), (controller) => controller.decorator(inner)))
