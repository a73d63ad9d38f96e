/**
 * The synchronous forms of the in-memory services the request path calls on every request
 * (key pool, rate limiter, usage tracker). Each is the same operation as the service's
 * `Effect`, on the same state; the request path's fast path (`request/fastJson.ts`) calls them
 * inside one step instead of running a dozen small `Effect`s through the fiber's loop.
 *
 * They are kept beside the services, by service object, so that the public interfaces stay
 * what they are: a pool, limiter or tracker of your own (or over Redis) has none, and its
 * calls take the general path.
 */
import type * as MetricLabel from "effect/MetricLabel"
import type { Lease, Outcome, Service as KeyPool, Store as KeyPoolStore, Take } from "../KeyPool.js"
import type { Usage } from "../Message.js"
import type { HeaderInput, Learned, Service as RateLimiter, Store as RateLimiterStore } from "../RateLimiter.js"
import type { Service as UsageTracker } from "../Usage.js"

export type Labels = ReadonlyArray<MetricLabel.MetricLabel>

/** A key pool store's operations, each one synchronous step on its state. */
export interface PoolStoreOps {
  readonly take: () => Take
  readonly release: (keyId: string) => void
  readonly report: (keyId: string, outcome: Outcome) => void
  readonly hasHealthyKey: (exceptKeyId?: string) => boolean
}

/** A pool's lease, release and report, with their metrics (`ambient`: the caller's metric labels). */
export interface PoolOps {
  /** A key at once, or undefined when the call must wait for one (or none can serve): then nothing was taken. */
  readonly lease: (ambient: Labels) => Lease | undefined
  readonly release: (lease: Lease) => void
  readonly report: (keyId: string, outcome: Outcome, ambient: Labels) => void
  readonly hasHealthyKey: (exceptKeyId?: string) => boolean
}

/** A limiter store's operations, each one synchronous step on its buckets. */
export interface LimiterStoreOps {
  /** Takes the cost and returns true when it is covered now; otherwise takes nothing. */
  readonly tryReserve: (requests: number, tokens: number, ignorePause: boolean) => boolean
  readonly refund: (requests: number, tokens: number) => void
  readonly adjustTokens: (delta: number) => void
  readonly learn: (learned: Learned) => void
}

/** A limiter's admission without a wait, settlement and observation, with their metrics. */
export interface LimiterOps {
  /** Takes the cost now and returns true, or returns false (nothing taken) when it would wait or be refused. */
  readonly tryAdmit: (requests: number, tokens: number, reattempt: boolean) => boolean
  /** Gives back what `tryAdmit` took, when the call goes on by the general path after all. */
  readonly refund: (requests: number, tokens: number) => void
  /** Counts an admission `tryAdmit` made (the limiter's metric). */
  readonly admitted: (ambient: Labels) => void
  readonly settle: (actualTokens: number, estimatedTokens: number) => void
  readonly observe: (headers: HeaderInput, now: number, ambient: Labels) => void
}

/** A tracker's record; false when it could not record synchronously (the caller runs `record`). */
export interface UsageOps {
  readonly record: (provider: string, model: string, usage: Usage, ambient: Labels) => boolean
}

export const poolStoreOps = new WeakMap<KeyPoolStore, PoolStoreOps>()
export const poolOps = new WeakMap<KeyPool, PoolOps>()
export const limiterStoreOps = new WeakMap<RateLimiterStore, LimiterStoreOps>()
export const limiterOps = new WeakMap<RateLimiter, LimiterOps>()
export const usageOps = new WeakMap<UsageTracker, UsageOps>()
