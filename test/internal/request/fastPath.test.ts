/**
 * A chat call, or a stream's opening, over in-memory services takes the fast path (plain code
 * around the transport's one Effect); over any other pool or limiter it takes the general
 * path. Both must be the same call seen from outside: same outcomes, spans, key states,
 * limiter levels, usage and metrics, for a success, a 429 re-tried on another key, a server
 * error, a malformed reply, an error object in a 2xx body, a connection reset, a deadline and
 * an interruption.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Layer, Metric } from "effect"
import { KeyPool, LanguageModel, Message, OpenAiCompatible, RateLimiter, Transport, Usage } from "../../../src/index.js"
import * as Testing from "../../../src/Testing.js"
import { recordingTracer } from "../../support/recordingTracer.js"


// A store factory that hands out copies of the in-memory stores: the same state and steps,
// but objects the request path has no synchronous form for, so it takes the general path.
const generalPoolStores = Layer.succeed(KeyPool.KeyPoolStore, {
  make: (spec) => Effect.map(KeyPool.makeStoreMemory(spec), (store) => ({ ...store }))
})
const generalLimiterStores = Layer.succeed(RateLimiter.RateLimiterStore, {
  make: (spec) => Effect.map(RateLimiter.makeStoreMemory(spec), (store) => ({ ...store }))
})

const KEYS = ["sk-path-a", "sk-path-b"]

const stack = (baseUrl: string, path: "fast" | "general") =>
  OpenAiCompatible.layer({ model: "gpt-4o-mini", baseUrl, timeout: "1 second" }).pipe(
    Layer.provideMerge(
      Layer.mergeAll(
        path === "fast" ? KeyPool.layer({ providerId: "openai", keys: KEYS }) : KeyPool.layer({ providerId: "openai", keys: KEYS }).pipe(Layer.provide(generalPoolStores)),
        path === "fast"
          ? RateLimiter.layer({ requestsPerMinute: 6000, tokensPerMinute: 6_000_000 })
          : RateLimiter.layer({ requestsPerMinute: 6000, tokensPerMinute: 6_000_000 }).pipe(Layer.provide(generalLimiterStores)),
        Usage.layer({ prices: { "gpt-4o-mini": { inputPerMillion: 1, outputPerMillion: 2 } } })
      )
    ),
    Layer.provide(Transport.layerUndici),
    Layer.orDie
  )

const counter = (name: string, tags: Record<string, string> = {}) =>
  Object.entries(tags).reduce((m, [k, v]) => m.pipe(Metric.tagged(k, v)), Metric.counter(name))

const metricsNow = Effect.all({
  leased: Metric.value(counter("effect_llm_key_pool_leased")),
  cooldowns: Metric.value(counter("effect_llm_key_pool_cooldowns")),
  admitted: Metric.value(counter("effect_llm_rate_limiter_admitted"))
})

/** One scenario on one path: every call's outcome, and what the stack recorded. */
type Mode = "chat" | "stream"

/** One call in `mode`: the reply's text, or the failure's tag. */
const call = (mode: Mode) => {
  const request = Message.request("hi")
  const effect = mode === "chat" ? LanguageModel.chat(request) : LanguageModel.collect(LanguageModel.stream(request))
  return Effect.map(Effect.exit(effect), (exit) => Exit.isSuccess(exit) ? `ok ${exit.value.text}` : exit.cause._tag === "Fail" ? exit.cause.error._tag : "defect")
}

const spanName = { chat: "LanguageModel.chat", stream: "LanguageModel.stream" } as const

const scenario = (mode: Mode, path: "fast" | "general", faults: ReadonlyArray<Testing.Fault | undefined>) =>
  Effect.gen(function* () {
    const fake = yield* Testing.FakeProvider.make({ reply: { text: "ok" } })
    const { spans, tracer } = recordingTracer()
    const before = yield* metricsNow
    const outcomes: Array<string> = []
    const state = yield* Effect.gen(function* () {
      for (const fault of faults) {
        if (fault !== undefined) yield* fake.inject(fault)
        outcomes.push(yield* call(mode))
      }
      const keys = yield* KeyPool.status
      const limiter = yield* RateLimiter.status
      const usage = yield* Usage.snapshot
      return {
        keys: keys.map((k) => ({ state: k.state, inFlight: k.inFlight, successes: k.successes, failures: k.failures })).sort((a, b) =>
          a.successes - b.successes || a.failures - b.failures
        ),
        requestsLeft: limiter.requests!.available,
        tokensLeft: limiter.tokens!.available,
        usage: usage.total
      }
    }).pipe(Effect.provide(stack(fake.baseUrl, path)), Effect.withTracer(tracer))
    const after = yield* metricsNow
    const chatSpans = spans.filter((s) => s.name === spanName[mode]).map((s) => ({
      parent: s.parent,
      attributes: Object.fromEntries(s.attributes),
      exit: s.exit === undefined ? "open" : Exit.isSuccess(s.exit) ? "success" : "failure"
    }))
    return {
      outcomes,
      state,
      chatSpans,
      otherSpans: spans.filter((s) => s.name !== spanName[mode]).map((s) => s.name),
      requestsSent: (yield* fake.requests).length,
      metrics: {
        leased: after.leased.count - before.leased.count,
        cooldowns: after.cooldowns.count - before.cooldowns.count,
        admitted: after.admitted.count - before.admitted.count
      }
    }
  })

const faults: ReadonlyArray<readonly [string, ReadonlyArray<Testing.Fault | undefined>]> = [
  ["a success", [undefined, undefined]],
  ["a 429 re-tried at once on the other key", [{ _tag: "RateLimit", retryAfterSeconds: 30 }]],
  ["a server error", [{ _tag: "Status", status: 500 }]],
  ["a malformed reply", [{ _tag: "MalformedJson" }]],
  ["a 2xx error body", [{ _tag: "Raw", body: JSON.stringify({ error: { message: "overloaded", type: "server_error" } }) }]],
  ["a connection reset", [{ _tag: "Reset" }]],
  ["a deadline", [{ _tag: "SlowFirstByte", delayMs: 1500 }]]
]

describe.each(["chat", "stream"] as const)("%s: the fast path is the general path, seen from outside", (mode) => {
  // under the TestClock: the buckets do not refill between calls, so both paths' levels are exact
  for (const [name, sequence] of faults) {
    it.scoped(name, () =>
    Effect.gen(function* () {
      const fast = yield* scenario(mode, "fast", sequence)
      const general = yield* scenario(mode, "general", sequence)
      expect(fast.outcomes).toEqual(general.outcomes)
      expect(fast.state).toStrictEqual(general.state)
      expect(fast.chatSpans).toEqual(general.chatSpans)
      expect(fast.requestsSent).toBe(general.requestsSent)
      expect(fast.metrics).toEqual(general.metrics)
      // what tells the paths apart: the general path leases in a `KeyPool.acquire` span, the
      // fast one makes the call's span alone (a re-try on another key goes the general way)
      const acquires = (spans: ReadonlyArray<string>) => spans.filter((name) => name === "KeyPool.acquire").length
      expect(acquires(general.otherSpans)).toBeGreaterThanOrEqual(sequence.length)
      expect(acquires(fast.otherSpans)).toBe(acquires(general.otherSpans) - sequence.length)
      expect(fast.otherSpans.filter((name) => name !== "KeyPool.acquire")).toEqual([])
    }))
  }

  it.scoped("a success is tracked", () => Effect.gen(function* () {
    const fast = yield* scenario(mode, "fast", [undefined])
    expect(fast.outcomes).toEqual(["ok ok"])
    expect(fast.state.usage.requests).toBe(1)
    expect(fast.state.usage.inputTokens).toBeGreaterThan(0)
    expect(fast.state.usage.cost).toBeGreaterThan(0)
    expect(fast.chatSpans[0]!.attributes["gen_ai.usage.input_tokens"]).toBe(fast.state.usage.inputTokens)
  }))

  it.scoped("an interrupted call gives its key back and ends its span, on both paths", () =>
    Effect.gen(function* () {
      for (const path of ["fast", "general"] as const) {
        const fake = yield* Testing.FakeProvider.make({ reply: { text: "ok" } })
        yield* fake.inject({ _tag: "SlowFirstByte", delayMs: 5000 })
        const { spans, tracer } = recordingTracer()
        const keys = yield* Effect.gen(function* () {
          const running = yield* Effect.fork(call(mode))
          // real time: the request must reach the server before the interruption
          while ((yield* fake.requests).length === 0) yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 5)))
          yield* Fiber.interrupt(running)
          return yield* KeyPool.status
        }).pipe(Effect.provide(stack(fake.baseUrl, path)), Effect.withTracer(tracer))
        expect(keys.map((k) => k.inFlight)).toEqual([0, 0])
        const chat = spans.find((span) => span.name === spanName[mode])!
        expect(chat.exit !== undefined && Exit.isInterrupted(chat.exit)).toBe(true)
      }
    }))
})
