/**
 * The rate limiter's buckets in Redis (`Redis.layerRateLimiterStore`), for one budget
 * across processes and hosts: one connection for every limiter built over the layer.
 *
 * Why not `@effect/experimental`'s Redis `RateLimiterStore`: its token bucket keeps one
 * integer dimension, refills in whole tokens, takes `now` from each caller's clock (hosts
 * drift), and refuses rather than reserving ahead. Ours needs FIFO reservations (a level
 * that goes negative), an optional token dimension charged in the same atomic step,
 * refunds on interruption, `settle` corrections, levels and capacities lowered from
 * response headers, and a shared pause. So each operation is one Lua script here, run by
 * SHA, and timed by the Redis server's `TIME`, which every process agrees on.
 *
 * During an outage, a reservation (and `status`, `reset`, the pause check of a waiter)
 * fails with `StoreUnavailableError`: nothing is admitted without Redis's answer. Refunds,
 * settlements and what `observe` learns are bookkeeping (`Connection.send`), dropped when
 * they fail. A reservation whose answer was lost is not refunded: it may have been taken,
 * and an outage must err toward admitting less, never more.
 */
import type { ConfigError } from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type { StoreUnavailableError } from "../../LlmError.js"
import { type Learned, RateLimiterStore, type Status, type Store, type StoreSpec } from "../../RateLimiter.js"
import { type Commands, connect, luaNow, script } from "./connection.js"
import type { RedisOptions } from "../../Redis.js"
import type { RedisError } from "./options.js"

// ARGV[1..4]: configured request capacity and refill per ms, token capacity (0: no token
// dimension) and refill per ms. Levels, learned capacities and the pause live in one hash.
const prelude = `${luaNow}
local key = KEYS[1]
local rcap0 = tonumber(ARGV[1])
local tcap0 = tonumber(ARGV[3])
local trate = tonumber(ARGV[4])
local f = redis.call("HMGET", key, "rl", "rlast", "rcap", "tl", "tlast", "tcap", "pause", "rrate")
-- a refill rate a provider reported (learned) lowers the configured one
local rrate = math.min(tonumber(ARGV[2]), tonumber(f[8]) or tonumber(ARGV[2]))
local rcap = math.min(rcap0, tonumber(f[3]) or rcap0)
local rl = tonumber(f[1]) or rcap
local rlast = tonumber(f[2]) or now
if now > rlast then
  rl = math.min(rcap, rl + (now - rlast) * rrate)
  rlast = now
end
local tcap = math.min(tcap0, tonumber(f[6]) or tcap0)
local tl = tonumber(f[4]) or tcap
local tlast = tonumber(f[5]) or now
if tcap0 > 0 and now > tlast then
  tl = math.min(tcap, tl + (now - tlast) * trate)
  tlast = now
end
local pause = tonumber(f[7]) or 0
local function save()
  redis.call("HSET", key, "rl", rl, "rlast", rlast, "tl", tl, "tlast", tlast, "pause", pause)
  -- an idle bucket is full again after capacity / rate; it can go, and start full
  local idle = (rcap - math.min(rl, 0)) / rrate
  if tcap0 > 0 then idle = math.max(idle, (tcap - math.min(tl, 0)) / trate) end
  redis.call("PEXPIRE", key, math.ceil(math.max(idle, pause - now)) + 60000)
end
`

const reserveLua = script(`${prelude}
local r = tonumber(ARGV[5])
local t = tonumber(ARGV[6])
local wait = 0
if rl < r then wait = (r - rl) / rrate end
if tcap0 > 0 and tl < t then wait = math.max(wait, (t - tl) / trate) end
-- the turn: when the buckets cover the cost; a pause may hold the caller longer
local turnms = math.ceil(wait)
local waitms = turnms
if ARGV[8] ~= "1" and pause > now then waitms = math.max(turnms, math.ceil(pause - now)) end
if ARGV[7] == "1" and waitms > 0 then return { -waitms - 1, 0 } end
-- a waiter woken on the whole millisecond takes the refill of the fraction it rounded up
local rounding = turnms - wait
rl = rl - r - rounding * rrate
if tcap0 > 0 then tl = tl - t - rounding * trate end
save()
return { waitms, turnms }
`)

const refundLua = script(`${prelude}
rl = math.min(rcap, rl + tonumber(ARGV[5]))
if tcap0 > 0 then tl = math.min(tcap, tl + tonumber(ARGV[6])) end
save()
return 0
`)

const adjustLua = script(`${prelude}
if tcap0 > 0 then tl = math.min(tcap, tl - tonumber(ARGV[5])) end
save()
return 0
`)

const learnLua = script(`${prelude}
local rrem = tonumber(ARGV[5])
local rlim = tonumber(ARGV[6])
local trem = tonumber(ARGV[7])
local tlim = tonumber(ARGV[8])
local pms = tonumber(ARGV[9])
local rref = tonumber(ARGV[10])
if rlim and rlim > 0 and rlim < rcap then rcap = rlim; rl = math.min(rl, rcap) end
if rref and rref > 0 and rref < rrate then rrate = rref; redis.call("HSET", key, "rrate", rref) end
if rrem and rrem < rl then rl = rrem end
if tcap0 > 0 then
  if tlim and tlim > 0 and tlim < tcap then tcap = tlim; tl = math.min(tl, tcap) end
  if trem and trem < tl then tl = trem end
end
if pms and pms > 0 then pause = math.max(pause, now + pms) end
-- only capacities learned from a server are stored: configured ones come with each call
if rcap < rcap0 then redis.call("HSET", key, "rcap", rcap) end
if tcap0 > 0 and tcap < tcap0 then redis.call("HSET", key, "tcap", tcap) end
save()
return 0
`)

const statusLua = script(`${prelude}
return { tostring(rl), tostring(rcap), tostring(tl), tostring(tcap), tostring(pause), tostring(now), tostring(rrate) }
`)

const pausedLua = script(`${prelude}
return math.ceil(math.max(0, pause - now))
`)

const resetLua = script(`${prelude}
rl = rcap
tl = tcap
pause = 0
rlast = now
tlast = now
save()
return 0
`)

/** One connection; each limiter's buckets are one hash under the prefix, named by its budget. */
export const layer = (options: RedisOptions): Layer.Layer<RateLimiterStore, RedisError | ConfigError> =>
  Layer.scoped(
    RateLimiterStore,
    Effect.map(connect(options, "RateLimiter"), (connection) => ({
      make: (spec: StoreSpec) =>
        Effect.sync(() => budgetStore(connection.commands(spec.provider), `${connection.prefix}ratelimit:${spec.name}`, spec))
    }))
  )

const budgetStore = (connection: Commands, key: string, { limits }: StoreSpec): Store => {
  const keys = [key]
  const config = [
    limits.requests.capacity,
    limits.requests.refillPerMs,
    limits.tokens?.capacity ?? 0,
    limits.tokens?.refillPerMs ?? 0
  ]
  const call = <A>(
    operation: string,
    lua: ReturnType<typeof script>,
    args: ReadonlyArray<string | number>,
    decode: (u: unknown) => A
  ): Effect.Effect<A, StoreUnavailableError> => connection.run(operation, (redis) => lua(redis, keys, [...config, ...args]).then(decode))
  const send = (operation: string, lua: ReturnType<typeof script>, args: ReadonlyArray<string | number>): Effect.Effect<void> =>
    connection.send(operation, (redis) => lua(redis, keys, [...config, ...args]))
  const unit = () => undefined
  const opt = (n: number | undefined) => (n === undefined ? "" : n)
  return {
    reserve: (r, t, failFast, ignorePause) =>
      call("ratelimit reserve", reserveLua, [r, t, failFast ? "1" : "0", ignorePause ? "1" : "0"], (u) => {
        const [waitMs, turnMs] = u as [number, number]
        return { waitMs: Number(waitMs), turnMs: Number(turnMs) }
      }),
    refund: (r, t) => send("ratelimit refund", refundLua, [r, t]),
    adjustTokens: (delta) => send("ratelimit settle", adjustLua, [delta]),
    learn: (learned: Learned) =>
      send("ratelimit observe", learnLua, [
        opt(learned.requestsRemaining),
        opt(learned.requestsLimit),
        opt(learned.tokensRemaining),
        opt(learned.tokensLimit),
        opt(learned.pauseMs),
        opt(learned.requestsRefillPerMs)
      ]),
    pausedFor: call("ratelimit pause", pausedLua, [], Number),
    status: call("ratelimit status", statusLua, [], (u): Status => {
      const [rl, rcap, tl, tcap, pause, now, rrate] = (u as Array<string>).map(Number) as [number, number, number, number, number, number, number]
      return {
        requests: { available: Math.max(0, rl), capacity: rcap, refillPerSecond: rrate * 1000 },
        tokens: limits.tokens === undefined
          ? undefined
          : { available: Math.max(0, tl), capacity: tcap, refillPerSecond: limits.tokens.refillPerMs * 1000 },
        pausedUntil: pause > now ? pause : undefined
      }
    }),
    reset: call("ratelimit reset", resetLua, [], unit)
  }
}
