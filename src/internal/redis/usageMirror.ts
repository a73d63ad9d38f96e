/**
 * The usage mirror in Redis (`Redis.layerUsageMirror`): the totals of every process that uses
 * the same prefix and name, per provider and model. Under one hash tag (`{usage:<name>}`):
 * - `<base>:totals`: a hash of counters, `<entry>\n<field>` for each of `Usage.totalsFields`,
 *   where `<entry>` is the JSON of `[provider, model]`;
 * - `<base>:order`: the entries scored by when they were first seen;
 * - `<base>:batches`: per process (a random holder id), the last batch it added.
 *
 * A process adds what it recorded in numbered batches, one in flight at a time: a batch is
 * sent until Redis answers and added once however often it arrives (its number is at most
 * the holder's last), so that a lost answer, an outage or a frozen Redis never counts a
 * response twice nor loses it while the process lives. What accumulates meanwhile goes in
 * the next batch. Snapshots read Redis, after sending what this process still holds.
 */
import { randomUUID } from "node:crypto"
import type { ConfigError } from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import type { StoreUnavailableError } from "../../LlmError.js"
import type { UsageMirrorOptions } from "../../Redis.js"
import { type Entry, type Mirror, type Totals, UsageMirror } from "../../Usage.js"
import { totalsFields, zeroTotals } from "../usage.js"
import { type Commands, connect, luaNow, script, slot } from "./connection.js"
import type { RedisError } from "./options.js"

// KEYS: totals, order, batches. ARGV: holder, batch number, field count k, the k field
// names, then per entry: its key and k values. Returns 1 when added, 0 when already added.
const addLua = script(`${luaNow}
local T, O, B = KEYS[1], KEYS[2], KEYS[3]
local holder, seq = ARGV[1], tonumber(ARGV[2])
if seq <= (tonumber(redis.call("HGET", B, holder)) or 0) then return 0 end
redis.call("HSET", B, holder, seq)
local k = tonumber(ARGV[3])
local i = 4 + k
-- first seen: server microseconds, then the order within the batch
local at = math.floor(now * 1000)
while i <= #ARGV do
  local entry = ARGV[i]
  redis.call("ZADD", O, "NX", at, entry)
  at = at + 1
  for j = 1, k do
    local v = ARGV[i + j]
    if v ~= "0" then redis.call("HINCRBYFLOAT", T, entry .. "\\n" .. ARGV[3 + j], v) end
  end
  i = i + k + 1
end
return 1
`)

const readLua = script(`
return { redis.call("ZRANGE", KEYS[2], 0, -1), redis.call("HGETALL", KEYS[1]) }
`)

type Counts = { -readonly [K in keyof Totals]: number }

interface Batch {
  readonly seq: number
  readonly entries: ReadonlyMap<string, Counts>
}

/** One connection, and one fiber that sends what is waiting every half second. */
export const layer = (options: UsageMirrorOptions): Layer.Layer<UsageMirror, RedisError | ConfigError> =>
  Layer.scoped(
    UsageMirror,
    Effect.gen(function* () {
      const connection = yield* connect(options, "Usage")
      const name = options.name ?? "default"
      const mirror = makeMirror(connection.commands(`usage:${name}`), slot(connection.prefix, "usage", name))
      yield* Effect.forkScoped(Effect.repeat(Effect.ignore(mirror.flush), Schedule.spaced("500 millis")))
      // what this process still holds goes before the connection closes
      yield* Effect.addFinalizer(() => Effect.ignore(mirror.flush))
      return mirror.service
    })
  )

const makeMirror = (commands: Commands, base: string) => {
  const keys = [`${base}:totals`, `${base}:order`, `${base}:batches`]
  const holder = randomUUID()
  let seq = 0
  let waiting = new Map<string, Counts>()
  let inFlight: Batch | undefined
  let flushing = false

  const argsOf = (batch: Batch) => {
    const args: Array<string | number> = [holder, batch.seq, totalsFields.length, ...totalsFields]
    for (const [entry, counts] of batch.entries) {
      args.push(entry)
      for (const field of totalsFields) args.push(counts[field])
    }
    return args
  }

  // one flush at a time: a batch is sent again only when its answer did not come
  const lock = Effect.unsafeMakeSemaphore(1)

  /** Sends the batch in flight, then the next, until nothing waits; fails when Redis does not answer. */
  const sendAll: Effect.Effect<void, StoreUnavailableError> = Effect.suspend(() => {
    if (inFlight === undefined) {
      if (waiting.size === 0) return Effect.void
      inFlight = { seq: ++seq, entries: waiting }
      waiting = new Map()
    }
    const batch = inFlight
    return commands.run("usage add", (redis) => addLua(redis, keys, argsOf(batch))).pipe(
      Effect.zipRight(Effect.suspend(() => {
        if (inFlight === batch) inFlight = undefined
        return sendAll
      }))
    )
  })
  const flush = lock.withPermits(1)(sendAll)

  /** A flush in the background, one at a time; a failure leaves the batch for the next try. */
  const nudge = Effect.suspend(() => {
    if (flushing) return Effect.void
    flushing = true
    return Effect.asVoid(Effect.forkDaemon(Effect.ensuring(Effect.ignore(flush), Effect.sync(() => void (flushing = false)))))
  })

  const record = (provider: string, model: string, totals: Totals) =>
    Effect.suspend(() => {
      const entry = JSON.stringify([provider, model])
      let counts = waiting.get(entry)
      if (counts === undefined) {
        counts = zeroTotals()
        waiting.set(entry, counts)
      }
      for (const field of totalsFields) counts[field] += totals[field]
      return nudge
    })

  const entries: Effect.Effect<ReadonlyArray<Entry>, StoreUnavailableError> = Effect.zipRight(
    // this process's own records first, so that a snapshot includes them
    flush,
    commands.run("usage read", (redis) => readLua(redis, keys, [])).pipe(
      Effect.map((answer): ReadonlyArray<Entry> => {
        const [order, pairs] = answer as [Array<string>, Array<string>]
        const values = new Map<string, number>()
        for (let i = 0; i < pairs.length; i += 2) values.set(pairs[i]!, Number(pairs[i + 1]))
        return order.map((entry): Entry => {
          const [provider, model] = JSON.parse(entry) as [string, string]
          const totals = zeroTotals()
          for (const field of totalsFields) totals[field] = values.get(`${entry}\n${field}`) ?? 0
          return { provider, model, ...totals }
        })
      })
    )
  )

  const reset = Effect.suspend(() => {
    // what was recorded before the reset is not sent after it
    waiting = new Map()
    inFlight = undefined
    return commands.run("usage reset", (redis) => redis.del(keys[0]!, keys[1]!))
  }).pipe(Effect.asVoid)

  const service: Mirror = { record, entries, reset }
  return { service, flush }
}
