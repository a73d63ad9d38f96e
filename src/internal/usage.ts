/** Summing usage: the one place that knows how two `Usage` values add up; and totals' fields. */
import type { Usage } from "../Message.js"
import type { Entry, Totals } from "../Usage.js"

/** No tokens. */
export const empty: Usage = { inputTokens: 0, outputTokens: 0, totalTokens: 0, estimated: false }

const plus = (a: number | undefined, b: number | undefined): number | undefined =>
  a === undefined ? b : b === undefined ? a : a + b

/**
 * `a` and `b` together: every count summed, an optional count absent only when both lack it,
 * and estimated when either is.
 */
export const add = (a: Usage, b: Usage): Usage => {
  const usage: { -readonly [K in keyof Usage]: Usage[K] } = {
    inputTokens: a.inputTokens + b.inputTokens,
    outputTokens: a.outputTokens + b.outputTokens,
    totalTokens: a.totalTokens + b.totalTokens,
    estimated: a.estimated || b.estimated
  }
  const reasoning = plus(a.reasoningTokens, b.reasoningTokens)
  const cached = plus(a.cachedInputTokens, b.cachedInputTokens)
  const written = plus(a.cacheWriteTokens, b.cacheWriteTokens)
  const cost = plus(a.cost, b.cost)
  if (reasoning !== undefined) usage.reasoningTokens = reasoning
  if (cached !== undefined) usage.cachedInputTokens = cached
  if (written !== undefined) usage.cacheWriteTokens = written
  if (cost !== undefined) usage.cost = cost
  return usage
}

/**
 * Every field of `Totals`: a field added there fails to compile here until it is added, and
 * then the mirrors (`Redis.layerUsageMirror`) keep it with no other change.
 */
const fields: { readonly [K in keyof Totals]: true } = {
  requests: true,
  inputTokens: true,
  outputTokens: true,
  reasoningTokens: true,
  cachedInputTokens: true,
  cacheWriteTokens: true,
  totalTokens: true,
  estimatedRequests: true,
  cost: true,
  unpricedRequests: true
}

export const totalsFields = Object.keys(fields) as ReadonlyArray<keyof Totals>

/** Totals with every field zero. */
export const zeroTotals = (): { -readonly [K in keyof Totals]: number } => {
  const totals = {} as { -readonly [K in keyof Totals]: number }
  for (const field of totalsFields) totals[field] = 0
  return totals
}

/** The sum of entries, field by field. */
export const sumTotals = (entries: ReadonlyArray<Entry>): Totals => {
  const total = zeroTotals()
  for (const entry of entries) for (const field of totalsFields) total[field] += entry[field]
  return total
}

