/**
 * The response cache's store in Redis (`Redis.layerResponseCacheStore`): entries are
 * `prefix + "{cache}:" + key` strings with a Redis TTL, indexed by last access in a sorted
 * set at `prefix + "{cache}:lru"` so that `maxEntries` evicts the least recently used. The
 * hash tag keeps every key of the cache in one slot of a cluster: the scripts derive the
 * entries to evict from the index. It never fails a request: a Redis that is down, frozen
 * or slow reads as a miss and writes are skipped.
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import { Cluster, type Redis } from "./ioredis.js"
import * as Message from "../../Message.js"
import type { ResponseCacheStoreOptions as RedisOptions } from "../../Redis.js"
import { type Backend, makeStore, ResponseCacheStore } from "../../ResponseCache.js"
import * as ConfigError from "effect/ConfigError"
import { type Client, clientOptions, commandTimeoutOf, describeWith, endpointOf, prefixOf } from "./connection.js"

const StoredEntry = Schema.parseJson(Schema.Struct({ response: Message.ChatResponse, expiresAt: Schema.Number }))
const decodeStored = Schema.decodeUnknownEither(StoredEntry)

// Touch on read (LRU order), drop the index member when the entry expired.
const getScript = `
local v = redis.call('GET', KEYS[1])
if v then redis.call('ZADD', KEYS[2], ARGV[1], KEYS[1]) else redis.call('ZREM', KEYS[2], KEYS[1]) end
return v`

// Store, index by last access, forget index members that must have expired, evict the least
// recently used entries beyond maxEntries. Returns how many were evicted.
const setScript = `
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], KEYS[1])
local cutoff = '(' .. (tonumber(ARGV[3]) - tonumber(ARGV[2]))
local stale = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', cutoff)
for _, k in ipairs(stale) do redis.call('DEL', k) end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', cutoff)
local over = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[4])
if over > 0 then
  local old = redis.call('ZRANGE', KEYS[2], 0, over - 1)
  for _, k in ipairs(old) do redis.call('DEL', k) end
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, over - 1)
  return over
end
return 0`

const sizeScript = `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1])
return redis.call('ZCARD', KEYS[1])`

interface CacheCommands {
  cacheGet(entry: string, index: string, now: number): Promise<string | null>
  cacheSet(entry: string, index: string, value: string, ttlMs: number, now: number, maxEntries: number): Promise<number>
  cacheSize(index: string, oldest: number): Promise<number>
}

/** Every key under one hash tag, `{cache}`, as the scripts derive the keys they evict. */
export const backend = (options: RedisOptions): Effect.Effect<Backend, ConfigError.ConfigError, Scope.Scope> =>
  Effect.gen(function* () {
    const endpoint = yield* Either.mapLeft(endpointOf(options), (error) => ConfigError.InvalidData(["url"], error.message))
    const prefix = yield* prefixOf(options.prefix, "effect-llm:cache:")
    const tagged = `${prefix}{cache}:`
    const index = `${tagged}lru`
    const ttl = Duration.toMillis(Duration.decode(options.ttl))
    const staleFor = options.staleFor === undefined ? 0 : Duration.toMillis(Duration.decode(options.staleFor))
    // Redis keeps an entry for its TTL plus the stale window; freshness is read from expiresAt
    const retention = ttl + staleFor
    const maxEntries = options.maxEntries ?? Number.MAX_SAFE_INTEGER
    const commandTimeout = yield* commandTimeoutOf(options.commandTimeout, "500 millis")
    const redis = yield* Effect.acquireRelease(
      Effect.sync(() => {
        // fail at once while disconnected, so a down Redis is a fast miss, not a queue; and
        // reconnect forever, as the key pool and the limiter do
        const client = endpoint.create(commandTimeout)
        // errors surface through the commands; without a listener ioredis prints them itself
        client.on("error", () => {})
        if (client instanceof Cluster) client.on("node error", () => {})
        client.defineCommand("cacheGet", { numberOfKeys: 2, lua: getScript })
        client.defineCommand("cacheSet", { numberOfKeys: 2, lua: setScript })
        client.defineCommand("cacheSize", { numberOfKeys: 1, lua: sizeScript })
        return client
      }),
      (client) => Effect.sync(() => client.disconnect())
    )
    const commands = redis as unknown as Client & CacheCommands
    const describe = describeWith(endpoint.urls)

    let healthy = true
    // one line that says what failed: the operation and Redis's own reason
    const degraded = (operation: string) => (detail: string) =>
      Effect.suspend(() => {
        if (!healthy) return Effect.void
        healthy = false
        return Effect.logWarning(`ResponseCache: Redis ${operation} failed (${detail}); serving misses until it answers again`)
      })
    const recovered = Effect.suspend(() => {
      if (healthy) return Effect.void
      healthy = true
      return Effect.logInfo("ResponseCache: Redis answers again")
    })
    // Bounded here as well as by ioredis (a script run is EVALSHA then EVAL). `clear` is
    // many commands, each bounded by ioredis alone.
    const attempt = <A>(operation: string, run: () => Promise<A>, fallback: A, bound = commandTimeout): Effect.Effect<A> =>
      Effect.tryPromise({ try: run, catch: describe }).pipe(
        (effect) =>
          Number.isFinite(bound)
            ? Effect.timeoutFail(effect, { duration: bound, onTimeout: () => `no answer within ${bound}ms` })
            : effect,
        Effect.interruptible,
        Effect.tap(() => recovered),
        Effect.catchAll((cause) => Effect.as(degraded(operation)(cause), fallback))
      )

    yield* attempt("connect", () => redis.connect(), undefined, clientOptions(commandTimeout).connectTimeout + commandTimeout)

    const read = (key: string, grace: number) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        Effect.map(attempt("GET", () => commands.cacheGet(tagged + key, index, now), null), (raw) => {
          if (raw === null) return undefined
          const decoded = decodeStored(raw)
          // an entry this version cannot read is a miss, and `set` will overwrite it
          if (Either.isLeft(decoded) || decoded.right.expiresAt + grace <= now) return undefined
          return decoded.right.response
        }))

    return {
      get: (key) => read(key, 0),
      getStale: staleFor > 0 ? (key) => read(key, staleFor) : undefined,
      set: (key, response) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) =>
          Effect.asVoid(
            attempt(
              "SET",
              () => commands.cacheSet(tagged + key, index, JSON.stringify({ response, expiresAt: now + ttl }), retention, now, maxEntries),
              0
            )
          )),
      // every key under the prefix, on every node of a cluster
      clear: attempt("clear", () => Promise.all(nodesOf(redis).map((node) => unlinkAll(node, `${prefix}*`))).then(() => undefined), undefined, Number.POSITIVE_INFINITY),
      size: Effect.flatMap(Clock.currentTimeMillis, (now) => attempt("size", () => commands.cacheSize(index, now - retention), 0))
    }
  })

const nodesOf = (client: Client): ReadonlyArray<Redis> => (client instanceof Cluster ? client.nodes("master") : [client])

/** Scans `node` for `match` and unlinks what it finds, one key per command (a cluster's keys differ in slot). */
const unlinkAll = (node: Redis, match: string) =>
  new Promise<void>((resolve, reject) => {
    const scan = node.scanStream({ match, count: 500 })
    const pending: Array<Promise<unknown>> = []
    scan.on("data", (keys: Array<string>) => {
      for (const key of keys) pending.push(node.unlink(key))
    })
    scan.on("error", reject)
    scan.on("end", () => Promise.all(pending).then(() => resolve(), reject))
  })

/** Never fails on Redis, even unreachable as it is built (that is a miss too); only on its options. */
export const layer = (options: RedisOptions): Layer.Layer<ResponseCacheStore, ConfigError.ConfigError> =>
  Layer.scoped(ResponseCacheStore, Effect.flatMap(backend(options), makeStore))
