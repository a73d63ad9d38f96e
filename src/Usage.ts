/**
 * Usage and cost: a tracker of totals per provider and model, fed by every provider
 * response when its layer is provided (by default nothing is tracked), and prices that turn
 * tokens into dollars: yours, else the cost a provider reports (OpenRouter), else the model
 * catalog's (`@pydantic/genai-prices`: input, output, cache-read and cache-write rates and
 * context windows, loaded at the first lookup).
 *
 * A tracker may mirror its totals to a store shared by many processes, the `UsageMirror`
 * (none by default; `Redis.layerUsageMirror` from `effect-llm/Redis`): its snapshot then
 * reports the whole fleet.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as FiberRef from "effect/FiberRef"
import * as Metric from "effect/Metric"
import * as MetricLabel from "effect/MetricLabel"
import type { StoreUnavailableError } from "./LlmError.js"
import type * as Message from "./Message.js"
import { modelLabel } from "./internal/request/telemetry.js"
import * as catalog from "./internal/catalog.js"
import * as internal from "./internal/usage.js"
import * as syncOps from "./internal/syncOps.js"

/**
 * Two usages added up: every count summed, an optional count (reasoning, cached input) absent
 * only when both lack it, estimated when either is. The one sum of the library: the tool loop's
 * steps, the tracker's totals and a batch's summary all add with it.
 * @since 0.1.0 @category utils
 */
export const add: (a: Message.Usage, b: Message.Usage) => Message.Usage = internal.add

/**
 * No tokens: the start of a sum.
 * @since 0.1.0 @category utils
 */
export const empty: Message.Usage = internal.empty

/**
 * US dollars per million tokens. `cachedInputPerMillion` prices input tokens read from the
 * provider's prompt cache, `cacheWritePerMillion` those written to it; when absent, they cost
 * the full input price.
 * @since 0.1.0 @category prices
 */
export interface Rates {
  readonly inputPerMillion: number
  readonly outputPerMillion: number
  readonly cachedInputPerMillion?: number | undefined
  readonly cacheWritePerMillion?: number | undefined
}

/**
 * A model's price: its rates, and the rates that replace them for a request whose input passes
 * a tier's `aboveInputTokens` (long-context prices: the highest tier passed prices the whole
 * request).
 * @since 0.1.0 @category prices
 */
export interface Price extends Rates {
  readonly tiers?: ReadonlyArray<Rates & { readonly aboveInputTokens: number }> | undefined
}

/**
 * Prices by model name. A key may also be `provider/model` to price one provider's copy of a
 * model differently. Lookup is exact first, then the longest key that prefixes the model
 * (so `gpt-4o-mini-2024-07-18` is priced as `gpt-4o-mini`).
 * @since 0.1.0 @category prices
 */
export type PriceTable = Readonly<Record<string, Price>>

/**
 * The price of `model` (served by `provider`) in `table`, or undefined when unknown.
 * @since 0.1.0 @category prices
 */
export const priceOf = (table: PriceTable, provider: string, model: string): Price | undefined => {
  const qualified = table[`${provider}/${model}`] ?? table[model]
  if (qualified !== undefined) return qualified
  // OpenRouter-style names carry the vendor: `openai/gpt-4o` is priced as `gpt-4o`
  const slash = model.lastIndexOf("/")
  const bare = slash >= 0 ? model.slice(slash + 1) : model
  let best: Price | undefined
  let bestLength = 0
  for (const key in table) {
    if (key.length > bestLength && (bare.startsWith(key) || model.startsWith(key))) {
      best = table[key]
      bestLength = key.length
    }
  }
  return best
}

/**
 * Dollars for a usage at a price. Reasoning tokens are part of output tokens, as every
 * provider bills them; cache reads and writes are part of input tokens, each at its own rate.
 * @since 0.1.0 @category prices
 */
export const costOf = (
  price: Price,
  usage: Pick<Message.Usage, "inputTokens" | "outputTokens" | "cachedInputTokens" | "cacheWriteTokens">
): number => {
  let rates: Rates = price
  for (const tier of price.tiers ?? []) if (usage.inputTokens > tier.aboveInputTokens) rates = tier
  const cached = Math.min(usage.cachedInputTokens ?? 0, usage.inputTokens)
  const written = Math.min(usage.cacheWriteTokens ?? 0, usage.inputTokens - cached)
  return ((usage.inputTokens - cached - written) * rates.inputPerMillion +
    cached * (rates.cachedInputPerMillion ?? rates.inputPerMillion) +
    written * (rates.cacheWritePerMillion ?? rates.inputPerMillion) +
    usage.outputTokens * rates.outputPerMillion) / 1_000_000
}

/**
 * What the model catalog knows of a model: its context window and its price.
 * @since 0.1.0 @category catalog
 */
export interface ModelInfo {
  /** The catalog's provider id (`openai`, `anthropic`, `google`, `openrouter`, …). */
  readonly catalogProvider: string
  /** The catalog's id of the model the name matched (dated and aliased names match their model). */
  readonly id: string
  readonly name: string | undefined
  readonly contextWindow: number | undefined
  readonly price: Price
}

/**
 * What the model catalog (`@pydantic/genai-prices`, its data bundled, no network) knows of
 * `model` served by `provider`, or undefined. The catalog is imported at the first call: the
 * entry point never loads it. Local servers (`ollama`, `vllm`) are never priced by it.
 * @since 0.1.0 @category catalog
 */
export const modelInfo = (provider: string, model: string): Effect.Effect<ModelInfo | undefined> =>
  Effect.map(catalog.load, (c) => c.lookup(provider, model))

/**
 * A price lookup: `table` first, then the model catalog (unless `catalog` is false). The
 * catalog is imported when the lookup is made, so the lookup itself is synchronous.
 * @since 0.1.0 @category prices
 */
export const pricing = (
  table: PriceTable,
  options?: { readonly catalog?: boolean | undefined }
): Effect.Effect<(provider: string, model: string) => Price | undefined> =>
  options?.catalog === false
    ? Effect.succeed((provider, model) => priceOf(table, provider, model))
    : Effect.map(catalog.load, (c) => (provider, model) => priceOf(table, provider, model) ?? c.lookup(provider, model)?.price)

/**
 * Dollars for one response's usage: the user's price when `table` has one, else the cost the
 * provider reported (OpenRouter), else the price from `lookup`; undefined when none applies.
 */
const dollarsFor = (
  table: PriceTable,
  lookup: (provider: string, model: string) => Price | undefined,
  provider: string,
  model: string,
  usage: Message.Usage
): number | undefined => {
  const own = priceOf(table, provider, model)
  if (own !== undefined) return costOf(own, usage)
  if (usage.cost !== undefined) return usage.cost
  const price = lookup(provider, model)
  return price === undefined ? undefined : costOf(price, usage)
}

/** @since 0.1.0 @category models */
export interface Totals {
  readonly requests: number
  readonly inputTokens: number
  readonly outputTokens: number
  readonly reasoningTokens: number
  readonly cachedInputTokens: number
  readonly cacheWriteTokens: number
  readonly totalTokens: number
  /** Requests whose usage the library estimated because the provider reported none. */
  readonly estimatedRequests: number
  /** US dollars, for the requests whose model has a price. */
  readonly cost: number
  /** Requests whose model had no price, so `cost` leaves them out. */
  readonly unpricedRequests: number
}

/** @since 0.1.0 @category models */
export interface Entry extends Totals {
  readonly provider: string
  readonly model: string
}

/** @since 0.1.0 @category models */
export interface Snapshot {
  /** One entry per provider and model, in first-seen order. */
  readonly entries: ReadonlyArray<Entry>
  readonly total: Totals
}

/** @since 0.1.0 @category models */
export interface Service {
  /** Adds one response's usage. Providers call it; callers rarely need to. */
  readonly record: (provider: string, model: string, usage: Message.Usage) => Effect.Effect<void>
  /**
   * The totals: this process's, or, over a `UsageMirror`, every process's (a mirror that
   * cannot answer fails it with `StoreUnavailableError`; a tracker in memory never does).
   */
  readonly snapshot: Effect.Effect<Snapshot, StoreUnavailableError>
  /** Zeroes the totals: over a mirror, the fleet's. */
  readonly reset: Effect.Effect<void, StoreUnavailableError>
  /** The user's own prices; they override the catalog and a provider's reported cost. */
  readonly prices: PriceTable
  /** Whether the model catalog prices what `prices` does not (false with `replacePrices`). */
  readonly catalog: boolean
  /** The price of a model: the user's, else the catalog's; undefined when neither knows it. */
  readonly priceOf: (provider: string, model: string) => Effect.Effect<Price | undefined>
  /**
   * Dollars for a usage of `model`: at the user's price, else the cost the provider reported
   * (OpenRouter), else at the catalog's price; undefined when none applies.
   */
  readonly cost: (provider: string, model: string, usage: Message.Usage) => Effect.Effect<number | undefined>
}

/**
 * The tracker every provider records into: a `Context.Reference` read when a provider's layer
 * builds. Its default is `untracked`, which records nothing (its snapshot stays empty) and
 * prices with the model catalog; provide `layer(...)` below the providers to keep totals.
 * @since 0.1.0 @category tags
 */
export class UsageTracker extends Context.Reference<UsageTracker>()("effect-llm/UsageTracker", {
  defaultValue: (): Service => untracked
}) {}

/**
 * Where a tracker mirrors its totals so that many processes report one set: each process
 * adds its share (`record`, bookkeeping that never fails nor holds the caller; a store that
 * cannot take it keeps it and sends it again, counted once), and `entries` reads the sum.
 * @since 0.1.0 @category mirror
 */
export interface Mirror {
  readonly record: (provider: string, model: string, totals: Totals) => Effect.Effect<void>
  /** Every process's totals per provider and model, in first-seen order. */
  readonly entries: Effect.Effect<ReadonlyArray<Entry>, StoreUnavailableError>
  readonly reset: Effect.Effect<void, StoreUnavailableError>
}

/**
 * `UsageMirror`'s default: no mirror, each tracker's totals are its process's own.
 * @since 0.1.0 @category mirror
 */
export const unmirrored: Mirror = {
  record: () => Effect.void,
  entries: Effect.succeed([]),
  reset: Effect.void
}

/**
 * The mirror a tracker reads when it builds: a `Context.Reference` whose default is
 * `unmirrored`; provide `Redis.layerUsageMirror` (from `effect-llm/Redis`) below `layer`.
 * @since 0.1.0 @category mirror
 */
export class UsageMirror extends Context.Reference<UsageMirror>()("effect-llm/UsageMirror", {
  defaultValue: (): Mirror => unmirrored
}) {}

/**
 * The numeric fields of `Totals`, in a fixed order: what a mirror keeps, one counter each.
 * @since 0.1.0 @category mirror
 */
export const totalsFields: ReadonlyArray<keyof Totals> = internal.totalsFields

/** @since 0.1.0 @category models */
export interface Options {
  /** Your prices, over the model catalog's; set `replacePrices` to use only these. */
  readonly prices?: PriceTable | undefined
  readonly replacePrices?: boolean | undefined
}

/** @since 0.1.0 @category metrics */
export const costCounter = Metric.counter("effect_llm_cost_usd_total", {
  description: "Estimated spend in US dollars",
  incremental: true
})

/** A running total: the tokens as one summed usage, and the counts beside it. */
interface Tally {
  usage: Message.Usage
  requests: number
  estimatedRequests: number
  cost: number
  unpricedRequests: number
}

const newTally = (): Tally => ({ usage: internal.empty, requests: 0, estimatedRequests: 0, cost: 0, unpricedRequests: 0 })

/** Adds `more` into `into`: the tokens with `add`, the counts beside them. */
const addInto = (into: Tally, more: Tally): void => {
  into.usage = internal.add(into.usage, more.usage)
  into.requests += more.requests
  into.estimatedRequests += more.estimatedRequests
  into.cost += more.cost
  into.unpricedRequests += more.unpricedRequests
}

const totalsOf = (t: Tally): Totals => ({
  requests: t.requests,
  inputTokens: t.usage.inputTokens,
  outputTokens: t.usage.outputTokens,
  reasoningTokens: t.usage.reasoningTokens ?? 0,
  cachedInputTokens: t.usage.cachedInputTokens ?? 0,
  cacheWriteTokens: t.usage.cacheWriteTokens ?? 0,
  totalTokens: t.usage.totalTokens,
  estimatedRequests: t.estimatedRequests,
  cost: t.cost,
  unpricedRequests: t.unpricedRequests
})

/** A cost lookup over `table` and, unless told not to, the catalog (imported at the first call). */
const costWith = (table: PriceTable, useCatalog: boolean) => {
  const lookup = pricing(table, { catalog: useCatalog })
  return {
    priceOf: (provider: string, model: string) => Effect.map(lookup, (price) => price(provider, model)),
    cost: (provider: string, model: string, usage: Message.Usage) =>
      Effect.map(lookup, (price) => dollarsFor(table, price, provider, model, usage))
  }
}

/**
 * `UsageTracker`'s default: it records nothing, so its snapshot is always empty; it prices
 * with the model catalog, so `Budget` prices requests with it.
 * @since 0.1.0 @category constructors
 */
export const untracked: Service = {
  record: () => Effect.void,
  snapshot: Effect.sync((): Snapshot => ({ entries: [], total: totalsOf(newTally()) })),
  reset: Effect.void,
  prices: {},
  catalog: true,
  ...costWith({}, true)
}

/**
 * A tracker: totals per provider and model, priced with your `prices`, then the cost a
 * provider reports (OpenRouter), then the model catalog (imported when the tracker is made).
 * A model none of them prices is counted in `unpricedRequests`, and said once in the log.
 * The totals are mirrored to the `UsageMirror` in context (by default none).
 * @since 0.1.0 @category constructors
 */
export const make = (options: Options = {}): Effect.Effect<Service> =>
  Effect.gen(function* () {
    const mirror = yield* UsageMirror
    const prices: PriceTable = { ...options.prices }
    const useCatalog = options.replacePrices !== true
    const lookup = yield* pricing(prices, { catalog: useCatalog })
    // a plain Map: every update is one synchronous step, so fibers cannot interleave inside it
    const entries = new Map<string, { readonly provider: string; readonly model: string; readonly tally: Tally }>()
    const unpriced = new Set<string>()
    // one tagged cost counter per provider and model: tagging on every call would rebuild
    // the metric's key (and hash it) each time; past MAX_MODEL_LABELS models, one for `other`
    // the labels of each, one array per pair: the metric caches its entry by the array itself
    const costCounters = new Map<string, ReadonlyArray<MetricLabel.MetricLabel>>()
    /** Adds one call's usage to its entry; returns its cost's key and dollars (undefined: unpriced). */
    const tally = (provider: string, model: string, usage: Message.Usage, dollars: number | undefined) => {
      // the totals of models past MAX_MODEL_LABELS go under `other`, so caller input cannot grow them forever
      const tracked = modelLabel(entries, provider, model)
      const key = `${provider}\u0000${tracked}`
      let entry = entries.get(key)
      if (entry === undefined) {
        entry = { provider, model: tracked, tally: newTally() }
        entries.set(key, entry)
      }
      const one: Tally = {
        usage,
        requests: 1,
        estimatedRequests: usage.estimated ? 1 : 0,
        cost: dollars ?? 0,
        unpricedRequests: dollars === undefined ? 1 : 0
      }
      addInto(entry.tally, one)
      return { tracked, key, one }
    }
    const costLabelsOf = (provider: string, model: string) => {
      const label = modelLabel(costCounters, provider, model)
      const labelKey = `${provider}\u0000${label}`
      let labels = costCounters.get(labelKey)
      if (labels === undefined) {
        labels = [MetricLabel.make("provider", provider), MetricLabel.make("model", label)]
        costCounters.set(labelKey, labels)
      }
      return labels
    }
    const countCost = (provider: string, model: string, dollars: number, ambient: ReadonlyArray<MetricLabel.MetricLabel>) => {
      const labels = costLabelsOf(provider, model)
      costCounter.unsafeUpdate(dollars, ambient.length === 0 ? labels : [...labels, ...ambient])
    }
    const record = (provider: string, model: string, usage: Message.Usage) =>
      Effect.suspend(() => {
        const dollars = dollarsFor(prices, lookup, provider, model, usage)
        const { key, one, tracked } = tally(provider, model, usage, dollars)
        const mirrored = mirror === unmirrored ? Effect.void : mirror.record(provider, tracked, totalsOf(one))
        // tokens are counted by Telemetry on every call, tracker or not; cost needs prices
        if (dollars === undefined) {
          if (unpriced.has(key)) return mirrored
          unpriced.add(key)
          return Effect.zipRight(
            mirrored,
            Effect.logWarning(
              `Usage: no price for ${provider}/${tracked} in your prices${useCatalog ? " or the model catalog" : ""}; its cost is not counted (see unpricedRequests)`
            )
          )
        }
        return Effect.zipRight(mirrored, FiberRef.getWith(FiberRef.currentMetricLabels, (ambient) => Effect.sync(() => countCost(provider, model, dollars, ambient))))
      })
    const local = Effect.sync((): Snapshot => {
      const list = [...entries.values()]
      const total = newTally()
      for (const { tally } of list) addInto(total, tally)
      return { entries: list.map(({ model, provider, tally }): Entry => ({ provider, model, ...totalsOf(tally) })), total: totalsOf(total) }
    })
    const snapshot = mirror === unmirrored
      ? local
      : Effect.map(mirror.entries, (fleet): Snapshot => ({ entries: fleet, total: internal.sumTotals(fleet) }))
    const clear = Effect.sync(() => entries.clear())
    const reset = mirror === unmirrored ? clear : Effect.zipRight(mirror.reset, clear)
    const service: Service = {
      record,
      snapshot,
      reset,
      prices,
      catalog: useCatalog,
      priceOf: (provider, model) => Effect.sync(() => lookup(provider, model)),
      cost: (provider, model, usage) => Effect.sync(() => dollarsFor(prices, lookup, provider, model, usage))
    }
    if (mirror === unmirrored) {
      // the same record in one step for the request path's fast path; a model's first unpriced
      // call (which logs) takes `record`
      syncOps.usageOps.set(service, {
        record: (provider, model, usage, ambient) => {
          const dollars = dollarsFor(prices, lookup, provider, model, usage)
          if (dollars === undefined && !unpriced.has(`${provider}\u0000${modelLabel(entries, provider, model)}`)) return false
          tally(provider, model, usage, dollars)
          if (dollars !== undefined) countCost(provider, model, dollars, ambient)
          return true
        }
      })
    }
    return service
  })

/**
 * A tracker. Every provider (a `Provider.Spec` on the shared request path) records into the
 * `UsageTracker` it finds when its layer builds, so provide this below the provider layers (or
 * to the whole stack).
 * @since 0.1.0 @category layers
 */
export const layer = (options?: Options): Layer.Layer<UsageTracker> => Layer.effect(UsageTracker, make(options))

/** @since 0.1.0 @category accessors */
export const snapshot: Effect.Effect<Snapshot, StoreUnavailableError, UsageTracker> = Effect.flatMap(UsageTracker, (t) => t.snapshot)

/** @since 0.1.0 @category accessors */
export const reset: Effect.Effect<void, StoreUnavailableError, UsageTracker> = Effect.flatMap(UsageTracker, (t) => t.reset)

/** @since 0.1.0 @category accessors */
export const record = (provider: string, model: string, usage: Message.Usage): Effect.Effect<void, never, UsageTracker> =>
  Effect.flatMap(UsageTracker, (t) => t.record(provider, model, usage))
