/**
 * Redis outages under a whole stack (OpenAiCompatible over a FakeProvider, Redis.layerKeyPool,
 * Redis.layerRateLimiter), each test on a redis-server of its own: one killed for longer
 * than ioredis' old retry budget and restarted on the same port, one frozen with SIGSTOP.
 * Calls must fail fast with a typed, retryable StoreUnavailableError, admit nothing while
 * the store cannot answer, never outlive their deadline because of Redis, and recover
 * without rebuilding the layers.
 */
import { randomUUID } from "node:crypto"
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Either, Fiber, Layer, Logger, Option } from "effect"
import { inject } from "vitest"
import { KeyPool, LanguageModel, Message, OpenAiCompatible, RateLimiter, Transport } from "../../src/index.js"
import * as Redis from "../../src/Redis.js"
import * as Testing from "../../src/Testing.js"
import type { LlmError } from "../../src/LlmError.js"
import { redisServer } from "../support/redisServer.js"

const available = inject("redisUrl") !== ""
if (!available) console.warn("[redis] no redis-server: the Redis outage tests are skipped")

const stackOn = (url: string, baseUrl: string, timeout?: "3 seconds") => {
  const prefix = `t-${randomUUID()}:`
  return OpenAiCompatible.layer({ model: "gpt-4o-mini", baseUrl, provider: "openai", timeout }).pipe(
    Layer.provideMerge(Redis.layerKeyPool({ url, prefix, providerId: "openai", keys: ["sk-a", "sk-b"], leaseTtl: "2 seconds" })),
    Layer.provideMerge(Redis.layerRateLimiter({ url, prefix, provider: "openai", capacity: 100, refillPerSecond: 50 })),
    Layer.provide(Transport.layerUndici)
  )
}

const build = (url: string, baseUrl: string, timeout?: "3 seconds") =>
  Effect.map(Layer.build(stackOn(url, baseUrl, timeout)), (ctx) => ({
    model: Context.get(ctx, LanguageModel.LanguageModel),
    pool: Context.get(ctx, KeyPool.KeyPool),
    limiter: Context.get(ctx, RateLimiter.RateLimiter)
  }))

const request = { messages: [Message.user("hi")] }

/** The effect's result, and how long it took in wall-clock millis. */
const timed = <A, E>(effect: Effect.Effect<A, E>) =>
  Effect.suspend(() => {
    const started = Date.now()
    return Effect.map(Effect.either(effect), (result) => ({ result, ms: Date.now() - started }))
  })

/**
 * `timed`, where a call still running after `limitMs` fails the test there, by an assertion
 * that names it. The call is left to end in the background (`Effect.disconnect`): one stuck on
 * a frozen Redis with no timeout of its own may not even be interruptible, and waiting for it
 * would hang the test until the runner's timeout.
 */
const within = <A, E>(limitMs: number, what: string, effect: Effect.Effect<A, E>) =>
  Effect.map(Effect.timeoutOption(Effect.disconnect(timed(effect)), limitMs), (answered) => {
    expect(Option.isSome(answered), `${what}: no answer within ${limitMs} ms`).toBe(true)
    return (answered as Option.Some<{ readonly result: Either.Either<A, E>; readonly ms: number }>).value
  })

const expectUnavailable = (result: Either.Either<unknown, LlmError>, store: string) => {
  expect(Either.isLeft(result)).toBe(true)
  const error = (result as Either.Left<LlmError, unknown>).left
  // compared as plain data, so that a wrong error prints as a readable diff
  const { _tag, message, provider, retryable } = error
  expect({ _tag, store: (error as { readonly store?: string }).store, retryable, provider, message }).toEqual({
    _tag: "StoreUnavailableError",
    store,
    retryable: true,
    provider: "openai",
    message: expect.any(String)
  })
  return error
}

/** Retries `effect` every 200 ms until it succeeds or `within` millis pass. */
const eventually = <A, E>(effect: Effect.Effect<A, E>, within: number) =>
  Effect.suspend(() => {
    const until = Date.now() + within
    const loop: Effect.Effect<A, E> = Effect.catchAll(effect, (error) =>
      Date.now() > until ? Effect.fail(error) : Effect.zipRight(Effect.sleep(200), loop))
    return loop
  })

const leasesHeld = (pool: KeyPool.Service) =>
  Effect.map(pool.status, (keys) => keys.reduce((n, k) => n + k.inFlight, 0))

describe.skipIf(!available)("Redis outages", () => {
  it.scopedLive("a Redis down for 20 s fails calls fast and typed, admits nothing, and calls recover when it is back", () => {
    const logs: Array<{ readonly level: string; readonly message: string }> = []
    const logger = Logger.make(({ logLevel, message }) => {
      logs.push({ level: logLevel.label, message: (Array.isArray(message) ? message : [message]).map(String).join(" ") })
    })
    return Effect.gen(function* () {
      const redis = yield* redisServer
      const fake = yield* Testing.FakeProvider.make()
      const { limiter, model, pool } = yield* build(redis.url, fake.baseUrl)

      for (let i = 0; i < 3; i++) expect((yield* model.chat(request)).text.length).toBeGreaterThan(0)
      const sentBefore = (yield* fake.requests).length

      yield* redis.kill
      const down = Date.now()
      // longer than the old budget of 20 reconnect tries (~16 s), calling all along
      while (Date.now() - down < 20_000) {
        const { ms, result } = yield* timed(model.chat(request))
        expectUnavailable(result, "RateLimiter")
        expect(ms).toBeLessThan(1500)
        yield* Effect.sleep(1000)
      }
      // each part of the stack says so in its own terms, and none of them dies
      expectUnavailable(yield* Effect.either(Effect.scoped(pool.acquire)), "KeyPool")
      expectUnavailable(yield* Effect.either(pool.status), "KeyPool")
      expect(yield* pool.hasHealthyKey()).toBe(false)
      expectUnavailable(yield* Effect.either(limiter.admit({})), "RateLimiter")
      expectUnavailable(yield* Effect.either(limiter.status), "RateLimiter")
      // nothing was admitted while the store could not answer
      expect((yield* fake.requests).length).toBe(sentBefore)

      yield* redis.start
      const up = Date.now()
      yield* eventually(model.chat(request), 15_000)
      // the backoff is capped: the stack is back within a few of its longest waits
      expect(Date.now() - up).toBeLessThan(8000)
      for (let i = 0; i < 3; i++) expect((yield* model.chat(request)).text.length).toBeGreaterThan(0)
      expect(yield* leasesHeld(pool)).toBe(0)
      expect(yield* pool.hasHealthyKey()).toBe(true)

      // one warning per connection for the whole outage, and one line when it answers again
      const warnings = logs.filter((l) => l.level === "WARN")
      expect(warnings).toHaveLength(2)
      expect(warnings.map((w) => w.message).join("\n")).toMatch(/KeyPool[\s\S]*RateLimiter|RateLimiter[\s\S]*KeyPool/)
      expect(logs.filter((l) => l.level === "INFO" && /answers again/.test(l.message))).toHaveLength(2)
    }).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, logger)))
  }, 90_000)

  it.scopedLive("a frozen Redis holds no call past its deadline, and a lease taken before the freeze does not hold its call", () =>
    Effect.gen(function* () {
      const redis = yield* redisServer
      const fake = yield* Testing.FakeProvider.make()
      const { model, pool } = yield* build(redis.url, fake.baseUrl, "3 seconds")
      yield* model.chat(request)

      // leased and sent before the freeze; its reply comes during it
      yield* fake.setReply({ text: "slow", delayMs: 1500 })
      const inFlight = yield* Effect.fork(within(3000, "a call leased before the freeze", model.chat(request)))
      yield* eventually(Effect.filterOrFail(fake.requests, (r) => r.length === 2), 5000)
      yield* redis.freeze

      const before = yield* Fiber.join(inFlight)
      expect(Either.isRight(before.result)).toBe(true)
      expect(before.ms).toBeLessThan(3000)

      // each bound is the deadline the call must keep: without the Redis command timeouts the
      // assertion fails there, within seconds, with the redis-server released all the same
      yield* fake.setReply({ text: "fast" })
      const during = yield* within(3000 + 1500, "a call during the freeze", model.chat(request))
      expectUnavailable(during.result, "RateLimiter")
      expect(during.ms).toBeLessThan(3000 + 1500)

      const status = yield* within(3000, "KeyPool status during the freeze", pool.status)
      expectUnavailable(status.result, "KeyPool")
      expect(status.ms).toBeLessThan(3000)
      const healthy = yield* within(3000, "hasHealthyKey during the freeze", pool.hasHealthyKey())
      expect(healthy.result).toEqual(Either.right(false))
      expect(healthy.ms).toBeLessThan(3000)

      yield* redis.thaw
      yield* eventually(model.chat(request), 10_000)
      // the releases sent during the freeze ran when Redis woke: nothing is left held
      yield* eventually(Effect.filterOrFail(leasesHeld(pool), (n) => n === 0), 5000)
    }), 90_000)
})
