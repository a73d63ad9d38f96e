/**
 * The circuit breaker's store in Redis (`Redis.layerCircuitBreakerStore`): one breaker per
 * endpoint for every process that uses the same prefix. The state machine of
 * `internal/circuitBreaker.ts`, as Lua over one hash per endpoint (`{breaker:<endpoint>}`):
 * `state`, `consecutive`, the window of recent outcomes as a string of `0`/`1` (`ring`,
 * `next`, `fails`), `openedAt`, and the half-open probe (`probe`, a ticket, held until
 * `probeUntil`, so that a prober that died frees the slot). Timed by the Redis server's
 * clock. Every call reads Redis (one round trip to admit), so failures that open the
 * breaker in one process close the door for all at their next call.
 *
 * During an outage each process decides alone, with a breaker in memory fed with the
 * outcomes it has seen (`onUnavailable: "local"`, the default), or fails the call with
 * `StoreUnavailableError` (`"fail"`). Outcomes are bookkeeping, dropped when they fail.
 */
import { randomUUID } from "node:crypto"
import type { ConfigError } from "effect/ConfigError"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { type Admission, CircuitBreakerStore, type Snapshot, type State, type Store, type StoreSpec } from "../../CircuitBreaker.js"
import type { StoreUnavailableError } from "../../LlmError.js"
import type { CircuitBreakerStoreOptions } from "../../Redis.js"
import { Machine } from "../circuitBreaker.js"
import { type Connection, connect, luaNow, script, slot } from "./connection.js"
import type { RedisError } from "./options.js"

// ARGV: cooldown ms, ticket, probe lease ms. Returns {"allowed"}, {"probe", transition} or
// {"rejected", retry-after ms, transition}.
const admitLua = script(`${luaNow}
local key = KEYS[1]
local f = redis.call("HMGET", key, "state", "openedAt", "probe", "probeUntil")
local state = f[1] or "closed"
if state == "closed" then return { "allowed" } end
local moved = ""
if state == "open" then
  local retryAt = tonumber(f[2]) + tonumber(ARGV[1])
  if now < retryAt then return { "rejected", tostring(math.ceil(retryAt - now)), "" } end
  state = "halfOpen"
  moved = "halfOpen"
  redis.call("HSET", key, "state", "halfOpen")
end
if f[3] and f[3] ~= "" and (tonumber(f[4]) or 0) > now then return { "rejected", "0", moved } end
redis.call("HSET", key, "probe", ARGV[2], "probeUntil", now + tonumber(ARGV[3]))
return { "probe", moved }
`)

// ARGV: ticket ("" when not a probe), outcome, consecutive failures, failure rate, window
// size, minimum requests. Returns the state it moved to, or "".
const settleLua = script(`${luaNow}
local key = KEYS[1]
local f = redis.call("HMGET", key, "state", "consecutive", "ring", "next", "fails", "probe")
local state = f[1] or "closed"
local outcome = ARGV[2]
local probe = ARGV[1] ~= "" and f[6] == ARGV[1]
if probe then redis.call("HDEL", key, "probe", "probeUntil") end
if outcome == "ignore" then return "" end
if probe and state == "halfOpen" then
  if outcome == "success" then
    redis.call("HSET", key, "state", "closed", "consecutive", 0, "ring", "", "next", 0, "fails", 0)
    redis.call("HDEL", key, "openedAt")
    return "closed"
  end
  redis.call("HSET", key, "state", "open", "openedAt", now)
  return "open"
end
if state ~= "closed" then return "" end
local failed = outcome == "failure"
local ring, nxt, fails = f[3] or "", tonumber(f[4]) or 0, tonumber(f[5]) or 0
local size = tonumber(ARGV[5])
local mark = failed and "1" or "0"
if #ring < size then
  ring = ring .. mark
else
  if string.sub(ring, nxt + 1, nxt + 1) == "1" then fails = fails - 1 end
  ring = string.sub(ring, 1, nxt) .. mark .. string.sub(ring, nxt + 2)
  nxt = (nxt + 1) % size
end
if failed then fails = fails + 1 end
local consecutive = failed and (tonumber(f[2]) or 0) + 1 or 0
redis.call("HSET", key, "consecutive", consecutive, "ring", ring, "next", nxt, "fails", fails, "state", "closed")
if consecutive >= tonumber(ARGV[3]) or (#ring >= tonumber(ARGV[6]) and fails / #ring >= tonumber(ARGV[4])) then
  redis.call("HSET", key, "state", "open", "openedAt", now)
  return "open"
end
return ""
`)

// ARGV: cooldown ms. The snapshot, as strings, and the server time.
const statusLua = script(`${luaNow}
local f = redis.call("HMGET", KEYS[1], "state", "consecutive", "ring", "fails", "openedAt")
return { f[1] or "closed", f[2] or "0", tostring(#(f[3] or "")), f[4] or "0", f[5] or "", tostring(now) }
`)

/** One connection for every breaker built over it. */
export const layer = (options: CircuitBreakerStoreOptions): Layer.Layer<CircuitBreakerStore, RedisError | ConfigError> =>
  Layer.scoped(
    CircuitBreakerStore,
    Effect.map(connect(options, "CircuitBreaker"), (connection) => ({
      make: (spec: StoreSpec) =>
        Effect.sync(() =>
          breakerStore(
            connection,
            spec,
            Math.max(1, Math.round(Duration.toMillis(options.probeTtl ?? "1 minute"))),
            options.onUnavailable ?? "local"
          )
        )
    }))
  )

const breakerStore = (connection: Connection, spec: StoreSpec, probeTtl: number, onUnavailable: "local" | "fail"): Store => {
  const commands = connection.commands(spec.endpoint)
  const key = slot(connection.prefix, "breaker", spec.endpoint)
  const { settings } = spec
  // this process's own view, for when Redis cannot answer
  const changed: Array<State> = []
  const local = new Machine(settings, (to) => changed.push(to))
  const reportLocal = Effect.suspend(() =>
    changed.length === 0 ? Effect.void : Effect.forEach(changed.splice(0), spec.onTransition, { discard: true })
  )
  const reportMoved = (to: string) => (to === "" ? Effect.void : spec.onTransition(to as State))
  // during a known outage, ask Redis again at most this often rather than on every call
  let lastTry = 0
  const retryEvery = 1000

  const admitLocal = (now: number) =>
    Effect.suspend(() => {
      const admission = local.admit(now)
      return Effect.as(reportLocal, admission._tag === "Allowed" ? { ...admission, ticket: "local" } : admission)
    })

  const admit = (now: number): Effect.Effect<Admission, StoreUnavailableError> =>
    Effect.suspend(() => {
      if (connection.isDown() && Date.now() - lastTry < retryEvery && onUnavailable === "local") return admitLocal(now)
      lastTry = Date.now()
      const ticket = randomUUID()
      const asked = commands.run("breaker admit", (redis) => admitLua(redis, [key], [settings.cooldownMillis, ticket, probeTtl])).pipe(
        Effect.flatMap((answer): Effect.Effect<Admission> => {
          const [kind, a, b] = answer as [string, string?, string?]
          if (kind === "allowed") return Effect.succeed({ _tag: "Allowed", probe: false })
          if (kind === "probe") return Effect.as(reportMoved(a ?? ""), { _tag: "Allowed", probe: true, ticket })
          return Effect.as(reportMoved(b ?? ""), { _tag: "Rejected", retryAfterMillis: Number(a) })
        })
      )
      return onUnavailable === "local" ? Effect.catchAll(asked, () => admitLocal(now)) : asked
    })

  const settle = (admission: Extract<Admission, { readonly _tag: "Allowed" }>, outcome: "success" | "failure" | "ignore", now: number) =>
    Effect.suspend(() => {
      if (admission.ticket === "local") {
        local.settle(now, admission.probe, outcome)
        return reportLocal
      }
      // fed in the shadow of Redis: its transitions are not the fleet's, and are not reported
      local.settle(now, false, outcome)
      changed.length = 0
      return commands.send(
          "breaker settle",
          (redis) =>
            settleLua(redis, [key], [
              admission.probe ? admission.ticket ?? "" : "",
              outcome,
              settings.consecutiveFailures,
              settings.failureRate,
              settings.windowSize,
              settings.minimumRequests
            ]),
          (moved) => reportMoved(String(moved ?? ""))
        )
    })

  const status = (now: number): Effect.Effect<Snapshot> =>
    commands.run("breaker status", (redis) => statusLua(redis, [key], [])).pipe(
      Effect.map((answer): Snapshot => {
        const [state, consecutive, count, fails, openedAt, serverNow] = answer as Array<string>
        const opened = openedAt === "" ? undefined : Number(openedAt)
        const clock = Number(serverNow)
        const retryAt = state === "open" && opened !== undefined ? opened + settings.cooldownMillis : undefined
        const n = Number(count)
        return {
          state: retryAt !== undefined && clock >= retryAt ? "halfOpen" : state as State,
          consecutiveFailures: Number(consecutive),
          failureRate: n === 0 ? 0 : Number(fails) / n,
          requestsInWindow: n,
          openedAt: state === "closed" ? undefined : opened,
          retryAt: retryAt !== undefined && clock < retryAt ? retryAt : undefined
        }
      }),
      // what this process has seen, while Redis cannot say
      Effect.orElse(() => Effect.sync(() => local.snapshot(now)))
    )

  return { admit, settle, status }
}
