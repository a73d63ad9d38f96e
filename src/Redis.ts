/**
 * `effect-llm/Redis`: the Redis backends, so that many processes share one key pool, one
 * rate limit, one response cache, one spend budget, one circuit breaker per endpoint and one
 * set of usage totals. A backend imports its parent, never the reverse: each store here is a
 * layer of the store Tag its service reads (`KeyPool.KeyPoolStore`,
 * `RateLimiter.RateLimiterStore`, `ResponseCache.ResponseCacheStore`, `Budget.BudgetStore`,
 * `CircuitBreaker.CircuitBreakerStore`, `Usage.UsageMirror`), and the algorithms are the
 * services' own, the same as in memory. `layerKeyPool`, `layerRateLimiter`,
 * `layerResponseCache`, `layerBudget`, `layerCircuitBreaker` and `layerUsage` are each
 * service over its Redis store, in one layer.
 *
 * ```ts
 * const Pools = Layer.mergeAll(
 *   KeyPool.layer({ providerId: "openai", keys }),
 *   RateLimiter.layer({ requestsPerMinute: 500, provider: "openai" })
 * ).pipe(Layer.provide(Layer.mergeAll(
 *   Redis.layerKeyPoolStore({ url: "redis://127.0.0.1:6379/0" }),
 *   Redis.layerRateLimiterStore({ url: "redis://127.0.0.1:6379/0" })
 * )))
 * ```
 *
 * Every layer takes one server (`{ url }`) or a Redis Cluster (`{ cluster: [node urls] }`):
 * the keys each script touches share a hash tag, so that they live in one slot. See
 * docs/fleet.md for the key layout.
 *
 * This module, and only this one, loads `ioredis` (an optional peer dependency); the main
 * entry `effect-llm` never imports it.
 *
 * Outages. The stores fail to build with `RedisError` only when Redis is unreachable then
 * (the response cache store never fails). After that the connection reconnects forever
 * (100 ms doubling to 2 s), every command is bounded by `commandTimeout` (default 1 second),
 * and what needs Redis's answer (a lease, an admission, a budget reservation, a status, a
 * usage snapshot) fails with the retryable `StoreUnavailableError`, while bookkeeping
 * (releases, reports, refunds, what `observe` learns, breaker outcomes) is sent at once,
 * waited for at most 100 ms, and dropped when it fails; budget settlements and usage records
 * are kept and sent again until Redis has them, counted once. The response cache store never
 * fails: it reads misses and skips writes; a breaker decides per process. Each logs one
 * warning when an outage starts (naming the operation and Redis's own error, never a key or a
 * password) and one info line when Redis answers again.
 *
 * @since 0.1.0
 */
import type { ConfigError } from "effect/ConfigError"
import type * as Duration from "effect/Duration"
import * as Layer from "effect/Layer"
import * as Budget from "./Budget.js"
import * as CircuitBreaker from "./CircuitBreaker.js"
import * as budgetStore from "./internal/redis/budgetStore.js"
import * as circuitBreakerStore from "./internal/redis/circuitBreakerStore.js"
import * as usageMirror from "./internal/redis/usageMirror.js"
import * as keyPoolStore from "./internal/redis/keyPoolStore.js"
import * as options from "./internal/redis/options.js"
import * as rateLimiterStore from "./internal/redis/rateLimiterStore.js"
import * as responseCacheStore from "./internal/redis/responseCacheStore.js"
import * as KeyPool from "./KeyPool.js"
import type { LanguageModel } from "./LanguageModel.js"
import * as RateLimiter from "./RateLimiter.js"
import * as ResponseCache from "./ResponseCache.js"
import * as Usage from "./Usage.js"

/**
 * A store could not reach Redis when it was built, or its url is malformed. Once built, a
 * Redis failure is a `StoreUnavailableError` instead. The URL is reported without its
 * password.
 * @since 0.1.0 @category errors
 */
export const RedisError = options.RedisError
/** @since 0.1.0 @category errors */
export type RedisError = options.RedisError

/**
 * Where a store connects: one server (`url`) or a Redis Cluster (`cluster`, its seed nodes;
 * the client discovers the rest). Every script of every store keeps its keys in one hash
 * slot, so each store runs on a cluster as on one server.
 * @since 0.1.0 @category models
 */
export type RedisTarget =
  | {
    /** Like `redis://127.0.0.1:6379/0` (`rediss://` for TLS, `redis://user:password@host…`). */
    readonly url: string
    readonly cluster?: undefined
  }
  | {
    /**
     * Seed nodes of a Redis Cluster, like `["redis://10.0.0.1:7000", "redis://10.0.0.2:7000"]`.
     * The first node's user, password and TLS serve every node; a cluster has database 0 only.
     */
    readonly cluster: ReadonlyArray<string>
    readonly url?: undefined
  }

/**
 * What every Redis store takes: a `url` like `redis://127.0.0.1:6379/0` or a `cluster`'s node
 * urls, a key `prefix` (default `effect-llm:`), and `commandTimeout`, the longest wait for one
 * command.
 * @since 0.1.0 @category models
 */
export type RedisOptions = RedisTarget & {
  /**
   * Prepended to every key this layer writes. Default `effect-llm:`. It may hold a hash tag
   * (`app{1}:`), which then puts every key of the store in that one slot of a cluster.
   */
  readonly prefix?: string | undefined
  /**
   * The longest wait for one Redis command. A command that needs its answer (leasing a
   * key, admitting a request, reading status) then fails with `StoreUnavailableError`;
   * bookkeeping is given up. Default 1 second.
   */
  readonly commandTimeout?: Duration.DurationInput | undefined
}

/** @since 0.1.0 @category models */
export type KeyPoolStoreOptions = RedisOptions & {
  /**
   * How long a lease outlives a process that stops renewing it (it crashed); a holder
   * renews its leases every third of it. Default 1 minute, at least 1 second.
   */
  readonly leaseTtl?: Duration.DurationInput | undefined
}

/**
 * Every pool built over it (`KeyPool.layer`, `KeyPool.make`) keeps its leases, loads,
 * cooldowns and disables in Redis, under `prefix` and its `providerId`: processes that share
 * both lease the least-loaded key across all of them, and a 429 seen by one cools the key for
 * all. Redis sees fingerprints only, never keys. One connection, and one background fiber
 * that renews this process's leases, serve every pool.
 * @since 0.1.0 @category layers
 */
export const layerKeyPoolStore: (options: KeyPoolStoreOptions) => Layer.Layer<KeyPool.KeyPoolStore, RedisError | ConfigError> =
  keyPoolStore.layer

/**
 * One pool for many processes: `KeyPool.layer(options)` over `layerKeyPoolStore(options)`.
 *
 * Leases, loads, cooldowns and disables live in Redis, so that every process leases the
 * least-loaded key across all of them and a 429 seen by one cools the key for all. Keys
 * themselves never leave the process: Redis sees only fingerprints. Each lease carries a
 * TTL (`leaseTtl`, default 1 minute) that the holder renews while it runs, so a crashed
 * process cannot hold load for longer.
 *
 * Redis outages. The layer fails with `RedisError` only when Redis is unreachable as it is
 * built. After that the connection reconnects forever (100 ms doubling to 2 s), and every
 * command is bounded by `commandTimeout` (default 1 second):
 * - `acquire` (and `withKey`) fail with `StoreUnavailableError` (retryable) when Redis does
 *   not answer: no key is leased without Redis's answer, so an outage never over-leases.
 *   `status` fails the same way; `hasHealthyKey` is false.
 * - Releasing a lease and `report` are sent at once and waited for at most 100 ms: not at
 *   all once an outage is known, nor when the call's deadline has passed. So a frozen Redis
 *   never holds a call that already has its key past its deadline. When they fail they are
 *   dropped: a lost release ends with the lease's TTL, a lost report is a cooldown or a
 *   disable not recorded. Leases are renewed in the background.
 * - One warning is logged when an outage starts, one info line when Redis answers again.
 * @since 0.1.0 @category layers
 */
export const layerKeyPool = (
  options: KeyPool.Options & KeyPoolStoreOptions
): Layer.Layer<KeyPool.KeyPool, RedisError | ConfigError> =>
  Layer.provide(KeyPool.layer(options), layerKeyPoolStore(options))

/**
 * Every limiter built over it (`RateLimiter.layer`, `RateLimiter.make`) keeps its buckets in
 * Redis, under `prefix` and its `name` (default its `provider`): processes that share both
 * share one budget. Each reservation is one Lua script, timed by the Redis server's clock.
 * @since 0.1.0 @category layers
 */
export const layerRateLimiterStore: (options: RedisOptions) => Layer.Layer<RateLimiter.RateLimiterStore, RedisError | ConfigError> =
  rateLimiterStore.layer

/**
 * One budget for many processes, on many hosts: `RateLimiter.layer(options)` over
 * `layerRateLimiterStore(options)`.
 *
 * The buckets live in Redis and each reservation is one Lua script, timed by the Redis
 * server's clock. Processes that use the same `url`, `prefix` and `name` share the budget.
 * The bucket arithmetic, FIFO reservations, `observe`, `settle`, pauses and `onExceeded`
 * behave as in memory.
 *
 * Redis outages. The layer fails with `RedisError` only when Redis is unreachable as it is
 * built. After that the connection reconnects forever (100 ms doubling to 2 s), and every
 * command is bounded by `commandTimeout` (default 1 second):
 * - `admit` fails with `StoreUnavailableError` (retryable) when Redis does not answer,
 *   and so does a waiter whose pause check gets no answer (its reservation is refunded):
 *   nothing is admitted without Redis's answer, so an outage never over-admits. A
 *   reservation whose answer was lost is not refunded, erring toward admitting less.
 *   `status` and `reset` fail the same way.
 * - `settle`, `observe` and the refund of an interrupted waiter are sent at once and
 *   waited for at most 100 ms: not at all once an outage is known, nor when the call's
 *   deadline has passed. So a frozen Redis never holds a call that was admitted past its
 *   deadline. When they fail they are dropped.
 * - One warning is logged when an outage starts, one info line when Redis answers again.
 * @since 0.1.0 @category layers
 */
export const layerRateLimiter = (
  options: RateLimiter.Options & RedisOptions
): Layer.Layer<RateLimiter.RateLimiter, RedisError | ConfigError> =>
  Layer.provide(RateLimiter.layer(options), layerRateLimiterStore(options))

/**
 * `url` (or `cluster`), `prefix` (default `effect-llm:cache:`), `ttl`, `staleFor`,
 * `maxEntries` and `commandTimeout` (default 500 ms: a lookup sits in front of every call).
 * @since 0.1.0 @category models
 */
export type ResponseCacheStoreOptions = RedisTarget & {
  /**
   * Default `effect-llm:cache:`. `ResponseCache.clear` deletes every key under it, so give
   * the cache a prefix of its own. Entries live under `prefix{cache}:`, one slot of a cluster.
   */
  readonly prefix?: string | undefined
  readonly ttl: Duration.DurationInput
  /** How long an entry is kept past its TTL for degraded mode (`serveStale`). Default 0. */
  readonly staleFor?: Duration.DurationInput | undefined
  /** Least recently used entries beyond this are evicted. Default: no limit beyond the TTL. */
  readonly maxEntries?: number | undefined
  /**
   * Longest wait for one Redis command before it counts as a miss (a write, as skipped).
   * Default 500 ms: a lookup sits in front of every call.
   */
  readonly commandTimeout?: Duration.DurationInput | undefined
}

/**
 * Cached answers in Redis, shared by every process on it, the least recently used evicted
 * beyond `maxEntries`: the Redis counterpart of `ResponseCache.layerMemory`. It never fails a
 * request nor holds one longer than `commandTimeout` per lookup; even an unreachable Redis at
 * build time only means misses. The connection reconnects forever (100 ms doubling to 2 s).
 * @since 0.1.0 @category layers
 */
export const layerResponseCacheStore: (options: ResponseCacheStoreOptions) => Layer.Layer<ResponseCache.ResponseCacheStore, ConfigError> =
  responseCacheStore.layer

/**
 * The cache decorator (`ResponseCache.layerWith(options)`) over `layerResponseCacheStore(options)`,
 * with the store in the output too, so that `ResponseCache.stats` and `clear` read it.
 * @since 0.1.0 @category layers
 */
export const layerResponseCache = (
  options: ResponseCacheStoreOptions & ResponseCache.Options
): Layer.Layer<LanguageModel | ResponseCache.ResponseCacheStore, ConfigError, LanguageModel> =>
  Layer.provideMerge(ResponseCache.layerWith(options), layerResponseCacheStore(options))

/** @since 0.1.0 @category models */
export type BudgetStoreOptions = RedisOptions & {
  /**
   * While Redis cannot answer, admit requests unrecorded (fail open) instead of failing them
   * with `StoreUnavailableError` (fail closed, the default). Their usage is recorded once
   * Redis answers again.
   */
  readonly failOpen?: boolean | undefined
}

/**
 * Every budget built over it (`Budget.layer`, `Budget.make`) keeps its period's spend in
 * Redis, under `prefix` and its `name`: processes that share both draw on one budget. Each
 * operation is one Lua script, timed by the Redis server's clock, its keys under one hash
 * tag (`{budget:<name>}`).
 * @since 0.1.0 @category layers
 */
export const layerBudgetStore: (options: BudgetStoreOptions) => Layer.Layer<Budget.BudgetStore, RedisError | ConfigError> =
  budgetStore.layer

/**
 * One spend and token budget per period for many processes: the `Budget.layer(options)`
 * decorator over `layerBudgetStore(options)`.
 *
 * A request's estimate is checked and reserved in one script before it is sent, so that
 * processes never both take the last of the budget; its actual usage is settled after, once
 * per request id however often the settlement is sent; a reservation is a lease (`leaseTtl`,
 * default 1 minute) that its holder renews while the request runs, so that the estimate of
 * a process that crashed comes back when the lease ends. Across processes the recorded spend
 * stays within the budget plus what requests in flight use beyond their estimates.
 *
 * Redis outages. The layer fails with `RedisError` only when Redis is unreachable as it is
 * built. After that the connection reconnects forever (100 ms doubling to 2 s), and every
 * command is bounded by `commandTimeout` (default 1 second):
 * - a request fails with `StoreUnavailableError` (retryable) before it is sent when Redis
 *   does not answer its reservation: nothing is admitted that the budget has not seen (fail
 *   closed). With `failOpen: true` it is sent instead, unrecorded until Redis is back.
 * - a settlement is kept until Redis has it: sent again before this process's next
 *   reservation and every half second, counted once however often it arrives. Its
 *   reservation holds the estimate meanwhile, for at most `leaseTtl`.
 * - `status` fails with `StoreUnavailableError`; renewals and `setCredit` are sent at once
 *   and dropped when they fail.
 * - One warning is logged when an outage starts, one info line when Redis answers again.
 * @since 0.1.0 @category layers
 */
export const layerBudget = (
  options: Budget.Options & BudgetStoreOptions
): Layer.Layer<LanguageModel, RedisError | ConfigError, LanguageModel> =>
  Layer.provide(Budget.layer(options), layerBudgetStore(options))

/** @since 0.1.0 @category models */
export type CircuitBreakerStoreOptions = RedisOptions & {
  /**
   * How long a half-open probe holds the one probe slot of the fleet before another process
   * may probe (its prober may have died). Default 1 minute.
   */
  readonly probeTtl?: Duration.DurationInput | undefined
  /**
   * What a call does while Redis cannot answer: `"local"` (the default) lets each process
   * decide alone, with a breaker in memory fed with the outcomes it has seen, so that a Redis
   * outage never stops calls to a healthy endpoint; `"fail"` fails the call with
   * `StoreUnavailableError`.
   */
  readonly onUnavailable?: "local" | "fail" | undefined
}

/**
 * Every breaker built over it (`CircuitBreaker.layer`, `CircuitBreaker.make`) keeps its state
 * in Redis, under `prefix` and its endpoint (default `provider/model`): processes that share
 * both share one breaker. Each decision is one Lua script, timed by the Redis server's clock.
 * @since 0.1.0 @category layers
 */
export const layerCircuitBreakerStore: (
  options: CircuitBreakerStoreOptions
) => Layer.Layer<CircuitBreaker.CircuitBreakerStore, RedisError | ConfigError> = circuitBreakerStore.layer

/**
 * One circuit breaker per endpoint for many processes: the `CircuitBreaker.layer(options)`
 * decorator over `layerCircuitBreakerStore(options)`.
 *
 * Every call asks Redis whether it may go (one round trip), and reports its outcome after:
 * failures seen by any process open the breaker for all of them at their next call, and once
 * the cooldown is over exactly one half-open probe runs across the fleet.
 *
 * Redis outages. The layer fails with `RedisError` only when Redis is unreachable as it is
 * built. After that the connection reconnects forever (100 ms doubling to 2 s), and every
 * command is bounded by `commandTimeout` (default 1 second). While Redis cannot answer, each
 * process decides alone with a breaker in memory fed with the outcomes it saw, asking Redis
 * again every second (`onUnavailable: "fail"` fails calls with `StoreUnavailableError`
 * instead); outcomes are sent at once and dropped when they fail; `status` shows this
 * process's own view.
 * @since 0.1.0 @category layers
 */
export const layerCircuitBreaker = (
  options: CircuitBreaker.Options & CircuitBreakerStoreOptions
): Layer.Layer<LanguageModel, RedisError | ConfigError, LanguageModel> =>
  Layer.provide(CircuitBreaker.layer(options), layerCircuitBreakerStore(options))

/** @since 0.1.0 @category models */
export type UsageMirrorOptions = RedisOptions & {
  /** Trackers whose mirrors have the same prefix and name report one set of totals. Default `default`. */
  readonly name?: string | undefined
}

/**
 * A mirror of the usage totals in Redis, for `Usage.layer` / `Usage.make` below it: every
 * process on the same prefix and `name` adds its share (tokens, cost, cache reads and
 * writes, requests, per provider and model), and each tracker's `snapshot` reports the sum,
 * the fleet's.
 *
 * Each process adds what it recorded in numbered batches, one in flight at a time, sent at
 * once and again until Redis has it, and added once however often it arrives: an outage, a
 * frozen Redis or a lost answer neither loses a response nor counts it twice while the
 * process lives. What a process held when it crashed is lost; what it held when its layer
 * closed is sent first.
 *
 * Redis outages. The layer fails with `RedisError` only when Redis is unreachable as it is
 * built. After that the connection reconnects forever (100 ms doubling to 2 s), and every
 * command is bounded by `commandTimeout` (default 1 second): recording never fails nor
 * waits (what Redis cannot take waits in the process, sent every half second);
 * `snapshot` and `reset` fail with `StoreUnavailableError`.
 * @since 0.1.0 @category layers
 */
export const layerUsageMirror: (options: UsageMirrorOptions) => Layer.Layer<Usage.UsageMirror, RedisError | ConfigError> =
  usageMirror.layer

/**
 * A usage tracker whose snapshot reports every process on the mirror: `Usage.layer(options)`
 * over `layerUsageMirror(options)`.
 * @since 0.1.0 @category layers
 */
export const layerUsage = (options: Usage.Options & UsageMirrorOptions): Layer.Layer<Usage.UsageTracker, RedisError | ConfigError> =>
  Layer.provide(Usage.layer(options), layerUsageMirror(options))

