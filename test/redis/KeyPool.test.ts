/**
 * Redis.layerKeyPool against the real redis-server and Redis Cluster that test/setup/redis.ts starts: one
 * pool for many processes, with leases that end with their TTL when a process dies.
 */
import { spawn } from "node:child_process"
import { randomUUID } from "node:crypto"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "@effect/vitest"
import { Context, Duration, Effect, Exit, Fiber, Layer, Scope } from "effect"
import { KeyPool } from "../../src/index.js"
import * as Redis from "../../src/Redis.js"
import { bundled } from "./bundle.js"
import { announce, targets } from "./targets.js"

announce("the Redis.layerKeyPool tests")

const worker = join(dirname(fileURLToPath(import.meta.url)), "limiter-worker.ts")
const fp = KeyPool.fingerprint

/** Builds a pool layer into this scope, as a separate process would. */
const poolIn = (options: Parameters<typeof Redis.layerKeyPool>[0]) =>
  Effect.map(Layer.build(Redis.layerKeyPool(options)), Context.get(KeyPool.KeyPool))

const byId = (status: ReadonlyArray<KeyPool.KeyStatus>) => new Map(status.map((s) => [s.keyId, s]))

for (const target of targets) describe.skipIf(!target.available)(`Redis.layerKeyPool on ${target.name}`, () => {
  it.scopedLive("pools on one Redis lease the least-loaded key across all of them", () =>
    Effect.gen(function* () {
      const options = { ...target.options, prefix: `t-${randomUUID()}:`, providerId: "openai", keys: ["k1", "k2", "k3"] }
      const a = yield* poolIn(options)
      const b = yield* poolIn(options)
      const scope = yield* Scope.make()
      const leases = [
        yield* Scope.extend(a.acquire, scope),
        yield* Scope.extend(b.acquire, scope),
        yield* Scope.extend(a.acquire, scope)
      ]
      expect(new Set(leases.map((l) => l.keyId)).size).toBe(3)
      // each process holds the keys themselves; Redis only sees fingerprints
      expect(leases.map((l) => l.key !== undefined)).toEqual([true, true, true])
      const fourth = yield* Scope.extend(b.acquire, scope)
      expect(fourth.keyId).toBe(leases[0]!.keyId)
      expect((yield* a.status).map((s) => s.inFlight).sort()).toEqual([1, 1, 2])
      yield* Scope.close(scope, Exit.void)
      expect((yield* b.status).every((s) => s.inFlight === 0)).toBe(true)
    }))

  it.scopedLive("a 429 seen by one process cools the key for all; 401 disables it for all", () =>
    Effect.gen(function* () {
      const options = { ...target.options, prefix: `t-${randomUUID()}:`, providerId: "openai", keys: ["k1", "k2"], quotaResetAfter: "1 hour" as const }
      const a = yield* poolIn(options)
      const b = yield* poolIn(options)
      yield* a.report(fp("k1"), { _tag: "RateLimited", retryAfter: Duration.millis(300) })
      expect(byId(yield* b.status).get(fp("k1"))!.state).toBe("coolingDown")
      for (let i = 0; i < 3; i++) expect((yield* Effect.scoped(b.acquire)).keyId).toBe(fp("k2"))
      yield* a.report(fp("k2"), { _tag: "Rejected", reason: "invalid_api_key" })
      const none = yield* Effect.flip(Effect.scoped(b.acquire).pipe(Effect.catchTag("StoreUnavailableError", Effect.die)))
      expect(none._tag).toBe("NoKeyAvailableError")
      expect(Duration.toMillis(none.retryAfter!)).toBeLessThanOrEqual(300)
      expect(yield* b.hasHealthyKey()).toBe(false)
      yield* Effect.sleep(350)
      // back half-open: a success heals it
      const lease = yield* Effect.scoped(b.acquire)
      expect(lease.keyId).toBe(fp("k1"))
      expect(byId(yield* a.status).get(fp("k1"))!.state).toBe("halfOpen")
      yield* b.report(fp("k1"), { _tag: "Success" })
      const status = byId(yield* a.status)
      expect(status.get(fp("k1"))).toMatchObject({ state: "healthy", successes: 1, failures: 1 })
      expect(status.get(fp("k2"))).toMatchObject({ state: "disabled", disabledReason: "invalid_api_key", disabledUntil: undefined })
      yield* a.report(fp("k1"), { _tag: "QuotaExceeded", reason: "insufficient_quota" })
      const k1 = byId(yield* b.status).get(fp("k1"))!
      expect(k1.state).toBe("disabled")
      expect(k1.disabledUntil! - Date.now()).toBeGreaterThan(3_500_000)
    }))

  it.scopedLive("maxConcurrentPerKey makes a process wait for a key another process frees", () =>
    Effect.gen(function* () {
      const options = { ...target.options, prefix: `t-${randomUUID()}:`, providerId: "openai", keys: ["k1"], maxConcurrentPerKey: 1 }
      const a = yield* poolIn(options)
      const b = yield* poolIn(options)
      const scope = yield* Scope.make()
      yield* Scope.extend(a.acquire, scope)
      const waiting = yield* Effect.fork(Effect.scoped(b.acquire))
      yield* Effect.sleep(200)
      expect(waiting.unsafePoll()).toBeNull()
      yield* Scope.close(scope, Exit.void)
      const lease = yield* Fiber.join(waiting).pipe(Effect.timeout("3 seconds"))
      expect(lease.keyId).toBe(fp("k1"))
    }))

  it.scopedLive("a long lease is renewed, and a crashed process's lease ends with its TTL", () =>
    Effect.gen(function* () {
      const prefix = `t-${randomUUID()}:`
      const options = { ...target.options, prefix, providerId: "openai", keys: ["k1", "k2"], leaseTtl: 1000 }
      const pool = yield* poolIn(options)
      // held here past its TTL: the renewal keeps it
      const scope = yield* Scope.make()
      const held = yield* Scope.extend(pool.acquire, scope)
      const script = yield* Effect.promise(() => bundled(worker))
      const child = spawn(process.execPath, [script, "hold"], {
        env: { ...process.env, ...target.env, PREFIX: prefix, LEASE_TTL_MS: "1000" },
        stdio: ["ignore", "pipe", "pipe"]
      })
      yield* Effect.addFinalizer(() => Effect.sync(() => child.kill("SIGKILL")))
      yield* Effect.async<void>((resume) => {
        let out = ""
        child.stdout.on("data", (d) => {
          out += d
          if (out.includes("leased")) resume(Effect.void)
        })
        child.on("exit", () => resume(Effect.void))
      }).pipe(Effect.timeout("50 seconds"))
      expect((yield* pool.status).map((s) => s.inFlight)).toEqual([1, 1])
      child.kill("SIGKILL")
      yield* Effect.sleep(1600)
      const status = byId(yield* pool.status)
      expect(status.get(held.keyId)!.inFlight).toBe(1)
      expect([...status.values()].reduce((n, s) => n + s.inFlight, 0)).toBe(1)
      yield* Scope.close(scope, Exit.void)
      expect((yield* pool.status).every((s) => s.inFlight === 0)).toBe(true)
    }), { timeout: 60_000 })
})
