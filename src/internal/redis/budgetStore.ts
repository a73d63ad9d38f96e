/**
 * The budget's store in Redis (`Redis.layerBudgetStore`): one spend and token budget per
 * period for every process that uses the same prefix and budget name. Per period, under one
 * hash tag (`{budget:<name>}`, so that the scripts run on a cluster):
 * - `<base>:<periodStart>`: a hash of the settled spend (`tokens`, `cost`), the reserved
 *   estimates (`rtokens`, `rcost`) and `warned`;
 * - `…:leases`: a sorted set of reservation ids scored by when their lease ends, and
 *   `…:held`: each reservation's estimate, so that a lease that ends gives it back;
 * - `…:settled`: the ids settled lately, scored by when, so that a settlement sent again
 *   counts once;
 * and `<base>:credit`, the credit a provider reported and what was spent since. Each
 * operation is one Lua script, timed by the Redis server's clock; the period keys expire
 * after the period (and the idempotency window) ends.
 *
 * During an outage `reserve` and `status` fail with `StoreUnavailableError` (`failOpen`
 * admits instead, unrecorded); a reservation whose answer was lost is given back by a
 * settlement of nothing under its id. A settlement is kept until Redis has it: sent at once, sent
 * again before this process's next reservation and by a background fiber until answered,
 * and counted once however often it arrives. Renewals and the credit are bookkeeping,
 * dropped when they fail (a renewal is sent again at the next tick).
 */
import type { ConfigError } from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import {
  BudgetStore,
  type Claim,
  type Held,
  type Reservation,
  type Settlement,
  type Store,
  type StoreSpec,
  type StoreStatus,
  type Window
} from "../../Budget.js"
import type { StoreUnavailableError } from "../../LlmError.js"
import type { BudgetStoreOptions } from "../../Redis.js"
import { idempotencyWindow } from "../budget.js"
import { type Client, type Commands, connect, luaNow, script, slot } from "./connection.js"
import type { RedisError } from "./options.js"

// KEYS: period hash, leases, held, settled. Ends the leases past their time (giving their
// estimates back) and defines save(), which writes the period back and sets its expiry.
const prelude = `${luaNow}
local P, L, H, S = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local f = redis.call("HMGET", P, "tokens", "cost", "rtokens", "rcost", "warned")
local tokens, cost = tonumber(f[1]) or 0, tonumber(f[2]) or 0
local rtokens, rcost = tonumber(f[3]) or 0, tonumber(f[4]) or 0
local warned = f[5] == "1"
local function release(id)
  local h = redis.call("HGET", H, id)
  if h then
    local sp = string.find(h, " ")
    rtokens = rtokens - tonumber(string.sub(h, 1, sp - 1))
    rcost = rcost - tonumber(string.sub(h, sp + 1))
    redis.call("HDEL", H, id)
  end
end
local ended = redis.call("ZRANGEBYSCORE", L, "-inf", now)
for _, id in ipairs(ended) do release(id) end
if #ended > 0 then redis.call("ZREMRANGEBYSCORE", L, "-inf", now) end
local function save(expireAt)
  -- sums of floats drift: with nothing held, nothing is reserved
  if redis.call("ZCARD", L) == 0 then rtokens = 0; rcost = 0 end
  redis.call("HSET", P, "tokens", tokens, "cost", cost, "rtokens", rtokens, "rcost", rcost)
  for i = 1, 4 do redis.call("PEXPIREAT", KEYS[i], expireAt) end
end
`

// KEYS: + credit. ARGV: id, tokens, cost ("" unpriced), max tokens ("" none), max cost, lease
// ms, expire-at. Returns {"ok"} or {dimension, limit, spent, source}.
const reserveLua = script(`${prelude}
local C = KEYS[5]
local id, t, c = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local maxT, maxC = tonumber(ARGV[4]), tonumber(ARGV[5])
local ttl, expireAt = tonumber(ARGV[6]), tonumber(ARGV[7])
if maxT and tokens + rtokens + t > maxT then
  save(expireAt)
  return { "tokens", tostring(maxT), tostring(tokens + rtokens), "" }
end
if maxC and c and cost + rcost + c > maxC then
  save(expireAt)
  return { "cost", tostring(maxC), tostring(cost + rcost), "" }
end
if c then
  local cr = redis.call("HMGET", C, "remaining", "spentSince", "source")
  local remaining = tonumber(cr[1])
  if remaining then
    local since = tonumber(cr[2]) or 0
    if since + rcost + c > remaining then
      save(expireAt)
      return { "credit", tostring(remaining), tostring(since + rcost), cr[3] or "" }
    end
  end
end
redis.call("ZADD", L, now + ttl, id)
redis.call("HSET", H, id, ARGV[2] .. " " .. tostring(c or 0))
rtokens = rtokens + t
rcost = rcost + (c or 0)
save(expireAt)
return { "ok" }
`)

// KEYS: + credit. ARGV: id, tokens, cost, max tokens, max cost, warn at, expire-at, idempotency
// window ms. Returns {"1", tokens, cost} when this settlement first crossed warnAt, else {"0"}.
const settleLua = script(`${prelude}
local C = KEYS[5]
local id, t, c = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local maxT, maxC, warnAt = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local expireAt, window = tonumber(ARGV[7]), tonumber(ARGV[8])
redis.call("ZREMRANGEBYSCORE", S, "-inf", now - window)
if redis.call("ZSCORE", S, id) then
  save(expireAt)
  return { "0" }
end
redis.call("ZADD", S, now, id)
release(id)
redis.call("ZREM", L, id)
tokens = tokens + t
cost = cost + c
if c > 0 and redis.call("EXISTS", C) == 1 then redis.call("HINCRBYFLOAT", C, "spentSince", ARGV[3]) end
local crossed = "0"
if not warned and (maxT or maxC) then
  local fraction = math.max(maxT and tokens / maxT or 0, maxC and cost / maxC or 0)
  if fraction >= warnAt then
    redis.call("HSET", P, "warned", "1")
    crossed = "1"
  end
end
save(expireAt)
return { crossed, tostring(tokens), tostring(cost) }
`)

// ARGV: lease ms, expire-at, then id, tokens, cost per reservation. A reservation Redis no
// longer holds (its lease ended while its holder was held up, or Redis lost it) is put back,
// unless it was settled: it is still in flight.
const renewLua = script(`${prelude}
local ttl, expireAt = tonumber(ARGV[1]), tonumber(ARGV[2])
for i = 3, #ARGV, 3 do
  local id = ARGV[i]
  if not redis.call("ZSCORE", S, id) then
    if redis.call("HEXISTS", H, id) == 0 then
      redis.call("HSET", H, id, ARGV[i + 1] .. " " .. ARGV[i + 2])
      rtokens = rtokens + tonumber(ARGV[i + 1])
      rcost = rcost + tonumber(ARGV[i + 2])
    end
    redis.call("ZADD", L, now + ttl, id)
  end
end
save(expireAt)
return 0
`)

// KEYS: + credit. ARGV: expire-at.
const statusLua = script(`${prelude}
save(tonumber(ARGV[1]))
local cr = redis.call("HMGET", KEYS[5], "remaining", "spentSince", "source")
return { tostring(tokens), tostring(cost), tostring(rtokens), tostring(rcost), warned and "1" or "0", cr[1] or "", cr[2] or "", cr[3] or "" }
`)

// KEYS: credit. ARGV: remaining ("" forgets it), source.
const creditLua = script(`
if ARGV[1] == "" then
  redis.call("DEL", KEYS[1])
else
  redis.call("HSET", KEYS[1], "remaining", ARGV[1], "spentSince", "0", "source", ARGV[2])
end
return 0
`)

const opt = (n: number | undefined) => (n === undefined ? "" : n)

/**
 * One connection, and one fiber that sends again the settlements Redis has not answered,
 * for every budget built over it.
 */
export const layer = (options: BudgetStoreOptions): Layer.Layer<BudgetStore, RedisError | ConfigError> =>
  Layer.scoped(
    BudgetStore,
    Effect.gen(function* () {
      const connection = yield* connect(options, "Budget")
      const flushes = new Set<Effect.Effect<void>>()
      yield* Effect.forkScoped(
        Effect.repeat(Effect.suspend(() => Effect.forEach(flushes, (flush) => flush, { discard: true })), Schedule.spaced("500 millis"))
      )
      return {
        make: (spec: StoreSpec) =>
          Effect.sync(() => {
            const { flush, store } = budgetStore(connection.commands(`budget:${spec.name}`), slot(connection.prefix, "budget", spec.name), spec, options.failOpen === true)
            flushes.add(flush)
            return store
          })
      }
    })
  )

const budgetStore = (commands: Commands, base: string, spec: StoreSpec, failOpen: boolean) => {
  const window = idempotencyWindow(spec.leaseTtlMillis)
  const credit = `${base}:credit`
  const keysOf = (period: Window) => {
    const p = `${base}:${period.start}`
    return [p, `${p}:leases`, `${p}:held`, `${p}:settled`, credit]
  }
  const expireAtOf = (period: Window) => period.end + window

  // settlements Redis has not answered yet, by id; each sent again until it is
  const pending = new Map<string, { readonly settlement: Settlement; sending: boolean }>()
  const sendSettlement = (entry: { readonly settlement: Settlement; sending: boolean }) =>
    Effect.suspend(() => {
      if (entry.sending) return Effect.void
      entry.sending = true
      const { settlement } = entry
      return commands.send(
        "budget settle",
        (redis: Client) =>
          settleLua(redis, keysOf(settlement.period), [
            settlement.id,
            settlement.tokens,
            settlement.cost,
            opt(spec.maxTokens),
            opt(spec.maxCost),
            spec.warnAt,
            expireAtOf(settlement.period),
            window
          ]),
        (answer) =>
          Effect.suspend(() => {
            pending.delete(settlement.id)
            const [crossed, tokens, cost] = answer as [string, string?, string?]
            return crossed === "1"
              ? spec.onWarning({ periodEnd: settlement.period.end, tokens: Number(tokens), cost: Number(cost) })
              : Effect.void
          }),
        Effect.sync(() => {
          entry.sending = false
        })
      )
    })
  const flush = Effect.suspend(() =>
    pending.size === 0 ? Effect.void : Effect.forEach(pending.values(), sendSettlement, { discard: true })
  )

  const reserve = (claim: Claim): Effect.Effect<Reservation, StoreUnavailableError> =>
    // what this process settled but Redis has not answered goes first, on the same connection
    Effect.zipRight(
      flush,
      commands.run("budget reserve", (redis) =>
        reserveLua(redis, keysOf(claim.period), [
          claim.id,
          claim.tokens,
          opt(claim.cost),
          opt(spec.maxTokens),
          opt(spec.maxCost),
          spec.leaseTtlMillis,
          expireAtOf(claim.period)
        ]))
    ).pipe(
      Effect.map((answer): Reservation => {
        const [tag, limit, spent, source] = answer as [string, string?, string?, string?]
        if (tag === "ok") return { _tag: "Reserved" }
        return {
          _tag: "Refused",
          dimension: tag as "tokens" | "cost" | "credit",
          limit: Number(limit),
          spent: Number(spent),
          source: source === "" ? undefined : source
        }
      }),
      (effect) =>
        failOpen
          // admitted unrecorded: the request's own settlement records it once Redis is back
          ? Effect.orElseSucceed(effect, (): Reservation => ({ _tag: "Reserved" }))
          // given up on, the reservation may still be taken when Redis wakes: a settlement of
          // nothing, sent until answered and behind it on the connection, gives it back
          : Effect.tapError(effect, () => settle({ id: claim.id, period: claim.period, tokens: 0, cost: 0, now: claim.now }))
    )

  const settle = (settlement: Settlement) =>
    Effect.suspend(() => {
      const entry = { settlement, sending: false }
      pending.set(settlement.id, entry)
      return sendSettlement(entry)
    })

  const renew = (held: ReadonlyArray<Held>) =>
    Effect.suspend(() => {
      const byPeriod = new Map<number, Array<Held>>()
      for (const reservation of held) {
        const group = byPeriod.get(reservation.period.start) ?? []
        group.push(reservation)
        byPeriod.set(reservation.period.start, group)
      }
      return Effect.forEach(byPeriod.values(), (group) => {
        const period = group[0]!.period
        return commands.send("budget renew", (redis) =>
          renewLua(redis, keysOf(period).slice(0, 4), [
            spec.leaseTtlMillis,
            expireAtOf(period),
            ...group.flatMap((r) => [r.id, r.tokens, r.cost])
          ]))
      }, { discard: true })
    })

  const status = (period: Window): Effect.Effect<StoreStatus, StoreUnavailableError> =>
    commands.run("budget status", (redis) => statusLua(redis, keysOf(period), [expireAtOf(period)])).pipe(
      Effect.map((answer) => {
        const [tokens, cost, rtokens, rcost, warned, remaining, since, source] = answer as Array<string>
        return {
          tokens: Number(tokens),
          cost: Number(cost),
          reservedTokens: Number(rtokens),
          reservedCost: Number(rcost),
          warned: warned === "1",
          credit: remaining === "" || remaining === undefined
            ? undefined
            : { remaining: Number(remaining), spentSince: Number(since), source: source ?? "" }
        }
      })
    )

  const setCredit = (next: { readonly remaining: number; readonly source: string } | undefined) =>
    commands.send("budget credit", (redis) => creditLua(redis, [credit], next === undefined ? ["", ""] : [next.remaining, next.source]))

  const store: Store = {
    reserve,
    settle,
    renew: (held) => renew(held),
    status: (period) => status(period),
    setCredit
  }
  return { store, flush }
}
