/**
 * The Redis plumbing every store shares: one scoped ioredis client per store layer (a
 * single server or a Redis Cluster), used by everything built over it, Lua scripts run by
 * SHA with a fallback to EVAL after a server restart, and the key layout that keeps each
 * script's keys in one hash slot.
 *
 * Outages: the client reconnects forever (`retryStrategy`), commands never queue while it
 * is down, and every command is bounded by `commandTimeout` on the Effect side, so a frozen
 * server holds nothing longer than that. A command whose answer the caller needs (`run`)
 * fails with a typed `StoreUnavailableError`. Bookkeeping (`send`) is sent at once and
 * waited for only briefly (`bookkeepingWait`), never during a known outage, never past the
 * caller's deadline, and its failures are dropped. Either way the first failure of an
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
import { Cluster, Redis } from "./ioredis.js"
import { StoreUnavailableError } from "../../LlmError.js"
import type { RedisTarget } from "../../Redis.js"
import { describeFailure, RedisError, safeUrl } from "./options.js"

/** A single server or a cluster: the commands the stores send are the same on both. */
export type Client = Redis | Cluster

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
 * The prefix every key of a store starts with, checked: a cluster hashes a key by the text
 * between its first `{` and the next `}`, and an empty `{}` there would hash each key whole,
 * scattering a script's keys over slots.
 */
export const prefixOf = (prefix: string | undefined, fallback: string): Either.Either<string, ConfigError.ConfigError> => {
  const value = prefix ?? fallback
  const open = value.indexOf("{")
  return open >= 0 && value.charAt(open + 1) === "}"
    ? Either.left(ConfigError.InvalidData(["prefix"], `Redis: prefix must not contain an empty hash tag "{}", got ${JSON.stringify(value)}`))
    : Either.right(value)
}

/**
 * The common start of the keys one script touches: `prefix` then `{kind:name}`, a hash tag,
 * so that in a cluster they all live in one slot (a cluster refuses a script over keys of
 * several slots). Braces inside `name` are escaped so that the tag is always this one.
 */
export const slot = (prefix: string, kind: string, name: string): string =>
  `${prefix}{${kind}:${name.replace(/[{}%]/g, (c) => (c === "{" ? "%7B" : c === "}" ? "%7D" : "%25"))}}`

/** Where to connect, checked: one URL, or a cluster's seed nodes; and what to call it in errors. */
export interface Endpoint {
  readonly describe: string
  readonly urls: ReadonlyArray<string>
  readonly create: (commandTimeout: number) => Client
}

const urlPattern = /^rediss?:\/\//

export const endpointOf = (target: RedisTarget): Either.Either<Endpoint, RedisError> => {
  const urls = target.cluster !== undefined ? [...target.cluster] : target.url !== undefined ? [target.url] : []
  const shown = urls.map(safeUrl).join(",")
  const bad = urls.find((url) => !urlPattern.test(url) || safeUrl(url) === "<invalid url>")
  if (urls.length === 0 || bad !== undefined) {
    return Either.left(
      new RedisError({
        message: urls.length === 0
          ? target.cluster !== undefined
            ? "the Redis cluster needs at least one node url, like redis://host:port"
            : "a Redis store needs a url (redis://host:port/db) or cluster (a list of node urls)"
          : `the Redis url must look like redis://host:port/db, got ${JSON.stringify(safeUrl(bad!))}`,
        url: shown,
        operation: "connect"
      })
    )
  }
  if (target.cluster === undefined) {
    const url = urls[0]!
    return Either.right({ describe: shown, urls, create: (timeout) => new Redis(url, clientOptions(timeout)) })
  }
  // the first node's credentials and TLS serve every node, as a cluster has one password
  const first = new URL(urls[0]!)
  const nodes = urls.map((url) => {
    const parsed = new URL(url)
    return { host: parsed.hostname, port: Number(parsed.port === "" ? 6379 : parsed.port) }
  })
  const { retryStrategy: _, enableOfflineQueue, ...perNode } = clientOptions(0)
  return Either.right({
    describe: shown,
    urls,
    create: (timeout) =>
      new Cluster(nodes, {
        lazyConnect: true,
        enableOfflineQueue,
        clusterRetryStrategy: retryStrategy,
        redisOptions: {
          ...perNode,
          connectTimeout: Math.max(2000, timeout),
          commandTimeout: timeout,
          ...(first.username === "" ? {} : { username: decodeURIComponent(first.username) }),
          ...(first.password === "" ? {} : { password: decodeURIComponent(first.password) }),
          ...(first.protocol === "rediss:" ? { tls: {} } : {})
        }
      })
  })
}

/** The seed URLs, for masking passwords in what a failure says. */
export const describeWith = (urls: ReadonlyArray<string>) => (cause: unknown): string =>
  urls.reduce((text, url) => describeFailure(text, url), describeFailure(cause, urls[0] ?? ""))

/**
 * One client, shared by everything built over the same store layer.
 */
export interface Connection {
  readonly redis: Client
  /** The URL, or the cluster's seed URLs, passwords masked. */
  readonly url: string
  readonly prefix: string
  /** The commands of one user of the connection (a provider's pool, a limiter), named in its errors. */
  readonly commands: (provider: string) => Commands
  /** Whether the last command failed: an outage is known. */
  readonly isDown: () => boolean
}

export interface Commands {
  /**
   * Runs `f` and waits for its answer, at most `commandTimeout`, even inside an
   * uninterruptible region. A rejection or a timeout is a `StoreUnavailableError`.
   */
  readonly run: <A>(operation: string, f: (redis: Client) => Promise<A>) => Effect.Effect<A, StoreUnavailableError>
  /**
   * Sends `f` now, so that it reaches Redis before any later command of this connection,
   * and waits for the answer at most `bookkeepingWait`: not at all during a known outage
   * or when the caller is being interrupted (its deadline passed). The answer is awaited
   * in the background, bounded by `commandTimeout`, and handed to `onAnswer` there; a
   * failure is logged (once per outage), handed to `onFailure`, and dropped. For bookkeeping
   * that must never hold a call.
   */
  readonly send: <A>(
    operation: string,
    f: (redis: Client) => Promise<A>,
    onAnswer?: (answer: A) => Effect.Effect<void>,
    onFailure?: Effect.Effect<void>
  ) => Effect.Effect<void>
}

/**
 * Loads every script on `node` whenever it is ready, so that commands sent without waiting
 * run in the order they were sent: an EVALSHA that met NOSCRIPT would be sent again as EVAL
 * a round trip later, behind later commands.
 */
const loadScriptsOn = (node: Redis) => {
  const load = () => {
    for (const lua of scripts) node.script("LOAD", lua).catch(() => {})
  }
  node.on("ready", load)
  if (node.status === "ready") load()
}

/**
 * A client that is open (it answered PING) and is closed when the scope closes. `store`
 * (`KeyPool`, `RateLimiter`, …) names it in log lines and errors.
 */
export const connect = (
  options: RedisTarget & { readonly prefix?: string | undefined; readonly commandTimeout?: Duration.DurationInput | undefined },
  store: string,
  defaultPrefix = "effect-llm:"
): Effect.Effect<Connection, RedisError | ConfigError.ConfigError, Scope.Scope> =>
  Effect.gen(function* () {
    const endpoint = yield* endpointOf(options)
    const url = endpoint.describe
    const prefix = yield* prefixOf(options.prefix, defaultPrefix)
    const timeout = yield* commandTimeoutOf(options.commandTimeout, "1 second")
    const connectTimeout = clientOptions(timeout).connectTimeout
    const redis = yield* Effect.acquireRelease(
      Effect.sync(() => endpoint.create(timeout)),
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
    const describe = describeWith(endpoint.urls)
    // ioredis reports connection errors as events too; they surface through the commands
    redis.on("error", () => {})
    if (redis instanceof Cluster) {
      redis.on("node error", () => {})
      redis.on("+node", loadScriptsOn)
    } else {
      loadScriptsOn(redis)
    }
    yield* Effect.tryPromise({
      try: () => redis.connect().then(() => redis.ping()),
      catch: (cause) => new RedisError({ message: `cannot connect to ${url}: ${describe(cause)}`, url, operation: "connect" })
    }).pipe(
      Effect.timeoutFail({
        duration: connectTimeout + timeout,
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
        store,
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
      send: (operation, f, onAnswer, onFailure) => send(provider, operation, f, onAnswer, onFailure)
    })

    const send = <A>(
      provider: string,
      operation: string,
      f: (redis: Client) => Promise<A>,
      onAnswer?: (answer: A) => Effect.Effect<void>,
      onFailure?: Effect.Effect<void>
    ): Effect.Effect<void> =>
      Effect.suspend(() => {
        let reply: Promise<A>
        try {
          reply = f(redis)
        } catch (cause) {
          reply = Promise.reject(cause)
        }
        // handled here: the fiber below attaches its own handler only when it starts
        reply.catch(() => {})
        const handled = attempt(provider, operation, () => reply).pipe(
          Effect.matchEffect({
            onFailure: () => onFailure ?? Effect.void,
            onSuccess: (answer) => (onAnswer === undefined ? Effect.void : onAnswer(answer))
          })
        )
        return Effect.flatMap(Effect.forkDaemon(handled), (answer) =>
          Effect.descriptorWith((self) =>
            down || HashSet.size(self.interruptors) > 0
              ? Effect.void
              : Effect.ignore(Effect.timeout(Effect.interruptible(Fiber.await(answer)), bookkeepingWait))
          ))
      })

    return { redis, url, prefix, commands, isDown: () => down }
  })

/** Every script defined with `script`; each connection loads them when it is ready. */
const scripts = new Set<string>()

/**
 * A Lua script called by SHA; `EVAL` only when the server has not seen it yet. In a
 * cluster it runs on the node of its first key's slot, so all its keys must share that slot.
 */
export const script = (lua: string) => {
  scripts.add(lua)
  const sha = createHash("sha1").update(lua).digest("hex")
  return (redis: Client, keys: ReadonlyArray<string>, args: ReadonlyArray<string | number>): Promise<unknown> =>
    redis.evalsha(sha, keys.length, ...keys, ...args).catch((error: unknown) => {
      if (error instanceof Error && error.message.includes("NOSCRIPT")) return redis.eval(lua, keys.length, ...keys, ...args)
      throw error
    })
}

/** Redis server time in epoch millis with microseconds, read inside a script. */
export const luaNow = `local __t = redis.call("TIME")
local now = tonumber(__t[1]) * 1000 + tonumber(__t[2]) / 1000
`
