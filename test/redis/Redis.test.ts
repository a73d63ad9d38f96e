/**
 * `effect-llm/Redis`: its store layers under the services' own `layer`s, and its service
 * layers, against the real redis-server that test/setup/redis.ts starts; and the main entry,
 * which never loads ioredis.
 */
import { randomUUID } from "node:crypto"
import { describe, expect, it } from "@effect/vitest"
import { ConfigError, Context, Effect, Either, Exit, Layer, Scope } from "effect"
import { KeyPool, LanguageModel, Message, RateLimiter, ResponseCache } from "../../src/index.js"
import * as Redis from "../../src/Redis.js"
import { announce, targets } from "./targets.js"
import { loadedPackages, src } from "../support/loadedPackages.js"

announce("the effect-llm/Redis store tests")

const fp = KeyPool.fingerprint

for (const target of targets) describe.skipIf(!target.available)(`effect-llm/Redis stores on ${target.name}`, () => {
  it.scopedLive("one KeyPoolStore serves pools of several providers; a second store on the prefix (another process) sees the same pools", () =>
    Effect.gen(function* () {
      const prefix = `t-${randomUUID()}:`
      const [here, there] = yield* Effect.all([
        Layer.build(Redis.layerKeyPoolStore({ ...target.options, prefix })),
        Layer.build(Redis.layerKeyPoolStore({ ...target.options, prefix }))
      ])
      const poolOver = (store: Context.Context<KeyPool.KeyPoolStore>, providerId: string, keys: Array<string>) =>
        KeyPool.make({ providerId, keys }).pipe(Effect.provide(store))
      const openai = yield* poolOver(here, "openai", ["k1", "k2"])
      const anthropic = yield* poolOver(here, "anthropic", ["k1"])
      const openaiThere = yield* poolOver(there, "openai", ["k1", "k2"])
      const scope = yield* Scope.make()
      const first = yield* Scope.extend(openai.acquire, scope)
      // the other process leases the other key: it sees this one's lease
      expect((yield* Scope.extend(openaiThere.acquire, scope)).keyId).not.toBe(first.keyId)
      expect((yield* openaiThere.status).map((s) => s.inFlight)).toEqual([1, 1])
      // another provider's pool on the same store is its own
      expect((yield* anthropic.status)).toMatchObject([{ keyId: fp("k1"), inFlight: 0 }])
      yield* Scope.close(scope, Exit.void)
      expect((yield* openai.status).every((s) => s.inFlight === 0)).toBe(true)
      // Redis.layerKeyPool is the same pool as KeyPool.layer over the store
      const viaLayerKeyPool = yield* Effect.map(
        Layer.build(Redis.layerKeyPool({ ...target.options, prefix, providerId: "openai", keys: ["k1", "k2"] })),
        Context.get(KeyPool.KeyPool)
      )
      yield* viaLayerKeyPool.report(fp("k2"), { _tag: "Rejected", reason: "invalid_api_key" })
      expect((yield* openai.status).find((s) => s.keyId === fp("k2"))!.state).toBe("disabled")
    }))

  it.scopedLive("one KeyPoolStore renews the leases of all its pools, each pool's in one script (its keys' slot)", () =>
    Effect.gen(function* () {
      const store = yield* Layer.build(Redis.layerKeyPoolStore({ ...target.options, prefix: `t-${randomUUID()}:`, leaseTtl: 1000 }))
      const pools = yield* Effect.forEach(["openai", "anthropic", "gemini"], (providerId) =>
        KeyPool.make({ providerId, keys: ["k1", "k2"] }).pipe(Effect.provide(store)))
      const scope = yield* Scope.make()
      yield* Effect.forEach(pools, (pool) => Scope.extend(pool.acquire, scope))
      yield* Effect.sleep(1700)
      // past the lease's TTL: held still, renewed every third of it
      expect(yield* Effect.forEach(pools, (pool) => Effect.map(pool.status, (keys) => keys.reduce((n, k) => n + k.inFlight, 0)))).toEqual([1, 1, 1])
      yield* Scope.close(scope, Exit.void)
    }))

  it.scopedLive("one RateLimiterStore serves limiters of several budgets, each shared by name", () =>
    Effect.gen(function* () {
      const prefix = `t-${randomUUID()}:`
      const store = yield* Layer.build(Redis.layerRateLimiterStore({ ...target.options, prefix }))
      const limiter = (name: string) =>
        RateLimiter.make({ capacity: 2, refillPerSecond: 0.01, onExceeded: "fail", name }).pipe(Effect.provide(store))
      const [a, aAgain, b] = yield* Effect.all([limiter("a"), limiter("a"), limiter("b")])
      yield* a.admit({ requests: 2 })
      expect((yield* Effect.flip(aAgain.admit({ requests: 1 })))._tag).toBe("RateLimitExceededError")
      yield* b.admit({ requests: 2 })
      const viaLayerRateLimiter = yield* Effect.map(
        Layer.build(Redis.layerRateLimiter({ ...target.options, prefix, capacity: 2, refillPerSecond: 0.01, name: "b" })),
        Context.get(RateLimiter.RateLimiter)
      )
      expect((yield* viaLayerRateLimiter.status).requests!.available).toBeLessThan(0.1)
    }))

  it.scopedLive("Redis.layerResponseCacheStore and Redis.layerResponseCache on one prefix are one cache", () =>
    Effect.gen(function* () {
      const options = { ...target.options, prefix: `t-${randomUUID()}:`, ttl: "1 hour" as const }
      let calls = 0
      const model = LanguageModel.make({
        provider: "p",
        model: "m",
        chat: () =>
          Effect.sync(() => {
            calls++
            return {
              id: "r",
              model: "m",
              provider: "p",
              text: `answer ${calls}`,
              toolCalls: [],
              finishReason: "stop" as const,
              usage: { inputTokens: 1, outputTokens: 1, totalTokens: 2, estimated: false }
            }
          }),
        stream: () => {
          throw new Error("not used")
        }
      })
      const one = yield* Layer.build(Redis.layerResponseCacheStore(options)).pipe(
        Effect.flatMap((context) => ResponseCache.decorator()(model).pipe(Effect.provide(context)))
      )
      // the decorator over its store in one layer, with the store in its output
      const two = yield* Layer.build(Redis.layerResponseCache(options).pipe(Layer.provide(LanguageModel.layer(model))))
      expect((yield* one.chat(Message.request("hi"))).text).toBe("answer 1")
      expect((yield* Context.get(two, LanguageModel.LanguageModel).chat(Message.request("hi"))).text).toBe("answer 1")
      expect(calls).toBe(1)
      expect(yield* ResponseCache.stats.pipe(Effect.provide(two))).toMatchObject({ hits: 1, misses: 0 })
    }))
})

describe("effect-llm/Redis options", () => {
  it.scoped("a commandTimeout that is not a positive duration fails every layer with a ConfigError naming it", () =>
    Effect.gen(function* () {
      const url = "redis://127.0.0.1:1/0"
      const builds: ReadonlyArray<Effect.Effect<unknown, unknown, Scope.Scope>> = [
        Layer.build(Redis.layerKeyPoolStore({ url, commandTimeout: 0 })),
        Layer.build(Redis.layerRateLimiterStore({ url, commandTimeout: -1 })),
        Layer.build(Redis.layerResponseCacheStore({ url, ttl: "1 hour", commandTimeout: "0 millis" })),
        Layer.build(Redis.layerKeyPool({ url, commandTimeout: 0, providerId: "p", keys: ["k"] })),
        Layer.build(Redis.layerBudgetStore({ url, commandTimeout: 0 })),
        Layer.build(Redis.layerCircuitBreakerStore({ url, commandTimeout: 0 })),
        Layer.build(Redis.layerUsageMirror({ url, commandTimeout: 0 }))
      ]
      for (const build of builds) {
        const built = yield* Effect.either(build)
        expect(Either.isLeft(built)).toBe(true)
        const error = (built as Either.Left<unknown, unknown>).left
        expect(ConfigError.isConfigError(error) && error._op === "InvalidData" && error.path).toEqual(["commandTimeout"])
      }
      // a prefix whose hash tag is empty would scatter a script's keys over a cluster's slots
      for (const build of [
        Layer.build(Redis.layerBudgetStore({ url, prefix: "app{}:" })) as Effect.Effect<unknown, unknown, Scope.Scope>,
        Layer.build(Redis.layerResponseCacheStore({ url, prefix: "{}", ttl: "1 hour" }))
      ]) {
        const built = yield* Effect.either(build)
        const error = Either.isLeft(built) ? built.left : undefined
        expect(ConfigError.isConfigError(error) && error._op === "InvalidData" && error.path).toEqual(["prefix"])
      }
      // a cluster needs nodes, each a redis:// url
      for (const cluster of [[], ["http://127.0.0.1:7000"]]) {
        const built = yield* Effect.either(Layer.build(Redis.layerUsageMirror({ cluster })))
        expect(Either.isLeft(built) && (built.left as { readonly _tag?: string })._tag).toBe("RedisError")
      }
      // the store that never fails on an outage says so in its type, and fails only on its options
      const cache: Layer.Layer<ResponseCache.ResponseCacheStore, ConfigError.ConfigError> = Redis.layerResponseCacheStore({ url, ttl: "1 hour" })
      void cache
    }))
})

describe("the main entry and ioredis", () => {
  it("import('effect-llm') loads neither ioredis, nor the CLI's packages, nor @effect/platform-node's index; effect-llm/Redis loads ioredis", async () => {
    const stages = await loadedPackages(`
mark("import")
await import(${JSON.stringify(src("index.ts"))})
const { Effect, Layer } = await import("effect")
mark("redis")
const Redis = await import(${JSON.stringify(src("Redis.ts"))})
const layers = [
  Redis.layerKeyPool({ url: "redis://127.0.0.1:1/0", providerId: "p", keys: ["k"] }),
  Redis.layerRateLimiter({ url: "redis://127.0.0.1:1/0", capacity: 1, refillPerSecond: 1 }),
  Redis.layerResponseCacheStore({ url: "redis://127.0.0.1:1/0", ttl: "1 hour", commandTimeout: "50 millis" })
]
mark("build")
// nothing listens on port 1: the layers fail (or, the cache, serve misses), after loading ioredis
const exit = await Effect.runPromise(Effect.exit(Effect.scoped(Layer.build(layers[0]))))
if (exit._tag !== "Failure") throw new Error("expected a RedisError")
`)
    const atImport = stages.get("import") ?? []
    expect(atImport).toContain("effect")
    for (const heavy of ["ioredis", "gpt-tokenizer", "@effect/cli", "cli-progress", "@effect/cluster", "@effect/rpc", "@effect/sql"]) {
      expect(atImport, `${heavy} loaded by import("effect-llm")`).not.toContain(heavy)
    }
    expect(atImport).toContain("@effect/platform-node/dist/esm/NodeHttpClient.js")
    expect(atImport).not.toContain("@effect/platform-node/dist/esm/index.js")
    expect(stages.get("redis")).toContain("ioredis")
  }, 60_000)
})
