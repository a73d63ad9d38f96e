/**
 * The key pool's store in Redis (`Redis.layerKeyPoolStore`): one connection and one lease
 * renewer for every pool built over it, each pool's state shared by every process that
 * uses the same prefix and provider. Per key: a hash (counters, cooldown, disable, last use, half-open) and a
 * sorted set of leases scored by their expiry, so that the load of a crashed process
 * ends with its leases' TTL. Keys are named by fingerprint; the keys themselves stay in
 * each process. A pool's Redis keys share one hash tag (`{keypool:<provider>}`), so that
 * its scripts run on a cluster too. Choosing a key scans the pool inside one Lua script: atomic across
 * processes, and for pools of tens or hundreds of keys a scan costs less than the round
 * trip that a heap kept in Redis would need anyway.
 *
 * During an outage, `take` and `status` fail with `StoreUnavailableError` (no lease is
 * granted without Redis's answer) and `hasHealthyKey` is false. Release and report are
 * bookkeeping (`Connection.send`): a release that is lost ends with the lease's TTL.
 */
import { randomUUID } from "node:crypto"
import * as Duration from "effect/Duration"
import type { ConfigError } from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { KeyPoolStore, type KeyStatus, type Outcome, type Store, type StoreSpec, type Take } from "../../KeyPool.js"
import type { StoreUnavailableError } from "../../LlmError.js"
import { stateOf } from "../keyPool.js"
import { type Connection, connect, luaNow, script, slot } from "./connection.js"
import type { KeyPoolStoreOptions } from "../../Redis.js"
import type { RedisError } from "./options.js"

// KEYS: hash, leases, hash, leases, … in configuration order. ARGV: lease TTL ms, max
// concurrent per key (0: none), lease id; then, to prefer an order over the least-loaded key,
// "1" and each key's rank in it (lower first). Returns {1, index}, {2} (busy) or {0, retry-after ms | -1}.
const takeLua = script(`${luaNow}
local ttl = tonumber(ARGV[1])
local max = tonumber(ARGV[2])
local pref = ARGV[4] == "1"
local best, bestRank, bestLast, bestPref = nil, nil, nil, nil
local busy = false
local earliest = nil
for i = 1, #KEYS, 2 do
  local h, z = KEYS[i], KEYS[i + 1]
  redis.call("ZREMRANGEBYSCORE", z, "-inf", now)
  local inflight = redis.call("ZCARD", z)
  local f = redis.call("HMGET", h, "cooldownUntil", "disabledReason", "disabledUntil", "lastUsed", "halfOpen")
  local cooldown, reason, dUntil = tonumber(f[1]), f[2], tonumber(f[3])
  local last, half = tonumber(f[4]) or 0, f[5] == "1"
  if reason and dUntil and dUntil <= now then
    redis.call("HDEL", h, "disabledReason", "disabledUntil")
    redis.call("HSET", h, "halfOpen", "1")
    reason, half = nil, true
  end
  if cooldown and cooldown <= now then
    redis.call("HDEL", h, "cooldownUntil")
    redis.call("HSET", h, "halfOpen", "1")
    cooldown, half = nil, true
  end
  if reason then
    if dUntil and (not earliest or dUntil < earliest) then earliest = dUntil end
  elseif cooldown then
    if not earliest or cooldown < earliest then earliest = cooldown end
  elseif (half and inflight > 0) or (max > 0 and inflight >= max) then
    busy = true
  elseif pref then
    local p = tonumber(ARGV[4 + (i + 1) / 2])
    if not best or p < bestPref then best, bestPref = i, p end
  elseif not best or inflight < bestRank or (inflight == bestRank and last < bestLast) then
    best, bestRank, bestLast = i, inflight, last
  end
end
if best then
  redis.call("ZADD", KEYS[best + 1], now + ttl, ARGV[3])
  redis.call("PEXPIRE", KEYS[best + 1], ttl * 2)
  redis.call("HSET", KEYS[best], "lastUsed", now)
  return { 1, (best + 1) / 2 }
end
if busy then return { 2 } end
if earliest then return { 0, math.ceil(earliest - now) } end
return { 0, -1 }
`)

// KEYS: hash. ARGV: outcome tag, cooldown ms, reason, quota reset ms.
const reportLua = script(`${luaNow}
local h, tag = KEYS[1], ARGV[1]
if tag == "Success" then
  redis.call("HINCRBY", h, "successes", 1)
  redis.call("HSET", h, "halfOpen", "0")
  return 0
end
redis.call("HINCRBY", h, "failures", 1)
if tag == "RateLimited" then
  local ends = now + tonumber(ARGV[2])
  local current = tonumber(redis.call("HGET", h, "cooldownUntil")) or 0
  redis.call("HSET", h, "cooldownUntil", math.max(current, ends), "halfOpen", "0")
elseif tag == "Rejected" then
  redis.call("HSET", h, "disabledReason", ARGV[3], "halfOpen", "0")
  redis.call("HDEL", h, "disabledUntil")
elseif tag == "QuotaExceeded" then
  redis.call("HSET", h, "disabledReason", ARGV[3], "disabledUntil", now + tonumber(ARGV[4]), "halfOpen", "0")
end
return 0
`)

// KEYS: hash, leases, … Returns, per key: in flight, successes, failures, cooldown,
// reason, disabled until, last use, half-open; then the server time.
const statusLua = script(`${luaNow}
local out = {}
for i = 1, #KEYS, 2 do
  local inflight = redis.call("ZCOUNT", KEYS[i + 1], "(" .. now, "+inf")
  local f = redis.call("HMGET", KEYS[i], "successes", "failures", "cooldownUntil", "disabledReason", "disabledUntil", "lastUsed", "halfOpen")
  table.insert(out, tostring(inflight))
  for j = 1, 7 do table.insert(out, f[j] or "") end
end
table.insert(out, tostring(now))
return out
`)

// KEYS: leases sets; ARGV: a lease id. For a take whose answer never came: it may still run.
const abandonLua = script(`
for i = 1, #KEYS do redis.call("ZREM", KEYS[i], ARGV[1]) end
return 0
`)

// KEYS: leases sets; ARGV: TTL ms, then one lease id per key.
const renewLua = script(`${luaNow}
local ttl = tonumber(ARGV[1])
for i = 1, #KEYS do
  redis.call("ZADD", KEYS[i], "XX", now + ttl, ARGV[i + 1])
  redis.call("PEXPIRE", KEYS[i], ttl * 2)
end
return 0
`)

const num = (s: string): number | undefined => (s === "" ? undefined : Number(s))

/**
 * One connection, and one fiber that renews the live leases of every pool built over it
 * before their TTL runs out; a renewal that fails is tried again at the next tick, and the
 * TTL outlasts two of them.
 */
export const layer = (options: KeyPoolStoreOptions): Layer.Layer<KeyPoolStore, RedisError | ConfigError> =>
  Layer.scoped(
    KeyPoolStore,
    Effect.gen(function* () {
      const connection = yield* connect(options, "KeyPool")
      const ttl = Math.max(1000, Math.round(Duration.toMillis(options.leaseTtl ?? "1 minute")))
      // this process's live leases: lease id -> its key's lease set, and the pool's tag
      const live = new Map<string, Live>()
      const renewer = connection.commands("keypool")
      // one script per pool: a cluster runs a script over keys of one slot only
      const renew = Effect.suspend(() => {
        const byPool = new Map<string, Array<[string, string]>>()
        for (const [lease, { pool, set }] of live) {
          const entries = byPool.get(pool) ?? []
          entries.push([lease, set])
          byPool.set(pool, entries)
        }
        return Effect.forEach(byPool.values(), (entries) =>
          Effect.ignore(renewer.run("keypool renew", (redis) =>
            renewLua(redis, entries.map(([, set]) => set), [ttl, ...entries.map(([lease]) => lease)]))), { discard: true })
      })
      yield* Effect.forkScoped(
        Effect.repeat(Effect.sleep(ttl / 3).pipe(Effect.zipRight(renew)), { while: () => true })
      )
      return { make: (spec: StoreSpec) => Effect.sync(() => poolStore(connection, live, ttl, spec)) }
    })
  )

interface Live {
  readonly pool: string
  readonly set: string
}

const poolStore = (
  connection: Connection,
  live: Map<string, Live>,
  ttl: number,
  { keyIds: ids, providerId, timings }: StoreSpec
): Store => {
  const commands = connection.commands(providerId)
  const base = `${slot(connection.prefix, "keypool", providerId)}:`
  const hashOf = (id: string) => `${base}${id}`
  const leasesOf = (id: string) => `${base}${id}:leases`
  const allKeys = ids.flatMap((id) => [hashOf(id), leasesOf(id)])
  const max = timings.maxConcurrentPerKey

  const leaseSets = ids.map(leasesOf)
  const takeWith = (preference: ReadonlyArray<string | number>): Effect.Effect<Take, StoreUnavailableError> => Effect.suspend(() => {
    const leaseId = randomUUID()
    return commands.run("keypool take", (redis) => takeLua(redis, allKeys, [ttl, max ?? 0, leaseId, ...preference])).pipe(
      // given up on (timeout, lost connection, interruption), the take may still run in
      // Redis; taking back its lease right after it, on the same connection, frees the key
      Effect.onError(() => commands.send("keypool abandon", (redis) => abandonLua(redis, leaseSets, [leaseId]))),
      Effect.map((u): Take => {
        const [code, value] = u as [number, number | undefined]
        if (code === 1) {
          const keyId = ids[value! - 1]!
          live.set(leaseId, { pool: base, set: leasesOf(keyId) })
          return { _tag: "Leased", keyId, leaseId }
        }
        if (code === 2) return { _tag: "Busy" }
        return { _tag: "Unavailable", retryAfterMs: value === undefined || value < 0 ? undefined : value }
      })
    )
  })

  const take = takeWith([])
  const rankOf = new Map(ids.map((id, i) => [id, i]))
  const takePreferring = (order: ReadonlyArray<string>) => {
    const ranks = ids.map(() => order.length)
    order.forEach((id, at) => {
      const i = rankOf.get(id)
      if (i !== undefined) ranks[i] = Math.min(ranks[i]!, at)
    })
    return takeWith(["1", ...ranks])
  }

  const release = (keyId: string, leaseId: string) =>
    Effect.suspend(() => {
      live.delete(leaseId)
      return commands.send("keypool release", (redis) => redis.zrem(leasesOf(keyId), leaseId))
    })

  const report = (keyId: string, outcome: Outcome) => {
    const wait = outcome._tag === "RateLimited"
      ? (outcome.retryAfter === undefined ? timings.defaultCooldown : Duration.toMillis(outcome.retryAfter))
      : 0
    const reason = outcome._tag === "Rejected" || outcome._tag === "QuotaExceeded" ? outcome.reason : ""
    return commands.send("keypool report", (redis) =>
      reportLua(redis, [hashOf(keyId)], [outcome._tag, wait, reason, timings.quotaReset]))
  }

  const status: Effect.Effect<ReadonlyArray<KeyStatus>, StoreUnavailableError> = commands.run(
    "keypool status",
    (redis) => statusLua(redis, allKeys, [])
  ).pipe(
    Effect.map((u) => {
      const fields = u as Array<string>
      const now = Number(fields[fields.length - 1])
      return ids.map((keyId, i): KeyStatus => {
        const [inFlight, successes, failures, cooldown, reason, dUntil, lastUsed, half] = fields.slice(i * 8, i * 8 + 8) as [
          string,
          string,
          string,
          string,
          string,
          string,
          string,
          string
        ]
        const s = {
          cooldownUntil: num(cooldown),
          disabledReason: reason === "" ? undefined : reason,
          disabledUntil: num(dUntil),
          halfOpen: half === "1"
        }
        const n = Number(inFlight)
        return {
          keyId,
          state: stateOf(now, s),
          load: max === undefined ? n : n / max,
          inFlight: n,
          successes: num(successes) ?? 0,
          failures: num(failures) ?? 0,
          cooldownUntil: s.cooldownUntil,
          disabledReason: s.disabledReason,
          disabledUntil: s.disabledUntil,
          lastUsed: num(lastUsed) ?? 0
        }
      })
    })
  )

  // a pool that cannot see its keys has none to offer an immediate re-try
  const hasHealthyKey = (exceptKeyId?: string) =>
    Effect.map(status, (keys) => keys.some((k) => k.keyId !== exceptKeyId && k.state !== "disabled" && k.state !== "coolingDown"))
      .pipe(Effect.orElseSucceed(() => false))

  // another process may free a key at any moment; look again this often
  return { take, takePreferring, release, report, status, hasHealthyKey, pollMillis: 50 }
}
