/**
 * The Redis plumbing the Redis-backed stores share: one scoped ioredis connection per
 * layer, and Lua scripts run by SHA with a fallback to EVAL after a server restart.
 */
import { createHash } from "node:crypto"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import { Redis } from "ioredis"

/**
 * Redis could not be reached, or a command failed. Layers fail with it when they cannot
 * connect; a command that fails later is a defect carrying it (a store that cannot keep
 * its budget must not silently admit). The URL is reported without its password.
 */
export class RedisError extends Schema.TaggedError<RedisError>()("RedisError", {
  message: Schema.String,
  url: Schema.String,
  operation: Schema.String
}) {}

/** `{ url, prefix? }`: what every Redis-backed layer takes. */
export interface RedisOptions {
  /** Like `redis://127.0.0.1:6379/0`. */
  readonly url: string
  /** Prepended to every key this layer writes. Default `effect-llm:`. */
  readonly prefix?: string
}

/** The URL with any password masked, for errors. */
export const safeUrl = (url: string): string => {
  try {
    const parsed = new URL(url)
    if (parsed.password !== "") parsed.password = "***"
    return parsed.toString()
  } catch {
    return "<invalid url>"
  }
}

const describe = (cause: unknown): string =>
  cause instanceof Error ? cause.message : typeof cause === "string" ? cause : "unknown error"

export interface Connection {
  readonly redis: Redis
  readonly url: string
  readonly prefix: string
  /** Runs `f`, turning a rejected promise into a defect that carries a `RedisError`. */
  readonly run: <A>(operation: string, f: (redis: Redis) => Promise<A>) => Effect.Effect<A>
}

/** A connection that is open (it answered PING) and is closed when the scope closes. */
export const connect = (options: RedisOptions): Effect.Effect<Connection, RedisError, Scope.Scope> =>
  Effect.gen(function* () {
    const url = safeUrl(options.url)
    if (!/^rediss?:\/\//.test(options.url) || url === "<invalid url>") {
      return yield* new RedisError({
        message: `the Redis url must look like redis://host:port/db, got ${JSON.stringify(url)}`,
        url,
        operation: "connect"
      })
    }
    const redis = yield* Effect.acquireRelease(
      Effect.sync(() =>
        new Redis(options.url, {
          lazyConnect: true,
          // bounded, so that a lost server fails calls instead of hanging them
          maxRetriesPerRequest: 2,
          connectTimeout: 2000,
          retryStrategy: (times) => (times > 20 ? null : Math.min(times * 100, 1000))
        })
      ),
      (redis) => Effect.promise(() => redis.quit().catch(() => redis.disconnect()))
    )
    // ioredis reports connection errors as events too; they surface through the commands
    redis.on("error", () => {})
    yield* Effect.tryPromise({
      try: () => redis.connect().then(() => redis.ping()),
      catch: (cause) => new RedisError({ message: `cannot connect to ${url}: ${describe(cause)}`, url, operation: "connect" })
    })
    const run = <A>(operation: string, f: (redis: Redis) => Promise<A>): Effect.Effect<A> =>
      Effect.tryPromise({
        try: () => f(redis),
        catch: (cause) => new RedisError({ message: `Redis ${operation} failed: ${describe(cause)}`, url, operation })
      }).pipe(Effect.orDie)
    return { redis, url, prefix: options.prefix ?? "effect-llm:", run }
  })

/** A Lua script called by SHA; `EVAL` only when the server has not seen it yet. */
export const script = (lua: string) => {
  const sha = createHash("sha1").update(lua).digest("hex")
  return (redis: Redis, keys: ReadonlyArray<string>, args: ReadonlyArray<string | number>): Promise<unknown> =>
    redis.evalsha(sha, keys.length, ...keys, ...args).catch((error: unknown) => {
      if (error instanceof Error && error.message.includes("NOSCRIPT")) return redis.eval(lua, keys.length, ...keys, ...args)
      throw error
    })
}

/** Redis server time in epoch millis with microseconds, read inside a script. */
export const luaNow = `local __t = redis.call("TIME")
local now = tonumber(__t[1]) * 1000 + tonumber(__t[2]) / 1000
`
