/**
 * Redis.layerCircuitBreakerStore and Redis.layerCircuitBreaker against the real redis-server
 * and Redis Cluster that test/setup/redis.ts starts. Two store layers on one prefix are two
 * processes: failures one sees open the breaker for the other, one probe between them.
 * (Four real processes: fleet.test.ts.)
 */
import { randomUUID } from "node:crypto"
import { describe, expect, it } from "@effect/vitest"
import { Context, Deferred, Effect, Either, Fiber, Layer, Logger } from "effect"
import { CircuitBreaker, LanguageModel, LlmError, Message } from "../../src/index.js"
import * as Redis from "../../src/Redis.js"
import * as Testing from "../../src/Testing.js"
import { redisServer } from "../support/redisServer.js"
import { announce, single, targets } from "./targets.js"

announce("the Redis.layerCircuitBreakerStore tests")

const serverError = new LlmError.ServerError({ provider: "p", model: "m", status: 503, message: "down" })

/** A model whose next answers are set by `failing`; counts what reached it. */
const switchable = Effect.gen(function* () {
  let failing = false
  let calls = 0
  const gate = { current: undefined as Deferred.Deferred<void> | undefined }
  const mock = yield* Testing.makeMockModel({ steps: ["ok"], provider: "p", model: "m" })
  const service: LanguageModel.Service = {
    ...mock.service,
    chat: (request) =>
      Effect.suspend(() => {
        calls++
        const wait = gate.current === undefined ? Effect.void : Deferred.await(gate.current)
        return Effect.zipRight(wait, failing ? Effect.fail(serverError) : mock.service.chat(request))
      })
  }
  return {
    service,
    fail: (on: boolean) => Effect.sync(() => void (failing = on)),
    calls: () => calls,
    gate
  }
})

/** A breaker over its own store layer: another process, as far as Redis can tell. */
const breakerIn = (options: Redis.CircuitBreakerStoreOptions, settings: CircuitBreaker.Options) =>
  Effect.flatMap(Layer.build(Redis.layerCircuitBreakerStore(options)), (context) =>
    CircuitBreaker.make({ ...settings, provider: "p", model: "m" }).pipe(
      Effect.provideService(CircuitBreaker.CircuitBreakerStore, Context.get(context, CircuitBreaker.CircuitBreakerStore))
    ))

const request = Message.request("hi")

for (const target of targets) describe.skipIf(!target.available)(`Redis.layerCircuitBreakerStore on ${target.name}`, () => {
  it.scopedLive("failures one process sees open the breaker for another at its next call; after the cooldown one probe closes it for both", () =>
    Effect.gen(function* () {
      const options = { ...target.options, prefix: `t-${randomUUID()}:` }
      const settings = { consecutiveFailures: 3, cooldown: "400 millis" as const }
      const a = yield* breakerIn(options, settings)
      const b = yield* breakerIn(options, settings)
      const upstream = yield* switchable
      const [modelA, modelB] = yield* Effect.all([a.decorator(upstream.service), b.decorator(upstream.service)])
      yield* modelB.chat(request)
      yield* upstream.fail(true)
      for (let i = 0; i < 3; i++) expect((yield* Effect.flip(modelA.chat(request)))._tag).toBe("ServerError")
      // B saw none of the failures: its very next call is refused without reaching the model
      const before = upstream.calls()
      const refused = yield* Effect.flip(modelB.chat(request))
      expect(refused._tag).toBe("CircuitOpenError")
      expect(upstream.calls()).toBe(before)
      expect((yield* b.status).state).toBe("open")

      yield* Effect.sleep(450)
      yield* upstream.fail(false)
      expect((yield* modelB.chat(request)).text).toBe("ok")
      expect((yield* a.status).state).toBe("closed")
      expect((yield* modelA.chat(request)).text).toBe("ok")
    }))

  it.scopedLive("half-open, exactly one probe runs across processes; its failure opens the breaker again for all", () =>
    Effect.gen(function* () {
      const options = { ...target.options, prefix: `t-${randomUUID()}:` }
      const settings = { consecutiveFailures: 1, cooldown: "300 millis" as const }
      const breakers = yield* Effect.all([breakerIn(options, settings), breakerIn(options, settings), breakerIn(options, settings)])
      const upstream = yield* switchable
      const models = yield* Effect.forEach(breakers, (breaker) => breaker.decorator(upstream.service))
      yield* upstream.fail(true)
      yield* Effect.flip(models[0]!.chat(request))
      yield* Effect.sleep(350)
      upstream.gate.current = yield* Deferred.make<void>()
      const before = upstream.calls()
      const calls = yield* Effect.forEach([0, 1, 2, 0, 1, 2, 0, 1, 2], (i) => Effect.fork(Effect.either(models[i]!.chat(request))), {
        concurrency: "unbounded"
      })
      yield* Effect.sleep(200)
      expect(upstream.calls() - before).toBe(1)
      yield* Deferred.succeed(upstream.gate.current, undefined)
      upstream.gate.current = undefined
      const results = yield* Effect.forEach(calls, Fiber.join)
      const tags = results.map((r) => (Either.isLeft(r) ? r.left._tag : "ok"))
      expect(tags.filter((t) => t === "ServerError")).toHaveLength(1)
      expect(tags.filter((t) => t === "CircuitOpenError")).toHaveLength(8)
      expect((yield* breakers[2]!.status).state).toBe("open")
    }))

  it.scopedLive("a probe whose process died frees the fleet's probe slot after probeTtl", () =>
    Effect.gen(function* () {
      const options = { ...target.options, prefix: `t-${randomUUID()}:`, probeTtl: "300 millis" as const }
      const stores = yield* Effect.all([
        Layer.build(Redis.layerCircuitBreakerStore(options)),
        Layer.build(Redis.layerCircuitBreakerStore(options))
      ])
      const spec = (to: Array<string>): CircuitBreaker.StoreSpec => ({
        endpoint: "p/m",
        settings: { consecutiveFailures: 1, failureRate: 0.5, windowSize: 20, minimumRequests: 10, cooldownMillis: 100 },
        onTransition: (state) => Effect.sync(() => void to.push(state))
      })
      const seen: Array<string> = []
      const dying = yield* Context.get(stores[0], CircuitBreaker.CircuitBreakerStore).make(spec(seen))
      const other = yield* Context.get(stores[1], CircuitBreaker.CircuitBreakerStore).make(spec([]))
      const first = yield* dying.admit(Date.now())
      expect(first).toEqual({ _tag: "Allowed", probe: false })
      yield* dying.settle(first as Extract<CircuitBreaker.Admission, { _tag: "Allowed" }>, "failure", Date.now())
      expect(seen).toEqual(["open"])
      yield* Effect.sleep(150)
      // this probe's holder never settles it
      expect(yield* dying.admit(Date.now())).toMatchObject({ _tag: "Allowed", probe: true })
      expect(yield* other.admit(Date.now())).toEqual({ _tag: "Rejected", retryAfterMillis: 0 })
      yield* Effect.sleep(350)
      expect(yield* other.admit(Date.now())).toMatchObject({ _tag: "Allowed", probe: true })
    }))

  it.scopedLive("Redis.layerCircuitBreaker is CircuitBreaker.layer over the store", () =>
    Effect.gen(function* () {
      const options = { ...target.options, prefix: `t-${randomUUID()}:`, consecutiveFailures: 1, cooldown: "1 minute" as const }
      const upstream = yield* switchable
      const stack = Redis.layerCircuitBreaker(options).pipe(Layer.provide(LanguageModel.layer(upstream.service)))
      const one = Context.get(yield* Layer.build(stack), LanguageModel.LanguageModel)
      const two = Context.get(yield* Layer.build(stack), LanguageModel.LanguageModel)
      yield* upstream.fail(true)
      yield* Effect.flip(one.chat(request))
      expect((yield* Effect.flip(two.chat(request)))._tag).toBe("CircuitOpenError")
    }))
})

describe.skipIf(!single.available)("Redis.layerCircuitBreakerStore while Redis is down", () => {
  it.scopedLive("each process decides alone with what it saw (onUnavailable: local), or fails typed (fail); it shares again once Redis is back", () =>
    Effect.gen(function* () {
      const redis = yield* redisServer
      const options = { url: redis.url, prefix: "cb:", commandTimeout: "300 millis" as const }
      const settings = { consecutiveFailures: 2, cooldown: "1 minute" as const }
      const local = yield* breakerIn(options, settings)
      const failing = yield* breakerIn({ ...options, onUnavailable: "fail" }, settings)
      const upstream = yield* switchable
      const model = yield* local.decorator(upstream.service)
      const strict = yield* failing.decorator(upstream.service)
      yield* model.chat(request)
      yield* redis.kill
      const started = Date.now()
      expect((yield* model.chat(request)).text).toBe("ok")
      expect(Date.now() - started).toBeLessThan(1000)
      expect(yield* Effect.flip(strict.chat(request))).toMatchObject({ _tag: "StoreUnavailableError", store: "CircuitBreaker", retryable: true })
      // the local breaker opens on the failures this process sees
      yield* upstream.fail(true)
      yield* Effect.flip(model.chat(request))
      yield* Effect.flip(model.chat(request))
      expect((yield* Effect.flip(model.chat(request)))._tag).toBe("CircuitOpenError")
      expect((yield* local.status).state).toBe("open")
      yield* redis.start
      yield* upstream.fail(false)
      // Redis (restarted empty) knows no failure: once it answers, calls go again
      let answer = yield* Effect.either(strict.chat(request))
      for (let i = 0; i < 50 && Either.isLeft(answer); i++) {
        yield* Effect.sleep(100)
        answer = yield* Effect.either(strict.chat(request))
      }
      expect(Either.isRight(answer)).toBe(true)
    }).pipe(Effect.provide(Logger.remove(Logger.defaultLogger))), 30_000)
})
