import { describe, expect, it } from "@effect/vitest"
import { ConfigError, Duration, Effect, Either, Exit, Scope, TestClock } from "effect"
import { Health, Transport } from "../src/index.js"
import * as Testing from "../src/Testing.js"

describe("Health", () => {
  it.scoped("a failuresToDisconnect below 1 is a typed ConfigError naming it", () =>
    Effect.gen(function* () {
      const made = yield* Effect.either(Health.make({ failuresToDisconnect: 0 }))
      expect(Either.isLeft(made)).toBe(true)
      expect((made as Either.Left<ConfigError.ConfigError, unknown>).left).toMatchObject({ _op: "InvalidData", path: ["failuresToDisconnect"] })
    }))

  it.scoped("probes on its interval and reports connected, slow, disconnected, then recovers on its own", () =>
    Effect.gen(function* () {
      let mode: "ok" | "slow" | "down" = "ok"
      const probe = Effect.suspend(() =>
        mode === "ok" ? Effect.sleep("20 millis") : mode === "slow" ? Effect.sleep("3 seconds") : Effect.fail("refused"))
      const health = yield* Health.make({ interval: "30 seconds", slowThreshold: "2 seconds", timeout: "5 seconds", endpoints: [{ name: "x", probe }] })
      expect((yield* health.get("x"))?.status).toBe("unknown")
      yield* TestClock.adjust("20 millis")
      expect(yield* health.get("x")).toMatchObject({ status: "connected", consecutiveFailures: 0 })
      expect((yield* health.status).map((s) => s.name)).toEqual(["x"])

      mode = "down"
      yield* TestClock.adjust("30 seconds")
      expect(yield* health.get("x")).toMatchObject({ status: "disconnected", consecutiveFailures: 1, lastError: "refused" })

      mode = "slow"
      yield* TestClock.adjust("30 seconds")
      yield* TestClock.adjust("3 seconds")
      const slow = yield* health.get("x")
      expect(slow?.status).toBe("slow")
      expect(slow?.latency === undefined ? undefined : Duration.toMillis(slow.latency)).toBe(3000)

      mode = "ok"
      yield* TestClock.adjust("30 seconds")
      expect((yield* health.get("x"))?.status).toBe("connected")
    }))

  it.scoped("a probe that never answers fails at its timeout", () =>
    Effect.gen(function* () {
      const health = yield* Health.make({ timeout: "1 second", failuresToDisconnect: 2, endpoints: [{ name: "hang", probe: Effect.never }] })
      yield* TestClock.adjust("1 second")
      expect(yield* health.get("hang")).toMatchObject({ status: "unknown", consecutiveFailures: 1 })
      yield* TestClock.adjust("30 seconds")
      yield* TestClock.adjust("1 second")
      expect(yield* health.get("hang")).toMatchObject({ status: "disconnected", consecutiveFailures: 2 })
      expect((yield* health.get("hang"))?.lastError).toMatch(/no answer within 1s/)
    }))

  it.scoped("stops probing an endpoint when its registration scope closes, and the fiber with the layer", () =>
    Effect.gen(function* () {
      let probes = 0
      let kept = 0
      const layerScope = yield* Scope.make()
      const health = yield* Health.make({ interval: "1 second" }).pipe(Scope.extend(layerScope))
      yield* health.register({ name: "kept", probe: Effect.sync(() => kept++) }).pipe(Scope.extend(layerScope))
      const registration = yield* Scope.make()
      yield* health.register({ name: "tmp", probe: Effect.sync(() => probes++) }).pipe(Scope.extend(registration))
      // registered, it is probed at once and then on every interval
      yield* TestClock.adjust("3 seconds")
      expect(probes).toBeGreaterThanOrEqual(3)
      yield* Scope.close(registration, Exit.void)
      const atClose = probes
      yield* TestClock.adjust("5 seconds")
      expect(probes).toBe(atClose)
      expect((yield* health.status).map((s) => s.name)).toEqual(["kept"])
      // the other endpoint is still probed, until the layer's scope closes
      const keptBefore = kept
      yield* TestClock.adjust("2 seconds")
      expect(kept).toBeGreaterThan(keptBefore)
      yield* Scope.close(layerScope, Exit.void)
      const keptAtClose = kept
      yield* TestClock.adjust("5 seconds")
      expect(kept).toBe(keptAtClose)
    }))

  it.live("probeHttp: any answer below 500 is reachable, 5xx and refused connections are not", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({ faults: [{ _tag: "Status", status: 503 }] })
      const down = yield* Health.probeHttp(`${fake.url}/v1/models`)
      expect((yield* Effect.either(down))._tag).toBe("Left")
      expect((yield* Effect.either(down))._tag).toBe("Right") // the fake's 404 for an unknown path
      const refused = yield* Health.probeHttp("http://127.0.0.1:1/")
      expect((yield* Effect.either(refused))._tag).toBe("Left")
    }).pipe(Effect.scoped, Effect.provide(Transport.layerUndici)))
})
