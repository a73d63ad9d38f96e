import { describe, expect, it } from "@effect/vitest"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientError from "@effect/platform/HttpClientError"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import { Cause, ConfigError, Duration, Effect, Layer, Logger, TestClock } from "effect"
import { reportedOf } from "../../../../src/internal/providers/openaiChat/openrouterKey.js"
import { Budget, KeyPool, LanguageModel, Message, OpenAiCompatible, RateLimiter, Transport } from "../../../../src/index.js"
import * as Testing from "../../../../src/Testing.js"

describe("OpenRouter key endpoint", () => {
  it("reads the key's credit; an unexpected reply is a message, not a reading", () => {
    const body = JSON.stringify({ data: { limit: 10, usage: 2.5, limit_remaining: 7.5, rate_limit: { requests: 200, interval: "10s" }, label: "x" } })
    expect(reportedOf(body, 42)).toEqual({
      reported: { source: "openrouter GET /key", at: 42, credit: { limit: 10, remaining: 7.5, used: 2.5 } },
      remaining: 7.5,
      ignored: []
    })
    // no limit: nothing to learn but the usage
    expect(reportedOf(JSON.stringify({ data: { limit: null, usage: 1, limit_remaining: null } }), 0)).toMatchObject({
      reported: { credit: { limit: undefined, remaining: undefined, used: 1 } }
    })
    expect(reportedOf("{\"data\": {\"usage\": \"lots\"}}", 0)).toMatchObject({ ignored: ["usage"] })
    expect(reportedOf("<html>", 0)).toEqual(expect.any(String))
  })

  it.scoped("feeds the credit to the limiter's report and the budget at start and then periodically, never the deprecated rate; a request the credit cannot pay fails before sending", () =>
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
        expect(status.reported).toMatchObject({ source: "openrouter GET /key", credit: { limit: 10, remaining: 0.001, used: 9.999 } })
        expect(status.reported?.requests).toBeUndefined()
        expect(status.requests).toMatchObject({ capacity: 600, refillPerSecond: 10 })
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
        expect((yield* RateLimiter.status).reported?.credit).toEqual({ limit: 10, remaining: 9, used: 1 })
        expect((yield* RateLimiter.status).requests).toMatchObject({ capacity: 600, refillPerSecond: 10 })
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

// ---------------------------------------------------------------------------
// A hostile key endpoint, through an in-memory HttpClient
// ---------------------------------------------------------------------------

const SECRET = "sk-or-v1-0123456789abcdef-secret"

/** An HttpClient whose every answer is `answer`'s, given the request's Authorization header. */
const keyEndpoint = (answer: (authorization: string) => Response | HttpClientError.HttpClientError) => {
  let calls = 0
  const client = HttpClient.make((request) =>
    Effect.suspend(() => {
      calls++
      const answered = answer(request.headers.authorization ?? "")
      return answered instanceof Response
        ? Effect.succeed(HttpClientResponse.fromWeb(request, answered))
        : Effect.fail(answered)
    })
  )
  return { layer: Layer.succeed(HttpClient.HttpClient, client), calls: () => calls }
}

const jsonResponse = (body: unknown) => new Response(JSON.stringify(body), { status: 200, headers: { "content-type": "application/json" } })

/** Everything logged, message and cause, as text. */
const capturedLogs = () => {
  const lines: Array<string> = []
  const logger = Logger.replace(
    Logger.defaultLogger,
    Logger.make(({ cause, message }) => void lines.push(`${JSON.stringify(message)} ${Cause.pretty(cause)}`))
  )
  return { lines, logger }
}

/** Reads the key endpoint once (the layer's first reading) over `http`, and hands back what the limiter and budget then say. */
const readOnce = (http: Layer.Layer<HttpClient.HttpClient>, options: { readonly budget?: Budget.Controller; readonly requestsPerMinute?: number } = {}) => {
  const base = Layer.mergeAll(
    KeyPool.layer({ providerId: "openrouter", keys: [SECRET] }),
    RateLimiter.layer({ requestsPerMinute: options.requestsPerMinute ?? 6000 }),
    http
  )
  return Effect.scoped(Effect.gen(function* () {
    yield* Layer.build(OpenAiCompatible.layerOpenRouterLimits({ baseUrl: "http://openrouter.test/api/v1", budget: options.budget }))
    return yield* RateLimiter.status
  }).pipe(Effect.provide(base)))
}

describe("OpenRouter key endpoint, hostile replies", () => {
  it.scoped("a reply whose fields echo the Authorization header is logged without the key or the header", () =>
    Effect.gen(function* () {
      const { lines, logger } = capturedLogs()
      const endpoint = keyEndpoint((authorization) =>
        jsonResponse({
          data: {
            label: authorization,
            limit: authorization,
            usage: authorization,
            limit_remaining: authorization,
            rate_limit: { requests: authorization, interval: authorization }
          }
        })
      )
      yield* readOnce(endpoint.layer).pipe(Effect.provide(logger))
      expect(endpoint.calls()).toBe(1)
      // the reading was refused and said so
      expect(lines.some((line) => line.includes("OpenRouter key endpoint"))).toBe(true)
      const all = lines.join("\n")
      expect(all).not.toContain(SECRET)
      expect(all).not.toContain("0123456789abcdef")
      expect(all).not.toMatch(/Bearer\s+\S/)
    }))

  it.scoped("a transport failure that quotes the Authorization header is logged masked", () =>
    Effect.gen(function* () {
      const { lines, logger } = capturedLogs()
      const endpoint = keyEndpoint((authorization) =>
        new HttpClientError.RequestError({
          request: HttpClientRequest.get("http://openrouter.test/api/v1/key"),
          reason: "Transport",
          description: `proxy refused headers {"authorization":"${authorization}"} and ${encodeURIComponent(SECRET)}`
        })
      )
      yield* readOnce(endpoint.layer).pipe(Effect.provide(logger))
      const all = lines.join("\n")
      expect(all).toContain("proxy refused headers")
      expect(all).not.toContain(SECRET)
      expect(all).not.toContain(encodeURIComponent(SECRET))
      expect(all).not.toMatch(/Bearer\s+sk/)
    }))

  it.scoped("the body is read up to 64 KiB, not whole: a 96 MB reply is refused after the cap", () =>
    Effect.gen(function* () {
      const { lines, logger } = capturedLogs()
      let produced = 0
      const chunk = new Uint8Array(64 * 1024).fill(0x20)
      const endpoint = keyEndpoint(() =>
        new Response(
          new ReadableStream<Uint8Array>({
            pull(controller) {
              if (produced >= 96 * 1024 * 1024) return controller.close()
              produced += chunk.length
              controller.enqueue(chunk)
            }
          }),
          { status: 200, headers: { "content-type": "application/json" } }
        )
      )
      const status = yield* readOnce(endpoint.layer).pipe(Effect.provide(logger))
      expect(produced).toBeLessThan(1024 * 1024)
      expect(status.reported).toBeUndefined()
      expect(lines.join("\n")).toContain("64 KiB")
    }))

  it.scoped("the deprecated rate_limit never sets the limiter: 1000 per hour, or 0.001 per second, leaves 6000 per minute", () =>
    Effect.gen(function* () {
      for (const rate_limit of [{ requests: 1000, interval: "1h" }, { requests: 1, interval: "1000s" }, { requests: 20, interval: "10s" }]) {
        const endpoint = keyEndpoint(() => jsonResponse({ data: { limit: 10, usage: 4, limit_remaining: 6, rate_limit } }))
        const status = yield* readOnce(endpoint.layer)
        expect(status.requests).toMatchObject({ capacity: 6000, refillPerSecond: 100 })
        expect(status.reported?.requests).toBeUndefined()
        expect(status.reported?.credit).toEqual({ limit: 10, remaining: 6, used: 4 })
      }
    }))

  it("reads each field on its own: a null or \"NaN\" in one leaves the others, and what is ignored is named", () => {
    const read = (data: unknown) => reportedOf(JSON.stringify({ data }), 7)
    for (const rate_limit of [null, "NaN", { requests: null, interval: "1m" }, { requests: "NaN", interval: "1h" }, { interval: 5 }]) {
      expect(read({ limit: 10, usage: 4, limit_remaining: 6, rate_limit })).toMatchObject({
        reported: { source: "openrouter GET /key", at: 7, credit: { limit: 10, remaining: 6, used: 4 } }
      })
    }
    const partial = read({ limit: 10, usage: "NaN", limit_remaining: 3 })
    expect(partial).toMatchObject({ reported: { credit: { limit: 10, remaining: 3, used: undefined } }, remaining: 3 })
    expect(typeof partial === "string" ? [] : partial.ignored).toEqual(["usage"])
    // null is OpenRouter's "no limit": known, and not a problem
    expect(read({ limit: null, usage: 1, limit_remaining: null })).toMatchObject({
      reported: { credit: { limit: undefined, remaining: undefined, used: 1 } },
      remaining: null,
      ignored: []
    })
    // absent or unreadable: unknown, so the budget keeps what it had
    expect(read({ usage: 1, limit_remaining: "lots" })).toMatchObject({ remaining: undefined, ignored: ["limit_remaining"] })
  })

  it("bounds what it learns: no infinite, negative or absurd amounts", () => {
    // JSON's 1e999 parses as Infinity
    const read = (text: string) => reportedOf(`{"data": ${text}}`, 0)
    expect(read(`{"limit": 1e999, "usage": -3, "limit_remaining": -0.5}`)).toMatchObject({
      reported: { credit: { limit: undefined, used: undefined, remaining: 0 } },
      remaining: 0,
      ignored: ["limit", "usage"]
    })
    expect(read(`{"limit": 1e15, "usage": 2, "limit_remaining": 1e15}`)).toMatchObject({
      reported: { credit: { limit: undefined, used: 2, remaining: undefined } },
      ignored: ["limit", "limit_remaining"]
    })
  })

  it.scoped("an unreadable limit_remaining leaves the budget's credit as it was; null (no limit) clears it", () =>
    Effect.gen(function* () {
      const budget = yield* Budget.make({ period: "month" })
      yield* readOnce(keyEndpoint(() => jsonResponse({ data: { limit: 10, usage: 5, limit_remaining: 5, rate_limit: "NaN" } })).layer, { budget })
      expect((yield* budget.status).credit?.remaining).toBe(5)
      yield* readOnce(keyEndpoint(() => jsonResponse({ data: { limit: 10, usage: 6, limit_remaining: "NaN" } })).layer, { budget })
      expect((yield* budget.status).credit?.remaining).toBe(5)
      yield* readOnce(keyEndpoint(() => jsonResponse({ data: { limit: null, usage: 6, limit_remaining: null } })).layer, { budget })
      expect((yield* budget.status).credit).toBeUndefined()
    }))

  it.scoped("bad options fail the layer with a ConfigError naming the option, before any request", () =>
    Effect.gen(function* () {
      const cases: ReadonlyArray<readonly [string, OpenAiCompatible.OpenRouterLimitsOptions]> = [
        ["every", { every: 0 }],
        ["every", { every: "1 millis" }],
        ["every", { every: -5 }],
        ["every", { every: Duration.infinity }],
        ["timeout", { timeout: 0 }],
        ["timeout", { timeout: Duration.infinity }],
        ["baseUrl", { baseUrl: "not a url" }],
        ["baseUrl", { baseUrl: "ftp://openrouter.ai/api/v1" }]
      ]
      for (const [option, options] of cases) {
        const endpoint = keyEndpoint(() => jsonResponse({ data: { limit: null, usage: 0, limit_remaining: null } }))
        const base = Layer.mergeAll(KeyPool.layer({ providerId: "openrouter", keys: [SECRET] }), RateLimiter.layer({ requestsPerMinute: 600 }), endpoint.layer)
        const error = yield* Effect.scoped(Layer.build(OpenAiCompatible.layerOpenRouterLimits(options))).pipe(Effect.provide(base), Effect.flip)
        expect(ConfigError.isConfigError(error)).toBe(true)
        expect(error._op).toBe("InvalidData")
        expect(error._op === "InvalidData" ? error.path : []).toEqual([option])
        expect(String(error)).toContain(option)
        expect(endpoint.calls()).toBe(0)
      }
    }))
})
