/**
 * The model catalog: prices (input, output, cache read, cache write, long-context tiers) and
 * context windows from `@pydantic/genai-prices`, whose data ships inside the package (no
 * network). Its module is large, so it is imported at the first lookup, never with the entry.
 */
import * as Effect from "effect/Effect"
import type { Price, Rates } from "../Usage.js"

/** What the catalog knows of one model. */
export interface ModelInfo {
  /** The catalog's provider id (`openai`, `anthropic`, `google`, `openrouter`, …). */
  readonly catalogProvider: string
  /** The catalog's model id: the one the name matched. */
  readonly id: string
  readonly name: string | undefined
  readonly contextWindow: number | undefined
  readonly price: Price
}

export interface Catalog {
  /** What the catalog knows of `model` served by `provider`, or undefined. */
  readonly lookup: (provider: string, model: string) => ModelInfo | undefined
}

type GenaiPrices = typeof import("@pydantic/genai-prices")
type TieredPrices = { readonly base: number; readonly tiers: ReadonlyArray<{ readonly start: number; readonly price: number }> }
type ModelPrice = Record<string, number | TieredPrices | undefined>

/** Our provider ids where the catalog's differ. */
const catalogIds: Record<string, string> = { gemini: "google", zhipu: "zhipuai" }

/** Servers that run models locally: not priced by any vendor's list, whatever the model's name. */
const local = new Set(["ollama", "vllm"])

/** The price keys read, as `Rates` fields. */
const keys = [
  ["input_mtok", "inputPerMillion"],
  ["output_mtok", "outputPerMillion"],
  ["cache_read_mtok", "cachedInputPerMillion"],
  ["cache_write_mtok", "cacheWritePerMillion"]
] as const

/** A rate at `inputTokens`: the highest tier passed, else the base (the catalog's rule). */
const rateAt = (value: number | TieredPrices, inputTokens: number): number => {
  if (typeof value === "number") return value
  let rate = value.base
  for (const tier of value.tiers) if (inputTokens > tier.start) rate = tier.price
  return rate
}

const ratesAt = (prices: ModelPrice, inputTokens: number): Rates | undefined => {
  const rates: Record<string, number> = {}
  for (const [key, field] of keys) {
    const value = prices[key]
    if (value !== undefined) rates[field] = rateAt(value, inputTokens)
  }
  return rates.inputPerMillion === undefined || rates.outputPerMillion === undefined ? undefined : (rates as unknown as Rates)
}

/** The catalog's prices as a `Price`: base rates, and one tier per long-context threshold. */
export const priceOf = (prices: ModelPrice): Price | undefined => {
  const base = ratesAt(prices, 0)
  if (base === undefined) return undefined
  const starts = new Set<number>()
  for (const [key] of keys) {
    const value = prices[key]
    if (typeof value === "object") for (const tier of value.tiers) starts.add(tier.start)
  }
  if (starts.size === 0) return base
  const tiers = [...starts].sort((a, b) => a - b).map((start) => ({ aboveInputTokens: start, ...ratesAt(prices, start + 1)! }))
  return { ...base, tiers }
}

/** Caller-chosen model names must not grow the memo forever. */
const MAX_MEMO = 1024

const catalogOf = (module: GenaiPrices): Catalog => {
  const memo = new Map<string, ModelInfo | null>()
  const find = (provider: string, model: string): ModelInfo | undefined => {
    if (local.has(provider)) return undefined
    const empty = { input_tokens: 0, output_tokens: 0 }
    try {
      // the provider's own list first; a name it does not know (a proxy, a custom id) by the model's name alone
      const found = module.calcPrice(empty, model, { providerId: catalogIds[provider] ?? provider }) ?? module.calcPrice(empty, model)
      if (found === null) return undefined
      const price = priceOf(found.model_price as ModelPrice)
      return price === undefined
        ? undefined
        : { catalogProvider: found.provider.id, id: found.model.id, name: found.model.name, contextWindow: found.model.context_window, price }
    } catch {
      // data the package itself refuses: unknown, rather than a defect
      return undefined
    }
  }
  return {
    lookup: (provider, model) => {
      const key = `${provider}\u0000${model}`
      const known = memo.get(key)
      if (known !== undefined) return known ?? undefined
      const info = find(provider, model)
      if (memo.size >= MAX_MEMO) memo.clear()
      memo.set(key, info ?? null)
      return info
    }
  }
}

let loaded: Catalog | undefined
let loading: Promise<Catalog> | undefined

/** The catalog, imported at the first call and kept. */
export const load: Effect.Effect<Catalog> = Effect.suspend(() =>
  loaded !== undefined
    ? Effect.succeed(loaded)
    : Effect.promise(() => (loading ??= import("@pydantic/genai-prices").then((module) => (loaded = catalogOf(module)))))
)
