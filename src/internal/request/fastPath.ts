/**
 * The request path's fast path: when a provider's pool, limiter and tracker are in memory and
 * its transport keeps its own deadlines, a call admits, leases, reports and settles through
 * their synchronous forms (`syncOps.ts`) instead of their `Effect`s. Used by JSON calls
 * (`chatJson.ts`) and by a stream's opening (`stream.ts`).
 */
import type * as KeyPool from "../../KeyPool.js"
import type * as Err from "../../LlmError.js"
import { outcomeOf } from "../keyPool.js"
import * as syncOps from "../syncOps.js"
import type { SigningAuth } from "./credentials.js"
import type { Endpoint } from "./endpoint.js"
import { isKeySpecific, MAX_KEYS_PER_CALL, type Tried, withoutRetryAfter } from "./exchange.js"
import { admittedAtOnce, leaseGauge } from "./telemetry.js"

export interface SyncParts {
  readonly pool: syncOps.PoolOps
  readonly limiter: syncOps.LimiterOps
  readonly usage: syncOps.UsageOps | undefined
}

const partsOf = new WeakMap<Endpoint, SyncParts | null>()

/**
 * The synchronous forms of the endpoint's services, when it has them all, resolved once per
 * endpoint. Not for an auth that signs credentials (its 401s renew and send again), nor a
 * pool that chooses by latency (it samples each lease).
 */
export const syncPartsOf = (endpoint: Endpoint): SyncParts | undefined => {
  let parts = partsOf.get(endpoint)
  if (parts === undefined) {
    const pool = syncOps.poolOps.get(endpoint.pool)
    const limiter = syncOps.limiterOps.get(endpoint.limiter)
    const usage = endpoint.usage === undefined ? undefined : syncOps.usageOps.get(endpoint.usage)
    const signs = typeof (endpoint.auth as Partial<SigningAuth>).renewAfter === "function"
    parts = pool !== undefined && limiter !== undefined && (endpoint.usage === undefined || usage !== undefined) &&
        endpoint.transport.timeouts === true && !signs && endpoint.pool.observe === undefined
      ? { pool, limiter, usage }
      : null
    partsOf.set(endpoint, parts)
  }
  return parts ?? undefined
}

/** A key held by a call on the fast path; `release` gives it back (once). */
export interface HeldLease {
  readonly lease: KeyPool.Lease
  readonly release: () => void
}

/**
 * Admission, then a key, both at once, with the metrics the general path records for them;
 * undefined (nothing taken) when either would wait: the call then takes the general path.
 */
export const leaseNow = (
  endpoint: Endpoint,
  parts: SyncParts,
  estimatedTokens: number,
  ambient: syncOps.Labels
): HeldLease | undefined => {
  if (!parts.limiter.tryAdmit(1, estimatedTokens, false)) return undefined
  const lease = parts.pool.lease(ambient)
  if (lease === undefined) {
    parts.limiter.refund(1, estimatedTokens)
    return undefined
  }
  parts.limiter.admitted(ambient)
  admittedAtOnce(ambient)
  const endGauge = leaseGauge(endpoint.provider, ambient)
  let held = true
  return {
    lease,
    release: () => {
      if (!held) return
      held = false
      parts.pool.release(lease)
      endGauge()
    }
  }
}

/**
 * Feeds a reply's head to the limiter. A 429's retry-after is about the key that got it (the
 * pool cools it down): the limiter pauses everyone only when no other key could serve.
 */
export const observeHead = (
  parts: SyncParts,
  lease: KeyPool.Lease,
  status: number,
  headers: Readonly<Record<string, string>>,
  now: number,
  ambient: syncOps.Labels
): void => parts.limiter.observe(status === 429 && parts.pool.hasHealthyKey(lease.keyId) ? withoutRetryAfter(headers) : headers, now, ambient)

/** Reports what `error` says about the key, if it says anything. */
export const reportNow = (parts: SyncParts, keyId: string, error: Err.LlmError, ambient: syncOps.Labels): void => {
  const outcome = outcomeOf(error)
  if (outcome !== undefined) parts.pool.report(keyId, outcome, ambient)
}

/**
 * Whether a failed attempt goes on, on the general path, with another key: the failure was
 * its key's and another key can serve (as `retryOnAnotherKey` decides). Records it as the last.
 */
export const goesToAnotherKey = (parts: SyncParts, tried: Tried, error: Err.LlmError): boolean => {
  if (!(isKeySpecific(error) && tried.keys.size < MAX_KEYS_PER_CALL && parts.pool.hasHealthyKey(tried.lastKey))) return false
  tried.last = error
  return true
}
