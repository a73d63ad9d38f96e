import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Logger, TestClock } from "effect"
import { intervalMs, reportedOf } from "../../../../src/internal/providers/openaiChat/openrouterKey.js"
import { Budget, KeyPool, LanguageModel, Message, OpenAiCompatible, RateLimiter, Transport } from "../../../../src/index.js"
import * as Testing from "../../../../src/Testing.js"

describe("OpenRouter key endpoint", () => {
  it("reads intervals and the key's data; an unexpected reply is a message, not a reading", () => {
    expect([intervalMs("10s"), intervalMs("1m"), intervalMs("1h"), intervalMs("500ms"), intervalMs("ten"), intervalMs("")]).toEqual([
      10_000, 60_000, 3_600_000, 500, undefined, undefined
    ])
    const body = JSON.stringify({ data: { limit: 10, usage: 2.5, limit_remaining: 7.5, rate_limit: { requests: 200, interval: "10s" }, label: "x" } })
    expect(reportedOf(body, 42)).toEqual({
      source: "openrouter GET /key",
      at: 42,
      requests: { limit: 200, intervalMs: 10_000 },
      credit: { limit: 10, remaining: 7.5, used: 2.5 }
    })
    // no limit, no rate: nothing to learn but the usage
    expect(reportedOf(JSON.stringify({ data: { limit: null, usage: 1, limit_remaining: null } }), 0)).toMatchObject({
      requests: undefined,
      credit: { limit: undefined, remaining: undefined, used: 1 }
    })
    expect(reportedOf("{\"data\": {\"usage\": \"lots\"}}", 0)).toContain("usage")
    expect(reportedOf("<html>", 0)).toEqual(expect.any(String))
  })

  it.scoped("feeds the rate to the limiter and the credit to the budget at start and then periodically; a request the credit cannot pay fails before sending", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({
        openRouterKey: { limit: 10, usage: 9.999, limit_remaining: 0.001, rate_limit: { requests: 60, interval: "1m" } }
      })
      const budget = yield* Budget.make({ period: "month", prices: { "openai/gpt-4o": { inputPerMillion: 2.5, outputPerMillion: 10 } } })
      const base = Layer.mergeAll(
        KeyPool.layer({ providerId: "openrouter", keys: ["sk-or-key-1"] }),
        RateLimiter.layer({ requestsPerMinute: 600 }),
        Transport.layerUndici
      )
      const model = OpenAiCompatible.layer({ model: "openai/gpt-4o", baseUrl: fake.baseUrl, provider: "openrouter" })
      // one build: the model, the key reader and the test share the base layer's pool and limiter
      const stack = Layer.mergeAll(
        Layer.provide(model, base),
        OpenAiCompatible.layerOpenRouterLimits({ baseUrl: fake.baseUrl, budget, every: "5 minutes" }).pipe(Layer.provide(base))
      )

      yield* Effect.gen(function* () {
        const status = yield* RateLimiter.status
        expect(status.reported).toMatchObject({ source: "openrouter GET /key", requests: { limit: 60, intervalMs: 60_000 } })
        expect((yield* budget.status).credit).toEqual({ remaining: 0.001, spentSince: 0, source: "openrouter GET /key" })
        const budgeted = yield* budget.decorator(yield* LanguageModel.LanguageModel)
        const refused = yield* Effect.flip(budgeted.chat(Message.request("a question that costs more than a tenth of a cent", { maxTokens: 200 })))
        expect(refused).toMatchObject({ _tag: "BudgetExceededError", dimension: "credit", limit: 0.001 })
        expect((yield* fake.requests).filter((r) => r.method === "POST")).toHaveLength(0)

        yield* fake.setOpenRouterKey({ limit: 10, usage: 1, limit_remaining: 9, rate_limit: { requests: 30, interval: "1m" } })
        yield* TestClock.adjust("5 minutes")
        // the reading is a real HTTP call: wait for it in real time, a bounded number of times
        for (let i = 0; i < 200 && (yield* budget.status).credit?.remaining !== 9; i++) {
          yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 10)))
        }
        expect((yield* budget.status).credit?.remaining).toBe(9)
        const answered = yield* budgeted.chat(Message.request("now it can pay", { maxTokens: 200 }))
        expect(answered.text.length).toBeGreaterThan(0)
        expect((yield* RateLimiter.status).reported?.requests).toEqual({ limit: 30, intervalMs: 60_000 })
      }).pipe(Effect.provide(Layer.merge(stack, base)))
    }))

  it.scoped("the limiter's request bucket is lowered to the reported rate, never raised", () =>
    Effect.gen(function* () {
      const limiter = yield* RateLimiter.make({ requestsPerMinute: 600 })
      yield* limiter.learnLimits({ source: "test", at: 0, requests: { limit: 60, intervalMs: 60_000 } })
      expect((yield* limiter.status).requests).toMatchObject({ capacity: 60, refillPerSecond: 1 })
      yield* limiter.learnLimits({ source: "test", at: 1, requests: { limit: 6000, intervalMs: 1_000 } })
      expect((yield* limiter.status).requests).toMatchObject({ capacity: 60, refillPerSecond: 1 })
      expect((yield* limiter.status).reported?.at).toBe(1)
    }))

  it.scoped("a key endpoint that cannot be reached is logged without the key, and the layer still builds", () =>
    Effect.gen(function* () {
      const logs: Array<string> = []
      const base = Layer.mergeAll(
        KeyPool.layer({ providerId: "openrouter", keys: ["sk-or-secret-key"] }),
        RateLimiter.layer({ requestsPerMinute: 600 }),
        Transport.layerUndici
      )
      yield* Effect.gen(function* () {
        expect((yield* RateLimiter.status).reported).toBeUndefined()
      }).pipe(
        Effect.provide(Layer.merge(OpenAiCompatible.layerOpenRouterLimits({ baseUrl: "http://127.0.0.1:1/api/v1" }).pipe(Layer.provide(base)), base)),
        Effect.provide(Logger.replace(Logger.defaultLogger, Logger.make(({ message }) => void logs.push(JSON.stringify(message)))))
      )
      expect(logs.some((l) => l.includes("OpenRouter key endpoint"))).toBe(true)
      expect(logs.join("\n")).not.toContain("sk-or-secret-key")
    }))
})
