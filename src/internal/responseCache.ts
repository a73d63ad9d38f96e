/**
 * ResponseCache internals: the canonical request key and the two stores (an in-process LRU
 * and Redis). Stores never fail: a broken backend reads as a miss and logs a warning.
 */
import { createHash } from "node:crypto"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import { Redis } from "ioredis"
import { LRUCache } from "lru-cache"
import * as Message from "../Message.js"
import { clientOptions, commandTimeoutOf } from "./redis.js"

// ---------------------------------------------------------------------------
// The key
// ---------------------------------------------------------------------------

const canonicalContent = (content: Message.UserMessage["content"]): unknown => {
  if (typeof content === "string") return content
  // a lone text part is the same prompt as a plain string
  if (content.length === 1 && content[0]!.type === "text") return content[0]!.text
  return content.map((part) =>
    part.type === "text"
      ? { type: "text", text: part.text }
      : { type: "image", url: part.url, mediaType: part.mediaType, detail: part.detail === "auto" ? undefined : part.detail }
  )
}

const canonicalMessage = (message: Message.Message): unknown => {
  switch (message.role) {
    case "system":
      return { role: "system", content: message.content }
    case "user":
      return { role: "user", content: canonicalContent(message.content) }
    case "assistant":
      return {
        role: "assistant",
        content: message.content,
        toolCalls: message.toolCalls !== undefined && message.toolCalls.length > 0
          ? message.toolCalls.map((c) => ({ id: c.id, name: c.name, arguments: c.arguments }))
          : undefined,
        reasoning: message.reasoning
      }
    case "tool":
      return { role: "tool", toolCallId: message.toolCallId, content: message.content, name: message.name }
  }
}

const nonEmpty = <A>(items: ReadonlyArray<A> | undefined): ReadonlyArray<A> | undefined =>
  items === undefined || items.length === 0 ? undefined : items

/**
 * What determines the answer, with provider defaults and empty values dropped. Left out on
 * purpose: `user` (an end-user id for abuse tracking) and `cache` (this layer's own switch).
 */
export const canonicalRequest = (provider: string, model: string, request: Message.ChatRequest): unknown => {
  const tools = nonEmpty(request.tools)
  return {
    provider,
    model,
    messages: request.messages.map(canonicalMessage),
    tools: tools?.map((t) => ({ name: t.name, description: t.description, parameters: t.parameters, strict: t.strict })),
    // "auto" is what every provider does when tools are given and no choice is
    toolChoice: request.toolChoice === "auto" ? undefined : request.toolChoice,
    temperature: request.temperature,
    topP: request.topP === 1 ? undefined : request.topP,
    maxTokens: request.maxTokens,
    stop: nonEmpty(request.stop),
    seed: request.seed,
    presencePenalty: request.presencePenalty === 0 ? undefined : request.presencePenalty,
    frequencyPenalty: request.frequencyPenalty === 0 ? undefined : request.frequencyPenalty,
    reasoningEffort: request.reasoningEffort,
    responseFormat: request.responseFormat?.type === "text" ? undefined : request.responseFormat,
    extra: request.extra !== undefined && Object.keys(request.extra).length > 0 ? request.extra : undefined
  }
}

/** JSON with object keys sorted and undefined members dropped, so key order cannot matter. */
export const stableStringify = (value: unknown): string => {
  if (value === null || typeof value !== "object") return JSON.stringify(value) ?? "null"
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? "null" : stableStringify(v))).join(",")}]`
  const record = value as Record<string, unknown>
  const parts: Array<string> = []
  for (const key of Object.keys(record).sort()) {
    const v = record[key]
    if (v !== undefined) parts.push(`${JSON.stringify(key)}:${stableStringify(v)}`)
  }
  return `{${parts.join(",")}}`
}

/** The cache key: SHA-256 of the canonical request. */
export const keyOf = (provider: string, model: string, request: Message.ChatRequest): string =>
  createHash("sha256").update(stableStringify(canonicalRequest(provider, model, request))).digest("hex")

// ---------------------------------------------------------------------------
// Stores
// ---------------------------------------------------------------------------

/** A storage backend. `get` and `set` take the current time so that TTLs follow `Clock`. */
export interface Backend {
  readonly get: (key: string) => Effect.Effect<Message.ChatResponse | undefined>
  readonly set: (key: string, response: Message.ChatResponse) => Effect.Effect<void>
  readonly clear: Effect.Effect<void>
  readonly size: Effect.Effect<number>
}

interface MemoryEntry {
  readonly response: Message.ChatResponse
  readonly expiresAt: number
}

/** An LRU (lru-cache) whose entries also expire after `ttl`, measured on Effect's `Clock`. */
export const memoryBackend = (options: { readonly maxEntries: number; readonly ttl: Duration.DurationInput }): Effect.Effect<Backend> =>
  Effect.sync(() => {
    const ttl = Duration.toMillis(Duration.decode(options.ttl))
    const lru = new LRUCache<string, MemoryEntry>({ max: Math.max(1, Math.floor(options.maxEntries)) })
    const purge = (now: number) => {
      for (const [key, entry] of lru.entries()) if (entry.expiresAt <= now) lru.delete(key)
    }
    return {
      get: (key) =>
        Effect.map(Clock.currentTimeMillis, (now) => {
          const entry = lru.get(key)
          if (entry === undefined) return undefined
          if (entry.expiresAt <= now) {
            lru.delete(key)
            return undefined
          }
          return entry.response
        }),
      set: (key, response) =>
        Effect.map(Clock.currentTimeMillis, (now) => void lru.set(key, { response, expiresAt: now + ttl })),
      clear: Effect.sync(() => lru.clear()),
      size: Effect.map(Clock.currentTimeMillis, (now) => {
        purge(now)
        return lru.size
      })
    }
  })

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

export interface RedisOptions {
  readonly url: string
  readonly prefix?: string | undefined
  readonly ttl: Duration.DurationInput
  readonly maxEntries?: number | undefined
  /** Longest wait for one Redis command before it counts as a miss. Default 500 ms. */
  readonly commandTimeout?: Duration.DurationInput | undefined
}

/**
 * Entries are `prefix + key` strings with a Redis TTL, indexed by last access in a sorted set
 * at `prefix + "lru"` so that `maxEntries` evicts the least recently used. Keys are derived in
 * the scripts, so this store is for a single Redis, not a cluster.
 */
export const redisBackend = (options: RedisOptions): Effect.Effect<Backend, never, Scope.Scope> =>
  Effect.gen(function* () {
    const prefix = options.prefix ?? "effect-llm:cache:"
    const index = `${prefix}lru`
    const ttl = Duration.toMillis(Duration.decode(options.ttl))
    const maxEntries = options.maxEntries ?? Number.MAX_SAFE_INTEGER
    const commandTimeout = commandTimeoutOf(options.commandTimeout, "500 millis")
    const redis = yield* Effect.acquireRelease(
      Effect.sync(() => {
        // fail at once while disconnected, so a down Redis is a fast miss, not a queue; and
        // reconnect forever, as the key pool and the limiter do
        const client = new Redis(options.url, clientOptions(commandTimeout))
        // errors surface through the commands; without a listener ioredis prints them itself
        client.on("error", () => {})
        client.defineCommand("cacheGet", { numberOfKeys: 2, lua: getScript })
        client.defineCommand("cacheSet", { numberOfKeys: 2, lua: setScript })
        client.defineCommand("cacheSize", { numberOfKeys: 1, lua: sizeScript })
        return client
      }),
      (client) => Effect.sync(() => client.disconnect())
    )
    const commands = redis as unknown as Redis & CacheCommands

    let healthy = true
    const degraded = (operation: string) => (cause: unknown) =>
      Effect.suspend(() => {
        if (!healthy) return Effect.void
        healthy = false
        return Effect.logWarning(
          `ResponseCache: Redis ${operation} failed; serving misses until it answers again`,
          cause instanceof Error ? cause.message : String(cause)
        )
      })
    const recovered = Effect.suspend(() => {
      if (healthy) return Effect.void
      healthy = true
      return Effect.logInfo("ResponseCache: Redis answers again")
    })
    // Bounded here as well as by ioredis (a script run is EVALSHA then EVAL). `clear` is
    // many commands, each bounded by ioredis alone.
    const attempt = <A>(operation: string, run: () => Promise<A>, fallback: A, bound = commandTimeout): Effect.Effect<A> =>
      Effect.tryPromise(run).pipe(
        (effect) =>
          Number.isFinite(bound)
            ? Effect.timeoutFail(effect, { duration: bound, onTimeout: () => new Error(`no answer within ${bound}ms`) })
            : effect,
        Effect.interruptible,
        Effect.tap(() => recovered),
        Effect.catchAll((cause) => Effect.as(degraded(operation)(cause), fallback))
      )

    yield* attempt("connect", () => redis.connect(), undefined, clientOptions(commandTimeout).connectTimeout + commandTimeout)

    return {
      get: (key) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) =>
          Effect.map(attempt("GET", () => commands.cacheGet(prefix + key, index, now), null), (raw) => {
            if (raw === null) return undefined
            const decoded = decodeStored(raw)
            // an entry this version cannot read is a miss, and `set` will overwrite it
            if (Either.isLeft(decoded) || decoded.right.expiresAt <= now) return undefined
            return decoded.right.response
          })),
      set: (key, response) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) =>
          Effect.asVoid(
            attempt(
              "SET",
              () => commands.cacheSet(prefix + key, index, JSON.stringify({ response, expiresAt: now + ttl }), ttl, now, maxEntries),
              0
            )
          )),
      clear: attempt("clear", () =>
        new Promise<void>((resolve, reject) => {
          const scan = redis.scanStream({ match: `${prefix}*`, count: 500 })
          const pending: Array<Promise<unknown>> = []
          scan.on("data", (keys: Array<string>) => {
            if (keys.length > 0) pending.push(redis.unlink(...keys))
          })
          scan.on("error", reject)
          scan.on("end", () => Promise.all(pending).then(() => resolve(), reject))
        }), undefined, Number.POSITIVE_INFINITY),
      size: Effect.flatMap(Clock.currentTimeMillis, (now) => attempt("size", () => commands.cacheSize(index, now - ttl), 0))
    }
  })
