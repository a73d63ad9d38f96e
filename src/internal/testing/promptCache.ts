/**
 * The fake's prompt cache: what a provider's cache would read and write for a prompt, so
 * users can test their caching without a key. A prompt is a list of blocks in the order the
 * API reads it (tools, system, messages). With breakpoints (Anthropic's `cache_control`),
 * the prefix up to the last breakpoint is written, and the longest prefix ending at a
 * breakpoint that an earlier request wrote is read. Without them, on APIs that cache on their
 * own (OpenAI, Gemini), the longest prefix of whole blocks an earlier request sent is read.
 * Either way only prefixes of at least `minTokens` count, as the providers' minimums say.
 */
import { createHash } from "node:crypto"

export interface PromptBlock {
  readonly text: string
  readonly breakpoint: boolean
}

export interface CacheUsage {
  /** Prompt tokens read from the cache. */
  readonly read: number
  /** Prompt tokens written to it. */
  readonly write: number
}

export const noCache: CacheUsage = { read: 0, write: 0 }

/** The providers' smallest cacheable prefix (Anthropic's and OpenAI's documented 1024). */
export const defaultMinTokens = 1024

export class PromptCache {
  private readonly seen = new Set<string>()
  constructor(readonly minTokens: number = defaultMinTokens) {}

  /** What `blocks` read and write; `automatic` says the API caches without breakpoints. */
  use(blocks: ReadonlyArray<PromptBlock>, automatic: boolean): CacheUsage {
    const prefixes: Array<{ readonly key: string; readonly tokens: number; readonly breakpoint: boolean }> = []
    const hash = createHash("sha256")
    let chars = 0
    for (const block of blocks) {
      hash.update(block.text)
      chars += block.text.length
      prefixes.push({ key: hash.copy().digest("hex"), tokens: Math.ceil(chars / 4), breakpoint: block.breakpoint })
    }
    const explicit = prefixes.some((p) => p.breakpoint)
    if (!explicit && !automatic) return noCache
    const points = prefixes.filter((p) => (explicit ? p.breakpoint : true) && p.tokens >= this.minTokens)
    let read = 0
    for (const point of points) if (this.seen.has(point.key)) read = Math.max(read, point.tokens)
    // breakpoints write the prefix they end; automatic caching keeps every prefix it saw
    const last = points[points.length - 1]
    const write = explicit && last !== undefined && !this.seen.has(last.key) ? last.tokens - read : 0
    for (const point of points) this.seen.add(point.key)
    return { read, write: automatic && !explicit ? 0 : Math.max(0, write) }
  }
}
