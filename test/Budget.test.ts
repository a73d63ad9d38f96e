import { describe, expect, it } from "@effect/vitest"
import { Deferred, Duration, Effect, Fiber, Layer, Logger, Metric, Stream, TestClock, Tracer } from "effect"
import { Budget, ContextWindow, LlmError, KeyPool, LanguageModel, Message, OpenAiCompatible, RateLimiter, ResponseCache, Transport, Usage } from "../src/index.js"
import * as Testing from "../src/Testing.js"

const usage30 = { inputTokens: 20, outputTokens: 10, totalTokens: 30, estimated: false }

/** Runs `body` against a mock model (every answer uses 30 tokens) behind a budget; collects warnings. */
const withBudget = <A, E>(
  options: Budget.Options,
  body: (ctx: { requests: Effect.Effect<number>; status: Effect.Effect<Budget.Status, LlmError.StoreUnavailableError>; warnings: Array<string> }) => Effect.Effect<A, E, LanguageModel.LanguageModel>,
  model = "gpt-4o-mini"
) =>
  Effect.gen(function* () {
    const warnings: Array<string> = []
    const mock = yield* Testing.makeMockModel({ steps: [{ text: "ok", usage: usage30 }], provider: "openai", model })
    const controller = yield* Budget.make(options)
    const capture = Logger.add(Logger.make(({ logLevel, message }) => {
      if (logLevel.label === "WARN") warnings.push(Array.isArray(message) ? message.join(" ") : String(message))
    }))
    return yield* body({ requests: Effect.map(mock.requests, (r) => r.length), status: controller.status, warnings }).pipe(
      Effect.provide(Layer.merge(Layer.succeed(LanguageModel.LanguageModel, yield* controller.decorator(mock.service)), capture))
    )
  })

const hi = Message.request("hi") // estimated at 1 + 4 + 3 = 8 tokens

describe("Budget", () => {
  it("periods are UTC calendar hours, days and months", () => {
    const t = Date.UTC(2026, 10, 21, 13, 45, 12)
    expect(Budget.periodBounds("hour", t)).toEqual([Date.UTC(2026, 10, 21, 13), Date.UTC(2026, 10, 21, 14)])
    expect(Budget.periodBounds("day", t)).toEqual([Date.UTC(2026, 10, 21), Date.UTC(2026, 10, 22)])
    expect(Budget.periodBounds("month", t)).toEqual([Date.UTC(2026, 10, 1), Date.UTC(2026, 11, 1)])
    expect(Budget.periodBounds("month", Date.UTC(2026, 11, 31, 23))).toEqual([Date.UTC(2026, 11, 1), Date.UTC(2027, 0, 1)])
  })

  it.effect("warns once at the threshold, refuses before sending, and resets at the hour", () =>
    withBudget({ period: "hour", maxTokens: 95, warnAt: 0.8 }, ({ requests, status, warnings }) =>
      Effect.gen(function* () {
        const before = (yield* Metric.value(Budget.warnings)).count
        yield* LanguageModel.chat(hi)
        yield* LanguageModel.chat(hi)
        expect(warnings).toHaveLength(0) // 60 of 95
        yield* LanguageModel.chat(hi) // 90 of 95: crosses 80%
        expect(warnings).toHaveLength(1)
        expect(warnings[0]).toContain("95%")
        expect((yield* Metric.value(Budget.warnings)).count - before).toBe(1)

        yield* TestClock.adjust("10 minutes")
        const refused = yield* LanguageModel.chat(hi).pipe(Effect.flip)
        expect(refused._tag).toBe("BudgetExceededError")
        if (refused._tag !== "BudgetExceededError") return
        expect(refused).toMatchObject({ dimension: "tokens", limit: 95, spent: 90, requested: 8, retryable: false })
        expect(Duration.toMillis(refused.retryAfter!)).toBe(50 * 60_000)
        expect(yield* requests).toBe(3) // the refused request was never sent
        expect(warnings).toHaveLength(1) // still one warning

        yield* TestClock.adjust(Duration.subtract(refused.retryAfter!, Duration.millis(1)))
        expect((yield* LanguageModel.chat(hi).pipe(Effect.flip))._tag).toBe("BudgetExceededError")
        yield* TestClock.adjust("1 millis") // the next hour begins
        yield* LanguageModel.chat(hi)
        expect(yield* requests).toBe(4)
        const s = yield* status
        expect(s).toMatchObject({ tokens: 30, reservedTokens: 0, periodStart: 3_600_000, periodEnd: 7_200_000, warned: false })
        yield* LanguageModel.chat(hi)
        yield* LanguageModel.chat(hi)
        expect(warnings).toHaveLength(2) // a new period warns again
      })))

  it.effect("a cost budget prices requests, including maxTokens, and resets at midnight UTC", () =>
    withBudget(
      {
        period: "day",
        maxCost: 1,
        // $10k per million: 30 tokens cost $0.30
        prices: { "gpt-4o-mini": { inputPerMillion: 10_000, outputPerMillion: 10_000 } }
      },
      ({ status }) =>
        Effect.gen(function* () {
          yield* TestClock.setTime(Date.UTC(2026, 10, 21, 23, 0))
          yield* LanguageModel.chat(hi)
          yield* LanguageModel.chat(hi)
          yield* LanguageModel.chat(hi)
          expect((yield* status).cost).toBeCloseTo(0.9, 10)
          // 8 input + 100 output tokens at $0.01 each would exceed the dollar left
          const refused = yield* LanguageModel.chat(Message.request("hi", { maxTokens: 100 })).pipe(Effect.flip)
          expect(refused).toMatchObject({ _tag: "BudgetExceededError", dimension: "cost" })
          expect(refused.message).toContain("2026-11-22T00:00:00.000Z")
          yield* TestClock.setTime(Date.UTC(2026, 10, 22, 0, 0))
          yield* LanguageModel.chat(Message.request("hi", { maxTokens: 50 }))
          expect((yield* status).cost).toBeCloseTo(0.3, 10)
        })
    ))

  it.effect("a monthly budget resets on the first of the month", () =>
    withBudget({ period: "month", maxTokens: 35 }, ({ status }) =>
      Effect.gen(function* () {
        yield* TestClock.setTime(Date.UTC(2026, 0, 31, 23, 59))
        yield* LanguageModel.chat(hi)
        expect((yield* LanguageModel.chat(hi).pipe(Effect.flip))._tag).toBe("BudgetExceededError")
        yield* TestClock.setTime(Date.UTC(2026, 1, 1))
        yield* LanguageModel.chat(hi)
        expect((yield* status).periodStart).toBe(Date.UTC(2026, 1, 1))
        expect((yield* status).periodEnd).toBe(Date.UTC(2026, 2, 1))
      })))

  it.effect("requests in flight hold their estimate, so concurrent requests cannot overshoot", () =>
    Effect.gen(function* () {
      const gate = yield* Deferred.make<void>()
      const mock = yield* Testing.makeMockModel({ steps: [{ text: "ok", usage: usage30 }], provider: "openai", model: "m" })
      const controller = yield* Budget.make({ period: "day", maxTokens: 100 })
      const slow: LanguageModel.Service = { ...mock.service, chat: (r) => Effect.zipRight(Deferred.await(gate), mock.service.chat(r)) }
      const model = yield* controller.decorator(slow)
      const big = Message.request("hi", { maxTokens: 60 }) // 68 estimated
      const first = yield* Effect.fork(model.chat(big))
      yield* Effect.yieldNow()
      expect((yield* controller.status).reservedTokens).toBe(68)
      const second = yield* model.chat(big).pipe(Effect.flip)
      expect(second._tag).toBe("BudgetExceededError")
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.join(first)
      expect(yield* controller.status).toMatchObject({ tokens: 30, reservedTokens: 0 })
      // a failed or interrupted request gives its reservation back
      const failing = yield* controller.decorator({ ...mock.service, chat: () => Effect.never })
      const stuck = yield* Effect.fork(failing.chat(big))
      yield* Effect.yieldNow()
      expect((yield* controller.status).reservedTokens).toBe(68)
      yield* Fiber.interrupt(stuck)
      expect((yield* controller.status).reservedTokens).toBe(0)
    }))

  it.effect("streams count the usage of their Finish event", () =>
    withBudget({ period: "hour", maxTokens: 100 }, ({ status }) =>
      Effect.gen(function* () {
        const events = yield* Stream.runCollect(LanguageModel.stream(hi))
        expect(events.length).toBeGreaterThan(1)
        expect(yield* status).toMatchObject({ tokens: 30, reservedTokens: 0 })
      })))

  it.effect("the layer decorates the model below it", () =>
    Effect.gen(function* () {
      const stack = Budget.layer({ period: "day", maxTokens: 10 }).pipe(
        Layer.provide(Testing.mockModel([{ text: "ok", usage: usage30 }]))
      )
      const result = yield* Effect.gen(function* () {
        yield* LanguageModel.chat(hi)
        return yield* LanguageModel.chat(hi).pipe(Effect.flip)
      }).pipe(Effect.provide(stack))
      expect(result._tag).toBe("BudgetExceededError")
    }))

  it.effect("a Budget.chat span per request over a shared store, whose reservation is a round trip; none over the memory store", () =>
    Effect.gen(function* () {
      const names: Array<string> = []
      const tracer = Tracer.make({
        span: (name, parent, context, links, startTime, kind) => {
          names.push(name)
          return {
            _tag: "Span", name, spanId: String(names.length), traceId: "t", parent, context, status: { _tag: "Started", startTime },
            attributes: new Map(), links, sampled: true, kind,
            end: () => {}, attribute: () => {}, event: () => {}, addLinks: () => {}
          }
        },
        context: (f) => f()
      })
      // any store but the in-memory default counts as shared: here the memory rules behind another factory
      const shared: Budget.StoreFactory = { make: Budget.makeStoreMemory }
      for (const [stores, expected] of [[Budget.layerStoreMemory, 0], [Layer.succeed(Budget.BudgetStore, shared), 2]] as const) {
        names.length = 0
        const mock = yield* Testing.makeMockModel({ steps: [{ text: "ok", usage: usage30 }], provider: "openai", model: "m" })
        const controller = yield* Effect.provide(Budget.make({ period: "day", maxTokens: 1000 }), stores)
        const model = yield* controller.decorator(mock.service)
        yield* Effect.withTracer(Effect.zipRight(model.chat(hi), Stream.runDrain(model.stream(hi))), tracer)
        expect(names.filter((name) => name.startsWith("Budget.")).length).toBe(expected)
        expect((yield* controller.status).tokens).toBe(60)
      }
    }))
})

describe("a budgeted, cached stack (the README's)", () => {
  it.scoped("cache hits cost nothing; the budget and the usage tracker see only what reached the provider", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({ reply: { text: "Paris." } })
      const Model = ResponseCache.layer.pipe(
        Layer.provide(Budget.layer({ period: "day", maxTokens: 30, warnAt: 0.8 })),
        Layer.provide(ContextWindow.layer({ reserve: 1_000 })),
        Layer.provide(OpenAiCompatible.layer({ model: "gpt-4o-mini", baseUrl: fake.baseUrl, contextWindow: 128_000 })),
        Layer.provide(KeyPool.layer({ providerId: "openai", keys: ["k1"] })),
        Layer.provide(RateLimiter.unlimited),
        Layer.provideMerge(Usage.layer()),
        Layer.provideMerge(ResponseCache.layerMemory({ maxEntries: 1_000, ttl: "1 hour" })),
        Layer.provide(Transport.layerUndici)
      )
      yield* Effect.gen(function* () {
        const ask = (q: string) => LanguageModel.chat(Message.request(q))
        const first = yield* ask("What is the capital of France?")
        expect(first.text).toBe("Paris.")
        for (let i = 0; i < 5; i++) yield* ask("What is the capital of France?")
        expect(yield* ResponseCache.stats).toMatchObject({ hits: 5, misses: 1 })
        const spent = (yield* Usage.snapshot).total
        expect(spent.requests).toBe(1)
        expect(spent.totalTokens).toBe(first.usage.totalTokens)
        // two more distinct questions: the second would cross 30 tokens
        yield* ask("And of Spain?")
        const refused = yield* ask("And of Italy?").pipe(Effect.flip)
        expect(refused._tag).toBe("BudgetExceededError")
        expect((yield* Usage.snapshot).total.requests).toBe(2)
      }).pipe(Effect.provide(Model))
      expect(yield* Effect.map(fake.requests, (r) => r.length)).toBe(2)
    }))
})

describe("Budget's memory store (the rules of the Redis store, in one process)", () => {
  const hour = { start: 0, end: 3_600_000 }
  const spec = (over: Partial<Budget.StoreSpec> = {}): Budget.StoreSpec => ({
    name: "b",
    maxTokens: 100,
    maxCost: undefined,
    warnAt: 0.8,
    leaseTtlMillis: 1000,
    onWarning: () => Effect.void,
    ...over
  })

  it.effect("a reservation is a lease: it ends leaseTtl after it was taken or renewed, and gives its estimate back", () =>
    Effect.gen(function* () {
      const store = yield* Budget.makeStoreMemory(spec())
      expect(yield* store.reserve({ id: "a", period: hour, tokens: 60, cost: undefined, now: 0 })).toEqual({ _tag: "Reserved" })
      expect(yield* store.reserve({ id: "b", period: hour, tokens: 60, cost: undefined, now: 10 })).toMatchObject({
        _tag: "Refused",
        dimension: "tokens",
        spent: 60
      })
      yield* store.renew([{ id: "a", period: hour, tokens: 60, cost: 0 }], 900)
      expect((yield* store.status(hour, 1500)).reservedTokens).toBe(60)
      // its holder stopped renewing: the lease ends 1000 ms after the last renewal
      expect((yield* store.status(hour, 1900)).reservedTokens).toBe(0)
      expect(yield* store.reserve({ id: "b", period: hour, tokens: 60, cost: undefined, now: 1900 })).toEqual({ _tag: "Reserved" })
      // a holder that was only held up puts its reservation back: it is still in flight
      yield* store.renew([{ id: "a", period: hour, tokens: 60, cost: 0 }], 1950)
      expect((yield* store.status(hour, 1950)).reservedTokens).toBe(120)
    }))

  it.effect("a settlement is counted once per request id, however often it is sent, and is never put back by a late renewal", () =>
    Effect.gen(function* () {
      const store = yield* Budget.makeStoreMemory(spec())
      yield* store.reserve({ id: "a", period: hour, tokens: 40, cost: undefined, now: 0 })
      const settlement = { id: "a", period: hour, tokens: 30, cost: 0, now: 100 }
      yield* store.settle(settlement)
      yield* store.settle(settlement)
      yield* store.settle({ ...settlement, now: 500 })
      yield* store.renew([{ id: "a", period: hour, tokens: 40, cost: 0 }], 600)
      expect(yield* store.status(hour, 600)).toMatchObject({ tokens: 30, reservedTokens: 0 })
      // a settlement whose lease had already ended still counts: the request did spend
      yield* store.reserve({ id: "b", period: hour, tokens: 10, cost: undefined, now: 700 })
      yield* store.settle({ id: "b", period: hour, tokens: 12, cost: 0, now: 5000 })
      expect(yield* store.status(hour, 5000)).toMatchObject({ tokens: 42, reservedTokens: 0 })
    }))

  it.effect("a request is charged to the period that admitted it; the warning is given once, by the settlement that crosses warnAt", () =>
    Effect.gen(function* () {
      const warned: Array<number> = []
      const store = yield* Budget.makeStoreMemory(spec({ onWarning: (spent) => Effect.sync(() => warned.push(spent.tokens)) }))
      const next = { start: 3_600_000, end: 7_200_000 }
      yield* store.reserve({ id: "a", period: hour, tokens: 90, cost: undefined, now: 3_599_000 })
      yield* store.settle({ id: "a", period: hour, tokens: 85, cost: 0, now: 3_601_000 })
      expect((yield* store.status(hour, 3_601_000)).tokens).toBe(85)
      expect((yield* store.status(next, 3_601_000)).tokens).toBe(0)
      expect(warned).toEqual([85])
      yield* store.settle({ id: "b", period: hour, tokens: 5, cost: 0, now: 3_601_000 })
      expect(warned).toEqual([85])
    }))

  it.effect("a request longer than leaseTtl keeps its reservation: its holder renews it", () =>
    Effect.gen(function* () {
      const gate = yield* Deferred.make<void>()
      const mock = yield* Testing.makeMockModel({ steps: [{ text: "ok", usage: usage30 }], provider: "openai", model: "m" })
      const controller = yield* Budget.make({ period: "day", maxTokens: 100, leaseTtl: "3 seconds" })
      const model = yield* controller.decorator({ ...mock.service, chat: (r) => Effect.zipRight(Deferred.await(gate), mock.service.chat(r)) })
      const running = yield* Effect.fork(model.chat(Message.request("hi", { maxTokens: 60 })))
      yield* Effect.yieldNow()
      yield* TestClock.adjust("1 minute")
      expect((yield* controller.status).reservedTokens).toBe(68)
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.join(running)
      expect(yield* controller.status).toMatchObject({ tokens: 30, reservedTokens: 0 })
    }))

  it.live("under the live clock the renewing fiber's sleep keeps no finished process alive", () =>
    Effect.gen(function* () {
      const timers = () => process.getActiveResourcesInfo().filter((resource) => resource === "Timeout").length
      const gate = yield* Deferred.make<void>()
      const mock = yield* Testing.makeMockModel({ steps: [{ text: "ok", usage: usage30 }], provider: "openai", model: "m" })
      const controller = yield* Budget.make({ period: "day", maxTokens: 1000, leaseTtl: "30 seconds" })
      const model = yield* controller.decorator({ ...mock.service, chat: (r) => Effect.zipRight(Deferred.await(gate), mock.service.chat(r)) })
      const before = timers()
      const running = yield* Effect.fork(model.chat(Message.request("hi", { maxTokens: 60 })))
      // the request is in flight: the renewing fiber is asleep until its first round
      for (let i = 0; i < 3; i++) yield* Effect.yieldNow()
      expect((yield* controller.status).reservedTokens).toBe(68)
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.join(running)
      expect(timers()).toBe(before)
    }))

  it.effect("a leaseTtl that is not a positive duration is a ConfigError naming it", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(Budget.make({ period: "day", leaseTtl: 0 }))
      expect(error._op === "InvalidData" && error.path).toEqual(["leaseTtl"])
    }))
})
