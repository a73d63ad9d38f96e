/**
 * Usage and cost: a tracker of totals per provider and model, fed by every provider
 * response when its layer is provided (by default nothing is tracked), and a price table that
 * turns tokens into dollars.
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
import * as Metric from "effect/Metric"
import type { StoreUnavailableError } from "./LlmError.js"
import type * as Message from "./Message.js"
import { modelLabel } from "./internal/request/telemetry.js"
import * as internal from "./internal/usage.js"

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
 * US dollars per million tokens. `cachedInputPerMillion` prices input tokens the provider
 * served from its prompt cache; when absent they cost the full input price.
 * @since 0.1.0 @category prices
 */
export interface Price {
  readonly inputPerMillion: number
  readonly outputPerMillion: number
  readonly cachedInputPerMillion?: number | undefined
}

/**
 * Prices by model name. A key may also be `provider/model` to price one provider's copy of a
 * model differently. Lookup is exact first, then the longest key that prefixes the model
 * (so `gpt-4o-mini-2024-07-18` is priced as `gpt-4o-mini`).
 * @since 0.1.0 @category prices
 */
export type PriceTable = Readonly<Record<string, Price>>

/**
 * Public list prices (USD per million tokens) of common models, as published by their
 * vendors. Contracts and discounts differ: override with `layer({ prices })`.
 * @since 0.1.0 @category prices
 */
export const defaultPrices: PriceTable = {
  "gpt-4o": { inputPerMillion: 2.5, outputPerMillion: 10, cachedInputPerMillion: 1.25 },
  "gpt-4o-mini": { inputPerMillion: 0.15, outputPerMillion: 0.6, cachedInputPerMillion: 0.075 },
  "gpt-4.1": { inputPerMillion: 2, outputPerMillion: 8, cachedInputPerMillion: 0.5 },
  "gpt-4.1-mini": { inputPerMillion: 0.4, outputPerMillion: 1.6, cachedInputPerMillion: 0.1 },
  "gpt-4.1-nano": { inputPerMillion: 0.1, outputPerMillion: 0.4, cachedInputPerMillion: 0.025 },
  "gpt-5": { inputPerMillion: 1.25, outputPerMillion: 10, cachedInputPerMillion: 0.125 },
  "gpt-5-mini": { inputPerMillion: 0.25, outputPerMillion: 2, cachedInputPerMillion: 0.025 },
  "gpt-5-nano": { inputPerMillion: 0.05, outputPerMillion: 0.4, cachedInputPerMillion: 0.005 },
  "o3": { inputPerMillion: 2, outputPerMillion: 8, cachedInputPerMillion: 0.5 },
  "o4-mini": { inputPerMillion: 1.1, outputPerMillion: 4.4, cachedInputPerMillion: 0.275 },
  "claude-opus-4": { inputPerMillion: 15, outputPerMillion: 75, cachedInputPerMillion: 1.5 },
  "claude-sonnet-4": { inputPerMillion: 3, outputPerMillion: 15, cachedInputPerMillion: 0.3 },
  "claude-3-5-haiku": { inputPerMillion: 0.8, outputPerMillion: 4, cachedInputPerMillion: 0.08 },
  "gemini-2.5-pro": { inputPerMillion: 1.25, outputPerMillion: 10 },
  "gemini-2.5-flash": { inputPerMillion: 0.3, outputPerMillion: 2.5 },
  "deepseek-chat": { inputPerMillion: 0.27, outputPerMillion: 1.1, cachedInputPerMillion: 0.07 }
}

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
 * provider bills them.
 * @since 0.1.0 @category prices
 */
export const costOf = (price: Price, usage: Pick<Message.Usage, "inputTokens" | "outputTokens" | "cachedInputTokens">): number => {
  const cached = Math.min(usage.cachedInputTokens ?? 0, usage.inputTokens)
  const cachedPrice = price.cachedInputPerMillion ?? price.inputPerMillion
  return ((usage.inputTokens - cached) * price.inputPerMillion + cached * cachedPrice +
    usage.outputTokens * price.outputPerMillion) / 1_000_000
}

/** @since 0.1.0 @category models */
export interface Totals {
  readonly requests: number
  readonly inputTokens: number
  readonly outputTokens: number
  readonly reasoningTokens: number
  readonly cachedInputTokens: number
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
  /** The price table in force, with the user's overrides. */
  readonly prices: PriceTable
  /** Dollars for a usage of `model`, or undefined when it has no price. */
  readonly cost: (provider: string, model: string, usage: Message.Usage) => number | undefined
}

/**
 * The tracker every provider records into: a `Context.Reference` read when a provider's layer
 * builds. Its default is `untracked`, which records nothing (its snapshot stays empty) and
 * prices with `defaultPrices`; provide `layer(...)` below the providers to keep totals.
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
  /** Merged over `defaultPrices`; set `replacePrices` to use only these. */
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
  totalTokens: t.usage.totalTokens,
  estimatedRequests: t.estimatedRequests,
  cost: t.cost,
  unpricedRequests: t.unpricedRequests
})

/**
 * `UsageTracker`'s default: it records nothing, so its snapshot is always empty; its prices are
 * `defaultPrices`, so `Budget` prices requests with them.
 * @since 0.1.0 @category constructors
 */
export const untracked: Service = {
  record: () => Effect.void,
  snapshot: Effect.sync((): Snapshot => ({ entries: [], total: totalsOf(newTally()) })),
  reset: Effect.void,
  prices: defaultPrices,
  cost: (provider, model, usage) => {
    const price = priceOf(defaultPrices, provider, model)
    return price === undefined ? undefined : costOf(price, usage)
  }
}

/**
 * A tracker, mirrored to the `UsageMirror` in context (by default none).
 * @since 0.1.0 @category constructors
 */
export const make = (options: Options = {}): Effect.Effect<Service> =>
  Effect.flatMap(UsageMirror, (mirror) => Effect.sync(() => {
    const prices: PriceTable = options.replacePrices === true
      ? { ...options.prices }
      : { ...defaultPrices, ...options.prices }
    // a plain Map: every update is one synchronous step, so fibers cannot interleave inside it
    const entries = new Map<string, { readonly provider: string; readonly model: string; readonly tally: Tally }>()
    const cost = (provider: string, model: string, usage: Message.Usage) => {
      const price = priceOf(prices, provider, model)
      return price === undefined ? undefined : costOf(price, usage)
    }
    // one tagged cost counter per provider and model: tagging on every call would rebuild
    // the metric's key (and hash it) each time; past MAX_MODEL_LABELS models, one for `other`
    const costCounters = new Map<string, Metric.Metric.Counter<number>>()
    const record = (provider: string, model: string, usage: Message.Usage) =>
      Effect.suspend(() => {
        const dollars = cost(provider, model, usage)
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
        const mirrored = mirror === unmirrored ? Effect.void : mirror.record(provider, tracked, totalsOf(one))
        // tokens are counted by Telemetry on every call, tracker or not; cost needs prices
        if (dollars === undefined) return mirrored
        const label = modelLabel(costCounters, provider, model)
        const labelKey = `${provider}\u0000${label}`
        let counter = costCounters.get(labelKey)
        if (counter === undefined) {
          counter = costCounter.pipe(Metric.tagged("provider", provider), Metric.tagged("model", label))
          costCounters.set(labelKey, counter)
        }
        return Effect.zipRight(mirrored, Metric.incrementBy(counter, dollars))
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
    return { record, snapshot, reset, prices, cost }
  }))

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
