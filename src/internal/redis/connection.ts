/**
 * The Redis plumbing the key pool and limiter stores share: one scoped ioredis connection
 * per store layer, used by every pool or limiter built over it, and Lua scripts run by SHA
 * with a fallback to EVAL after a server restart.
 *
 * Outages: the connection reconnects forever (`retryStrategy`), commands never queue while
 * it is down, and every command is bounded by `commandTimeout` on the Effect side, so a
 * frozen server holds nothing longer than that. A command whose answer the caller needs
 * (`run`) fails with a typed `StoreUnavailableError`. Bookkeeping (`send`) is sent at once
 * and waited for only briefly (`bookkeepingWait`), never during a known outage, never past
 * the caller's deadline, and its failures are dropped. Either way the first failure of an
 * outage is logged once, as a warning, and the first answer after it once, as info.
 */
import { createHash } from "node:crypto"
import * as ConfigError from "effect/ConfigError"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as HashSet from "effect/HashSet"
import type * as Scope from "effect/Scope"
import { Redis } from "./ioredis.js"
import { StoreUnavailableError } from "../../LlmError.js"
import type { RedisOptions } from "../../Redis.js"
import { describeFailure, RedisError, safeUrl } from "./options.js"

/**
 * The longest a caller waits for the answer to bookkeeping while Redis seems healthy. Long
 * enough that, normally, a report or a release is in Redis when it returns (other processes
 * see it at once); short enough that a Redis that froze a moment ago barely delays a call.
 */
export const bookkeepingWait = Duration.millis(100)

/** Reconnect delays: 100 ms doubling to a cap of 2 s, and never give up. */
export const retryStrategy = (times: number): number => Math.min(50 * 2 ** Math.min(times, 6), 2000)

/** Validated `commandTimeout`, in millis, or the `ConfigError` that names it. */
export const commandTimeoutOf = (
  input: Duration.DurationInput | undefined,
  fallback: Duration.DurationInput
): Either.Either<number, ConfigError.ConfigError> => {
  const ms = Duration.toMillis(Duration.decode(input ?? fallback))
  return !Number.isFinite(ms) || ms <= 0
    ? Either.left(ConfigError.InvalidData(["commandTimeout"], `Redis: commandTimeout must be a positive duration, got ${String(input)}`))
    : Either.right(Math.ceil(ms))
}

/** ioredis options for a connection whose outages must fail fast instead of queueing. */
export const clientOptions = (commandTimeout: number) => ({
  lazyConnect: true,
  // while disconnected a command fails at once instead of waiting in a queue
  enableOfflineQueue: false,
  // a command in flight when the connection drops fails at once
  maxRetriesPerRequest: 0,
  // and is not sent again on reconnect: its caller has given up on it
  autoResendUnfulfilledCommands: false,
  connectTimeout: Math.max(2000, commandTimeout),
  commandTimeout,
  retryStrategy
})

/**
 * One connection, shared by every pool or limiter built over the same store layer.
 */
export interface Connection {
  readonly redis: Redis
  readonly url: string
  readonly prefix: string
  /** The commands of one user of the connection (a provider's pool, a limiter), named in its errors. */
  readonly commands: (provider: string) => Commands
}

export interface Commands {
  /**
   * Runs `f` and waits for its answer, at most `commandTimeout`, even inside an
   * uninterruptible region. A rejection or a timeout is a `StoreUnavailableError`.
   */
  readonly run: <A>(operation: string, f: (redis: Redis) => Promise<A>) => Effect.Effect<A, StoreUnavailableError>
  /**
   * Sends `f` now, so that it reaches Redis before any later command of this connection,
   * and waits for the answer at most `bookkeepingWait`: not at all during a known outage
   * or when the caller is being interrupted (its deadline passed). The answer is awaited
   * in the background, bounded by `commandTimeout`; a failure is logged (once per outage)
   * and dropped. For bookkeeping that must never hold a call.
   */
  readonly send: (operation: string, f: (redis: Redis) => Promise<unknown>) => Effect.Effect<void>
}

/**
 * A connection that is open (it answered PING) and is closed when the scope closes. `store`
 * (`KeyPool`, `RateLimiter`) names it in log lines and errors.
 */
export const connect = (options: RedisOptions, store: string): Effect.Effect<Connection, RedisError | ConfigError.ConfigError, Scope.Scope> =>
  Effect.gen(function* () {
    const url = safeUrl(options.url)
    if (!/^rediss?:\/\//.test(options.url) || url === "<invalid url>") {
      return yield* new RedisError({
        message: `the Redis url must look like redis://host:port/db, got ${JSON.stringify(url)}`,
        url,
        operation: "connect"
      })
    }
    const timeout = yield* commandTimeoutOf(options.commandTimeout, "1 second")
    const settings = clientOptions(timeout)
    const redis = yield* Effect.acquireRelease(
      Effect.sync(() => new Redis(options.url, settings)),
      (redis) =>
        Effect.promise(() => redis.quit().catch(() => undefined)).pipe(
          // a release runs uninterruptibly: without this the timeout could not cut a QUIT that a
          // frozen server never answers, and closing the layer would wait for it
          Effect.interruptible,
          Effect.timeout(timeout),
          Effect.ignore,
          Effect.zipRight(Effect.sync(() => redis.disconnect()))
        )
    )
    const describe = (cause: unknown) => describeFailure(cause, options.url)
    // ioredis reports connection errors as events too; they surface through the commands
    redis.on("error", () => {})
    // Scripts are loaded as soon as a connection is ready, also after a server restart, so
    // that commands sent without waiting run in the order they were sent: an EVALSHA that
    // met NOSCRIPT would be sent again as EVAL a round trip later, behind later commands.
    redis.on("ready", () => {
      for (const lua of scripts) redis.script("LOAD", lua).catch(() => {})
    })
    yield* Effect.tryPromise({
      try: () => redis.connect().then(() => redis.ping()),
      catch: (cause) => new RedisError({ message: `cannot connect to ${url}: ${describe(cause)}`, url, operation: "connect" })
    }).pipe(
      Effect.timeoutFail({
        duration: settings.connectTimeout + timeout,
        onTimeout: () => new RedisError({ message: `cannot connect to ${url}: no answer`, url, operation: "connect" })
      })
    )

    // one warning when an outage starts and one line when it ends, however many calls meet it
    let down = false
    const failed = (operation: string, detail: string) =>
      Effect.suspend(() => {
        if (down) return Effect.void
        down = true
        return Effect.logWarning(
          `${store}: Redis at ${url} is unavailable (${operation}: ${detail}); calls that need it fail with ` +
            `StoreUnavailableError and bookkeeping is skipped until it answers again`
        )
      })
    const answered = Effect.suspend(() => {
      if (!down) return Effect.void
      down = false
      return Effect.logInfo(`${store}: Redis at ${url} answers again`)
    })
    const unavailable = (provider: string, operation: string, detail: string) =>
      new StoreUnavailableError({
        provider,
        model: "*",
        store: store,
        operation,
        message: `Redis ${operation} failed: ${detail}`
      })
    const noAnswer = `no answer within ${Duration.format(Duration.millis(timeout))}`

    const attempt = <A>(provider: string, operation: string, reply: () => Promise<A>): Effect.Effect<A, StoreUnavailableError> =>
      Effect.tryPromise({ try: reply, catch: describe }).pipe(
        Effect.timeoutFail({ duration: timeout, onTimeout: () => noAnswer }),
        // a lease is taken in an uninterruptible region; the deadlines must still cut its wait
        Effect.interruptible,
        Effect.tapBoth({ onFailure: (detail) => failed(operation, detail), onSuccess: () => answered }),
        Effect.mapError((detail) => unavailable(provider, operation, detail))
      )

    const commands = (provider: string): Commands => ({
      run: (operation, f) => attempt(provider, operation, () => f(redis)),
      send: (operation, f) => send(provider, operation, f)
    })

    const send = (provider: string, operation: string, f: (redis: Redis) => Promise<unknown>): Effect.Effect<void> =>
      Effect.suspend(() => {
        let reply: Promise<unknown>
        try {
          reply = f(redis)
        } catch (cause) {
          reply = Promise.reject(cause)
        }
        // handled here: the fiber below attaches its own handler only when it starts
        reply.catch(() => {})
        return Effect.flatMap(Effect.forkDaemon(Effect.ignore(attempt(provider, operation, () => reply))), (answer) =>
          Effect.descriptorWith((self) =>
            down || HashSet.size(self.interruptors) > 0
              ? Effect.void
              : Effect.ignore(Effect.timeout(Effect.interruptible(Fiber.await(answer)), bookkeepingWait))
          ))
      })

    return { redis, url, prefix: options.prefix ?? "effect-llm:", commands }
  })

/** Every script defined with `script`; each connection loads them when it is ready. */
const scripts = new Set<string>()

/** A Lua script called by SHA; `EVAL` only when the server has not seen it yet. */
export const script = (lua: string) => {
  scripts.add(lua)
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
