/**
 * Redis.layerUsageMirror and Redis.layerUsage against the real redis-server and Redis
 * Cluster that test/setup/redis.ts starts. Two trackers over their own mirror layers on one
 * prefix are two processes: each snapshot reports both. (Four real processes: fleet.test.ts.)
 */
import { randomUUID } from "node:crypto"
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Either, Layer, Logger } from "effect"
import { Usage } from "../../src/index.js"
import * as Redis from "../../src/Redis.js"
import { redisServer } from "../support/redisServer.js"
import { announce, single, targets } from "./targets.js"

announce("the Redis.layerUsageMirror tests")

const trackerIn = (options: Redis.UsageMirrorOptions & Usage.Options) =>
  Effect.map(Layer.build(Redis.layerUsage(options)), Context.get(Usage.UsageTracker))

const usage = (inputTokens: number, outputTokens: number, cachedInputTokens?: number) => ({
  inputTokens,
  outputTokens,
  totalTokens: inputTokens + outputTokens,
  estimated: false,
  ...(cachedInputTokens === undefined ? {} : { cachedInputTokens })
})

for (const target of targets) describe.skipIf(!target.available)(`Redis.layerUsageMirror on ${target.name}`, () => {
  it.scopedLive("trackers on one prefix and name report the fleet's totals, per provider and model, with cost and cache reads", () =>
    Effect.gen(function* () {
      const options = { ...target.options, prefix: `t-${randomUUID()}:` }
      const a = yield* trackerIn(options)
      const b = yield* trackerIn(options)
      const elsewhere = yield* trackerIn({ ...options, name: "other" })
      yield* a.record("openai", "gpt-4o-mini", usage(1000, 500, 200))
      // a snapshot sends what its tracker holds first: a's record is in Redis before b's
      yield* a.snapshot
      yield* b.record("openai", "gpt-4o-mini", usage(2000, 100))
      yield* b.record("anthropic", "claude-sonnet-4", usage(10, 20))
      yield* b.record("local", "unpriced-model", { ...usage(1, 1), estimated: true })
      yield* elsewhere.record("openai", "gpt-4o", usage(5, 5))
      const fromB = yield* b.snapshot
      const fromA = yield* a.snapshot
      expect(fromA).toEqual(fromB)
      expect(fromA.entries.map((e) => `${e.provider}/${e.model}`)).toEqual([
        "openai/gpt-4o-mini",
        "anthropic/claude-sonnet-4",
        "local/unpriced-model"
      ])
      expect(fromA.entries[0]).toMatchObject({ requests: 2, inputTokens: 3000, outputTokens: 600, cachedInputTokens: 200, totalTokens: 3600 })
      // priced as each process priced it: gpt-4o-mini at $0.15/$0.60 per million, cached input at $0.075
      expect(fromA.entries[0]!.cost).toBeCloseTo((2800 * 0.15 + 200 * 0.075 + 600 * 0.6) / 1e6, 12)
      expect(fromA.total).toMatchObject({ requests: 4, estimatedRequests: 1, unpricedRequests: 1, totalTokens: 3632 })
      expect((yield* elsewhere.snapshot).total.requests).toBe(1)

      yield* a.reset
      expect((yield* b.snapshot).entries).toEqual([])
      yield* b.record("openai", "gpt-4o-mini", usage(1, 1))
      expect((yield* b.snapshot).total.requests).toBe(1)
      expect((yield* a.snapshot).total.requests).toBe(1)
    }))

  it.scopedLive("a tracker's records reach the mirror on their own, and before its layer closes", () =>
    Effect.gen(function* () {
      const options = { ...target.options, prefix: `t-${randomUUID()}:` }
      const reader = yield* trackerIn(options)
      yield* Effect.scoped(Effect.gen(function* () {
        const writer = yield* trackerIn(options)
        for (let i = 0; i < 50; i++) yield* writer.record("openai", "gpt-4o", usage(1, 1))
      }))
      expect((yield* reader.snapshot).total).toMatchObject({ requests: 50, totalTokens: 100 })
    }))
})

describe.skipIf(!single.available)("Redis.layerUsageMirror while Redis is down", () => {
  it.scopedLive("records made while Redis is frozen or down are sent once it is back, each counted once; snapshots fail typed meanwhile", () =>
    Effect.gen(function* () {
      const redis = yield* redisServer
      const options = { url: redis.url, prefix: "u:", commandTimeout: "300 millis" as const }
      const a = yield* trackerIn(options)
      const b = yield* trackerIn(options)
      yield* a.record("openai", "gpt-4o", usage(1, 1))
      yield* redis.freeze
      yield* redis.stopped
      // sent while frozen: Redis runs them when it wakes, and the batches are sent again
      for (let i = 0; i < 10; i++) yield* a.record("openai", "gpt-4o", usage(1, 1))
      const failed = yield* Effect.flip(b.snapshot)
      expect(failed).toMatchObject({ _tag: "StoreUnavailableError", store: "Usage", retryable: true })
      yield* Effect.sleep(800)
      for (let i = 0; i < 10; i++) yield* b.record("openai", "gpt-4o", usage(1, 1))
      yield* redis.thaw
      let snapshot = yield* Effect.either(b.snapshot)
      for (let i = 0; i < 40 && (Either.isLeft(snapshot) || snapshot.right.total.requests < 21); i++) {
        yield* Effect.sleep(100)
        snapshot = yield* Effect.either(b.snapshot)
      }
      yield* Effect.sleep(1200)
      expect((yield* a.snapshot).total).toMatchObject({ requests: 21, totalTokens: 42 })
    }).pipe(Effect.provide(Logger.remove(Logger.defaultLogger))), 30_000)
})
