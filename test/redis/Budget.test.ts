/**
 * Redis.layerBudgetStore and Redis.layerBudget against the real redis-server and Redis
 * Cluster that test/setup/redis.ts starts. Two store layers on one prefix are two processes:
 * one budget, reserved atomically, leases that end with their TTL, settlements counted once.
 * (Four real processes: fleet.test.ts.)
 */
import { randomUUID } from "node:crypto"
import { describe, expect, it } from "@effect/vitest"
import { Context, Deferred, Effect, Either, Fiber, Layer, Logger } from "effect"
import { Budget, LanguageModel, Message } from "../../src/index.js"
import * as Redis from "../../src/Redis.js"
import * as Testing from "../../src/Testing.js"
import { redisServer } from "../support/redisServer.js"
import { announce, single, targets } from "./targets.js"

announce("the Redis.layerBudgetStore tests")

const usage = (totalTokens: number) => ({ inputTokens: totalTokens, outputTokens: 0, totalTokens, estimated: false })

/** A store built into this scope from its own layer: another process, as far as Redis can tell. */
const storeIn = (options: Redis.BudgetStoreOptions) =>
  Effect.map(Layer.build(Redis.layerBudgetStore(options)), Context.get(Budget.BudgetStore))

const hour = () => {
  const [start, end] = Budget.periodBounds("hour", Date.now())
  return { start, end }
}

const spec = (over: Partial<Budget.StoreSpec> = {}): Budget.StoreSpec => ({
  name: "b",
  maxTokens: 100,
  maxCost: undefined,
  warnAt: 0.8,
  leaseTtlMillis: 60_000,
  onWarning: () => Effect.void,
  ...over
})

for (const target of targets) describe.skipIf(!target.available)(`Redis.layerBudgetStore on ${target.name}`, () => {
  it.scopedLive("two processes on one prefix and name draw on one budget, each reservation checked and taken in one step", () =>
    Effect.gen(function* () {
      const options = { ...target.options, prefix: `t-${randomUUID()}:` }
      const gate = yield* Deferred.make<void>()
      const sent: Array<string> = []
      const slow = Effect.map(Testing.makeMockModel({ steps: [{ text: "ok", usage: usage(10) }], provider: "openai", model: "m" }), (mock) => ({
        ...mock.service,
        chat: (request: Message.ChatRequest) =>
          Effect.zipRight(Effect.zipRight(Effect.sync(() => sent.push("x")), Deferred.await(gate)), mock.service.chat(request))
      }))
      const budgetIn = Effect.flatMap(storeIn(options), (store) =>
        Budget.make({ period: "hour", maxTokens: 100, leaseTtl: "10 seconds" }).pipe(Effect.provideService(Budget.BudgetStore, store)))
      const [a, b] = yield* Effect.all([budgetIn, budgetIn])
      const [modelA, modelB] = yield* Effect.all([Effect.flatMap(slow, a.decorator), Effect.flatMap(slow, b.decorator)])
      // each request is estimated at 8 + 22 = 30 tokens: three fit in 100, from either process
      const request = Message.request("hi", { maxTokens: 22 })
      const calls = yield* Effect.forEach([modelA, modelB, modelA, modelB, modelA, modelB], (model) =>
        Effect.fork(Effect.either(model.chat(request))), { concurrency: "unbounded" })
      yield* Effect.sleep(300)
      expect(sent).toHaveLength(3)
      expect(yield* b.status).toMatchObject({ tokens: 0, reservedTokens: 90 })
      yield* Deferred.succeed(gate, undefined)
      const results = yield* Effect.forEach(calls, Fiber.join)
      expect(results.filter(Either.isRight)).toHaveLength(3)
      expect(results.filter(Either.isLeft).map((r) => (r as Either.Left<{ _tag: string }, unknown>).left._tag)).toEqual([
        "BudgetExceededError",
        "BudgetExceededError",
        "BudgetExceededError"
      ])
      expect(yield* a.status).toMatchObject({ tokens: 30, reservedTokens: 0, cost: 0, reservedCost: 0 })
    }))

  it.scopedLive("a reservation whose holder stops renewing ends with its lease, and the budget gets it back", () =>
    Effect.gen(function* () {
      const options = { ...target.options, prefix: `t-${randomUUID()}:` }
      const dead = yield* Effect.flatMap(storeIn(options), (s) => s.make(spec({ leaseTtlMillis: 400 })))
      const alive = yield* Effect.flatMap(storeIn(options), (s) => s.make(spec({ leaseTtlMillis: 400 })))
      const period = hour()
      expect(yield* dead.reserve({ id: "d1", period, tokens: 70, cost: undefined, now: Date.now() })).toEqual({ _tag: "Reserved" })
      expect(yield* alive.reserve({ id: "a1", period, tokens: 20, cost: undefined, now: Date.now() })).toEqual({ _tag: "Reserved" })
      expect((yield* alive.reserve({ id: "a2", period, tokens: 20, cost: undefined, now: Date.now() }))._tag).toBe("Refused")
      // the live holder renews its own reservation; the dead one does not
      for (let i = 0; i < 4; i++) {
        yield* Effect.sleep(150)
        yield* alive.renew([{ id: "a1", period, tokens: 20, cost: 0 }], Date.now())
      }
      expect(yield* alive.status(period, Date.now())).toMatchObject({ reservedTokens: 20 })
      expect(yield* alive.reserve({ id: "a2", period, tokens: 70, cost: undefined, now: Date.now() })).toEqual({ _tag: "Reserved" })
    }))

  it.scopedLive("a settlement sent again (its answer lost) counts once; a late renewal never puts a settled reservation back", () =>
    Effect.gen(function* () {
      const options = { ...target.options, prefix: `t-${randomUUID()}:` }
      const store = yield* Effect.flatMap(storeIn(options), (s) => s.make(spec()))
      const other = yield* Effect.flatMap(storeIn(options), (s) => s.make(spec()))
      const period = hour()
      yield* store.reserve({ id: "r1", period, tokens: 40, cost: 0.5, now: Date.now() })
      const settlement = { id: "r1", period, tokens: 35, cost: 0.25, now: Date.now() }
      yield* store.settle(settlement)
      yield* store.settle(settlement)
      yield* other.settle(settlement)
      yield* store.renew([{ id: "r1", period, tokens: 40, cost: 0.5 }], Date.now())
      expect(yield* other.status(period, Date.now())).toMatchObject({ tokens: 35, cost: 0.25, reservedTokens: 0, reservedCost: 0 })
    }))

  it.scopedLive("the warning is given once per period across processes; the credit one process reads holds for all", () =>
    Effect.gen(function* () {
      const options = { ...target.options, prefix: `t-${randomUUID()}:` }
      const warned: Array<string> = []
      const on = (who: string) => spec({ maxCost: 1, onWarning: () => Effect.sync(() => warned.push(who)) })
      const a = yield* Effect.flatMap(storeIn(options), (s) => s.make(on("a")))
      const b = yield* Effect.flatMap(storeIn(options), (s) => s.make(on("b")))
      const period = hour()
      yield* a.settle({ id: "1", period, tokens: 50, cost: 0.1, now: Date.now() })
      yield* b.settle({ id: "2", period, tokens: 35, cost: 0.1, now: Date.now() })
      yield* a.settle({ id: "3", period, tokens: 10, cost: 0.1, now: Date.now() })
      expect(warned).toEqual(["b"])
      expect((yield* a.status(period, Date.now())).warned).toBe(true)

      yield* a.setCredit({ remaining: 0.5, source: "openrouter GET /key" })
      yield* Effect.sleep(50)
      yield* b.settle({ id: "4", period, tokens: 1, cost: 0.25, now: Date.now() })
      const refused = yield* b.reserve({ id: "5", period, tokens: 1, cost: 0.3, now: Date.now() })
      expect(refused).toEqual({ _tag: "Refused", dimension: "credit", limit: 0.5, spent: 0.25, source: "openrouter GET /key" })
      expect((yield* a.status(period, Date.now())).credit).toEqual({ remaining: 0.5, spentSince: 0.25, source: "openrouter GET /key" })
    }))

  it.scopedLive("Redis.layerBudget is Budget.layer over the store", () =>
    Effect.gen(function* () {
      const options = { ...target.options, prefix: `t-${randomUUID()}:`, period: "day" as const, maxTokens: 50 }
      const mock = Testing.mockModel([{ text: "ok", usage: usage(30) }])
      const first = Context.get(yield* Layer.build(Redis.layerBudget(options).pipe(Layer.provide(mock))), LanguageModel.LanguageModel)
      const second = Context.get(yield* Layer.build(Redis.layerBudget(options).pipe(Layer.provide(mock))), LanguageModel.LanguageModel)
      yield* first.chat(Message.request("hi"))
      expect((yield* Effect.flip(second.chat(Message.request("hi", { maxTokens: 20 }))))._tag).toBe("BudgetExceededError")
    }))
})

describe.skipIf(!single.available)("Redis.layerBudgetStore while Redis is down", () => {
  const modelOf = (sent: Array<number>) =>
    Effect.map(Testing.makeMockModel({ steps: [{ text: "ok", usage: usage(10) }], provider: "openai", model: "m" }), (mock) => ({
      ...mock.service,
      chat: (request: Message.ChatRequest) => Effect.zipRight(Effect.sync(() => sent.push(Date.now())), mock.service.chat(request))
    }))

  it.scopedLive("fails closed with a retryable StoreUnavailableError, sends nothing, and recovers with no restart; failOpen sends", () =>
    Effect.gen(function* () {
      const redis = yield* redisServer
      const sent: Array<number> = []
      const options = { url: redis.url, prefix: "b:", commandTimeout: "300 millis" as const }
      const closed = yield* Effect.flatMap(storeIn(options), (store) =>
        Budget.make({ period: "hour", maxTokens: 1000 }).pipe(Effect.provideService(Budget.BudgetStore, store)))
      const open = yield* Effect.flatMap(storeIn({ ...options, failOpen: true }), (store) =>
        Budget.make({ period: "hour", maxTokens: 1000 }).pipe(Effect.provideService(Budget.BudgetStore, store)))
      const modelClosed = yield* Effect.flatMap(modelOf(sent), closed.decorator)
      const modelOpen = yield* Effect.flatMap(modelOf(sent), open.decorator)
      yield* modelClosed.chat(Message.request("hi"))
      yield* redis.freeze
      yield* redis.stopped
      const started = Date.now()
      const refused = yield* Effect.flip(modelClosed.chat(Message.request("hi")))
      expect(Date.now() - started).toBeLessThan(1500)
      expect(refused).toMatchObject({ _tag: "StoreUnavailableError", store: "Budget", retryable: true })
      expect(sent).toHaveLength(1)
      expect((yield* Effect.flip(closed.status))._tag).toBe("StoreUnavailableError")
      // fail open: sent, and recorded once Redis answers again
      yield* modelOpen.chat(Message.request("hi"))
      expect(sent).toHaveLength(2)
      yield* redis.thaw
      let status = yield* Effect.either(closed.status)
      for (let i = 0; i < 40 && (Either.isLeft(status) || status.right.tokens < 20); i++) {
        yield* Effect.sleep(100)
        status = yield* Effect.either(closed.status)
      }
      expect(status).toMatchObject({ right: { tokens: 20, reservedTokens: 0 } })
      yield* modelClosed.chat(Message.request("hi"))
      expect(sent).toHaveLength(3)
    }).pipe(Effect.provide(Logger.remove(Logger.defaultLogger))), 30_000)
})
