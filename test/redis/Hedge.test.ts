/**
 * The latency-aware key choice over the Redis key pool store: the store leases the first key of
 * the order it is given that can serve, by the same rules of health and load as its plain take.
 */
import { randomUUID } from "node:crypto"
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Layer } from "effect"
import { KeyPool } from "../../src/index.js"
import * as Redis from "../../src/Redis.js"
import { announce, targets } from "./targets.js"

announce("the Redis key pool's preferred order")

for (const target of targets) describe.skipIf(!target.available)(`Redis key pool store, preferred order, on ${target.name}`, () => {
  it.scopedLive("takePreferring leases the first key of the order that can serve", () =>
    Effect.gen(function* () {
      const stores = Context.get(yield* Layer.build(Redis.layerKeyPoolStore({ ...target.options, prefix: `t-${randomUUID()}:` })), KeyPool.KeyPoolStore)
      const [a, b, c] = ["k1", "k2", "k3"].map(KeyPool.fingerprint)
      const store = yield* stores.make({
        providerId: "openai",
        keyIds: [a!, b!, c!],
        timings: { defaultCooldown: 10_000, quotaReset: 60_000, maxConcurrentPerKey: 1 }
      })
      expect(store.takePreferring).toBeDefined()
      const first = yield* store.takePreferring!([c!, a!, b!])
      expect(first).toMatchObject({ _tag: "Leased", keyId: c })
      // c is at its maximum: the next of the order
      const second = yield* store.takePreferring!([c!, a!, b!])
      expect(second).toMatchObject({ _tag: "Leased", keyId: a })
      // a cooling-down key is skipped as take skips it
      yield* store.report(b!, { _tag: "RateLimited" })
      expect(yield* store.takePreferring!([b!, c!, a!])).toEqual({ _tag: "Busy" })
      if (first._tag === "Leased") yield* store.release(first.keyId, first.leaseId)
      expect(yield* store.takePreferring!([b!, c!, a!])).toMatchObject({ _tag: "Leased", keyId: c })
    }))

  it.scopedLive("a pool with latency: true over Redis leases and releases", () =>
    Effect.gen(function* () {
      const pool = Context.get(
        yield* Layer.build(Redis.layerKeyPool({ ...target.options, prefix: `t-${randomUUID()}:`, providerId: "openai", keys: ["k1", "k2"], latency: true })),
        KeyPool.KeyPool
      )
      yield* Effect.scoped(Effect.flatMap(pool.acquire, (lease) => pool.observe!(lease)))
      const scores = yield* pool.scores!
      expect(scores.filter((s) => s.latencyMillis !== undefined)).toHaveLength(1)
      expect((yield* pool.status).every((s) => s.inFlight === 0)).toBe(true)
    }))
})
