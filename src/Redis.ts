/**
 * `effect-llm/Redis`: the Redis stores, so that many processes share one key pool, one rate
 * limit and one response cache. Each is a layer of the store Tag its service reads
 * (`KeyPool.KeyPoolStore`, `RateLimiter.RateLimiterStore`, `ResponseCache.ResponseCacheStore`);
 * the algorithms are the services' own, the same as in memory.
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
 * This module, and only this one, loads `ioredis` (an optional peer dependency): the main
 * entry's `KeyPool.layerRedis`, `RateLimiter.layerRedis` and `ResponseCache.layerRedis` import
 * it when they are built.
 *
 * Outages. The key pool and limiter stores fail to build with `RedisError` only when Redis is
 * unreachable then. After that the connection reconnects forever (100 ms doubling to 2 s),
 * every command is bounded by `commandTimeout` (default 1 second), and what needs Redis's
 * answer (a lease, an admission, a status) fails with the retryable `StoreUnavailableError`,
 * while bookkeeping (releases, reports, refunds, what `observe` learns) is sent at once,
 * waited for at most 100 ms, and dropped when it fails. The response cache store never fails:
 * it reads misses and skips writes. Each logs one warning when an outage starts and one info
 * line when Redis answers again.
 *
 * @since 0.1.0
 */
import type * as Duration from "effect/Duration"
import type * as Layer from "effect/Layer"
import * as keyPoolStore from "./internal/redis/keyPoolStore.js"
import * as options from "./internal/redis/options.js"
import * as rateLimiterStore from "./internal/redis/rateLimiterStore.js"
import * as responseCacheStore from "./internal/redis/responseCacheStore.js"
import type { KeyPoolStore } from "./KeyPool.js"
import type { RateLimiterStore } from "./RateLimiter.js"
import type { RedisOptions as CacheOptions, ResponseCacheStore } from "./ResponseCache.js"

/**
 * A store could not reach Redis when it was built, or its url is malformed. Once built, a
 * Redis failure is a `StoreUnavailableError` instead. The URL is reported without its
 * password. The same class as `KeyPool.RedisError` and `RateLimiter.RedisError`.
 * @since 0.1.0 @category errors
 */
export const RedisError = options.RedisError
/** @since 0.1.0 @category errors */
export type RedisError = options.RedisError

/**
 * What every Redis store takes: `url` like `redis://127.0.0.1:6379/0`, a key `prefix`
 * (default `effect-llm:`), and `commandTimeout`, the longest wait for one command.
 * @since 0.1.0 @category models
 */
export type RedisOptions = options.RedisOptions

/** @since 0.1.0 @category models */
export interface KeyPoolStoreOptions extends RedisOptions {
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
export const layerKeyPoolStore: (options: KeyPoolStoreOptions) => Layer.Layer<KeyPoolStore, RedisError> = keyPoolStore.layer

/**
 * Every limiter built over it (`RateLimiter.layer`, `RateLimiter.make`) keeps its buckets in
 * Redis, under `prefix` and its `name` (default its `provider`): processes that share both
 * share one budget. Each reservation is one Lua script, timed by the Redis server's clock.
 * @since 0.1.0 @category layers
 */
export const layerRateLimiterStore: (options: RedisOptions) => Layer.Layer<RateLimiterStore, RedisError> =
  rateLimiterStore.layer

/**
 * `ResponseCache.RedisOptions`: `url`, `prefix` (default `effect-llm:cache:`), `ttl`,
 * `maxEntries` and `commandTimeout` (default 500 ms: a lookup sits in front of every call).
 * @since 0.1.0 @category models
 */
export type ResponseCacheStoreOptions = CacheOptions

/**
 * Cached answers in Redis, shared by every process on it, the least recently used evicted
 * beyond `maxEntries`. It never fails a request nor holds one longer than `commandTimeout`
 * per lookup; even an unreachable Redis at build time only means misses.
 * @since 0.1.0 @category layers
 */
export const layerResponseCacheStore: (options: ResponseCacheStoreOptions) => Layer.Layer<ResponseCacheStore> =
  responseCacheStore.layer
