import { describe, expect, it } from "@effect/vitest"
import * as Clock from "effect/Clock"
import * as ConfigError from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Random from "effect/Random"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import { Fallback, Hedge, KeyPool, LanguageModel, Message, OpenAiCompatible, RateLimiter, Transport } from "../src/index.js"

/**
 * A clock that moves only when told: a request "takes" its latency by moving it, so runs of
 * requests one after another measure exact latencies without waiting (TestClock.adjust, which
 * waits for every fiber to settle, costs milliseconds a call).
 */
const manualClock = () => {
  let now = 1_000_000
  const clock: Clock.Clock = {
    [Clock.ClockTypeId]: Clock.ClockTypeId,
    unsafeCurrentTimeMillis: () => now,
    currentTimeMillis: Effect.sync(() => now),
    unsafeCurrentTimeNanos: () => BigInt(now) * 1_000_000n,
    currentTimeNanos: Effect.sync(() => BigInt(now) * 1_000_000n),
    sleep: () => Effect.void
  }
  return { clock, advance: (ms: number) => Effect.sync(() => void (now += ms)) }
}

/**
 * A transport double for an OpenAI-compatible API whose latency per request is chosen by the
 * key it carries and the request's number. Over a `manualClock`, a request takes its latency
 * by moving that clock; otherwise it sleeps on the clock (TestClock). A stream's head comes at once, its first event
 * after the latency.
 */
const doubleOf = (latency: (key: string, n: number) => number, mode: ReturnType<typeof manualClock> | "sleep") => {
  const keys: Array<string> = []
  const wait = (ms: number) => (mode === "sleep" ? Effect.sleep(ms) : mode.advance(ms))
  const chatBody = (text: string) =>
    JSON.stringify({
      id: "c",
      model: "m",
      choices: [{ index: 0, message: { role: "assistant", content: text }, finish_reason: "stop" }],
      usage: { prompt_tokens: 3, completion_tokens: 1, total_tokens: 4 }
    })
  const sse = (text: string) =>
    [
      `data: ${JSON.stringify({ id: "c", model: "m", choices: [{ index: 0, delta: { content: text }, finish_reason: null }] })}\n\n`,
      `data: ${JSON.stringify({ id: "c", model: "m", choices: [{ index: 0, delta: {}, finish_reason: "stop" }], usage: { prompt_tokens: 3, completion_tokens: 1, total_tokens: 4 } })}\n\n`,
      "data: [DONE]\n\n"
    ].map((piece) => new TextEncoder().encode(piece))
  const keyOf = (request: Transport.Request) => (request.headers["authorization"] ?? "").replace("Bearer ", "")
  const layer = Layer.succeed(Transport.Transport, {
    text: (request) =>
      Effect.suspend(() => {
        const key = keyOf(request)
        const n = keys.push(key) - 1
        return Effect.as(wait(latency(key, n)), { status: 200, headers: {}, body: chatBody(`${key}#${n}`) })
      }),
    stream: (request) =>
      Effect.sync(() => {
        const key = keyOf(request)
        const n = keys.push(key) - 1
        const pieces = sse(`${key}#${n}`)
        let next = 0
        const pull = Effect.suspend(() => {
          const piece = next < pieces.length ? [pieces[next]!] : undefined
          const first = next === 0
          next++
          return first ? Effect.as(wait(latency(key, n)), piece) : Effect.succeed(piece)
        })
        return { status: 200, headers: { "content-type": "text/event-stream" }, pull, pullWithin: () => pull }
      }),
    timeouts: true
  })
  return { layer, keys }
}

const stackOver = (transport: Layer.Layer<Transport.Transport>, pool: KeyPool.Options) =>
  OpenAiCompatible.layer({ model: "m", baseUrl: "http://127.0.0.1:1/v1" }).pipe(
    Layer.provideMerge(KeyPool.layer(pool)),
    Layer.provide(RateLimiter.unlimited),
    Layer.provide(transport),
    Layer.provide(Transport.layerUndici)
  )


/**
 * The routing of a run in which `target` was slow from request `slowFrom` to `slowTo`: an even
 * spread before, only the exploration share from its first slow reply on, its share back at the end.
 */
const expectRoutedAway = (used: ReadonlyArray<string>, target: string, slowFrom: number, slowTo: number) => {
  const share = (from: number, to: number) => used.slice(from, to).filter((k) => k === target).length / (to - from)
  expect(share(100, slowFrom)).toBeGreaterThan(0.2)
  const firstSlow = used.indexOf(target, slowFrom)
  expect(firstSlow - slowFrom).toBeLessThan(20)
  expect(share(firstSlow + 1, slowTo)).toBeLessThan(0.06)
  expect(share(used.length - 200, used.length)).toBeGreaterThan(0.2)
}

describe("Hedge over a key pool", () => {
  it.effect("the extra attempt leases another key; the loser's lease is released", () =>
    Effect.gen(function* () {
      for (const mode of ["chat", "stream"] as const) {
        const double = doubleOf((_, n) => (n === 0 ? 10_000 : 100), "sleep")
        const stack = Hedge.layer({ after: "500 millis", budget: 1 }).pipe(
          Layer.provideMerge(stackOver(double.layer, { providerId: "openai", keys: ["k1", "k2"] }))
        )
        yield* Effect.gen(function* () {
          const call = mode === "chat"
            ? Effect.map(LanguageModel.chat(Message.request("hi")), (r) => r.text)
            : Effect.map(Stream.runCollect(LanguageModel.stream(Message.request("hi"))), (events) =>
              [...events].flatMap((e) => (e._tag === "TextDelta" ? [e.text] : [])).join(""))
          const fiber = yield* Effect.fork(call)
          yield* TestClock.adjust("1 second")
          const text = yield* Fiber.join(fiber)
          expect(double.keys, mode).toHaveLength(2)
          expect(new Set(double.keys).size, mode).toBe(2)
          expect(text, mode).toBe(`${double.keys[1]}#1`)
          const status = yield* KeyPool.status
          expect(status.map((k) => k.inFlight), mode).toEqual([0, 0])
        }).pipe(Effect.provide(stack))
      }
    }))
})

describe("Hedge over a rate limiter", () => {
  it.effect("a loser still waiting for admission gives its reservation back", () =>
    Effect.gen(function* () {
      const double = doubleOf((_, n) => (n === 0 ? 10_000 : 100), "sleep")
      // one request now, then one per 100 seconds
      const stack = Hedge.layer({ after: "500 millis", budget: 1 }).pipe(
        Layer.provide(OpenAiCompatible.layer({ model: "m", baseUrl: "http://127.0.0.1:1/v1" })),
        Layer.provide(KeyPool.layer({ providerId: "openai", keys: ["k1", "k2"] })),
        Layer.provide(RateLimiter.layer({ capacity: 1, refillPerSecond: 0.01 })),
        Layer.provide(double.layer),
        Layer.provide(Transport.layerUndici)
      )
      yield* Effect.gen(function* () {
        const first = yield* Effect.fork(LanguageModel.chat(Message.request("hi")))
        yield* TestClock.adjust("10 seconds")
        // the extra attempt waited for admission the whole time, and was interrupted there
        expect((yield* Fiber.join(first)).text).toBe("k1#0")
        expect(double.keys).toHaveLength(1)
        const second = yield* Effect.fork(LanguageModel.chat(Message.request("hi")))
        // with the reservation given back, the next request is admitted when the bucket refills
        // (at 100 s); had it been kept, at 200 s
        yield* TestClock.adjust("90100 millis")
        expect(double.keys).toHaveLength(2)
        yield* TestClock.adjust("200 millis")
        expect((yield* Fiber.join(second)).text).toMatch(/#1$/)
      }).pipe(Effect.provide(stack))
    }))
})

describe("latency-aware choice", () => {
  it.effect("KeyPool: options out of range are a ConfigError", () =>
    Effect.gen(function* () {
      const result = yield* Effect.either(KeyPool.make({ providerId: "p", keys: ["a"], latency: { exploration: 1 } }))
      expect(Either.isLeft(result) && ConfigError.isConfigError(result.left) && String(result.left)).toContain("exploration")
    }))

  /**
   * Three keys, requests one after another; `k3` is slow for requests [slowFrom, slowTo). Its
   * share falls within a bounded number of requests and comes back after it recovers.
   */
  const routing = (mode: "chat" | "stream", latency: true | KeyPool.LatencyOptions, slowFrom: number, slowTo: number, total: number) =>
    Effect.gen(function* () {
      let sent = 0
      const manual = manualClock()
      const double = doubleOf((key) => (key === "k3" && sent >= slowFrom && sent < slowTo ? 500 : 10), manual)
      const stack = stackOver(double.layer, { providerId: "openai", keys: ["k1", "k2", "k3"], latency })
      const keys = yield* Effect.gen(function* () {
        const used: Array<string> = []
        for (; sent < total; sent++) {
          const before = double.keys.length
          if (mode === "chat") yield* LanguageModel.chat(Message.request("hi"))
          else yield* Stream.runDrain(LanguageModel.stream(Message.request("hi")))
          used.push(double.keys[before]!)
        }
        return used
      }).pipe(Effect.provide(stack), Effect.withRandom(Random.make("routing")), Effect.withClock(manual.clock))
      expectRoutedAway(keys, "k3", slowFrom, slowTo)
    })

  it.effect("KeyPool: one key of three made slow loses its share within a few requests and regains it after (chat)", () =>
    routing("chat", true, 300, 600, 1200))
  // a quicker average, so that a shorter run (streams cost more per request) shows the same
  it.effect("KeyPool: the same on streams, by time to first event", () => routing("stream", { smoothing: 0.5 }, 200, 400, 700))

  it.effect("KeyPool: the latency samples are the reply's time, and a stream's time to its first event", () =>
    Effect.gen(function* () {
      const manual = manualClock()
      const double = doubleOf((key) => (key === "k1" ? 40 : 80), manual)
      const stack = stackOver(double.layer, { providerId: "openai", keys: ["k1", "k2"], latency: { exploration: 0 } })
      yield* Effect.gen(function* () {
        yield* LanguageModel.chat(Message.request("hi"))
        yield* Stream.runDrain(LanguageModel.stream(Message.request("hi")))
        const pool = yield* KeyPool.KeyPool
        const scores = yield* pool.scores!
        const byKey = new Map(scores.map((s) => [double.keys.indexOf(double.keys.find((k) => KeyPool.fingerprint(k) === s.keyId)!), s]))
        expect([...byKey.values()].every((s) => s.latencyMillis === undefined || s.latencyMillis === 40 || s.latencyMillis === 80)).toBe(true)
        expect(scores.filter((s) => s.latencyMillis !== undefined).length).toBeGreaterThan(0)
        expect(scores.every((s) => s.inFlight === 0)).toBe(true)
      }).pipe(Effect.provide(stack), Effect.withRandom(Random.make("samples")), Effect.withClock(manual.clock))
    }))

  it.effect("Fallback: among equivalent steps, a slow one loses its share and regains it after", () =>
    Effect.gen(function* () {
      const slowFrom = 300
      const slowTo = 600
      const total = 1200
      let sent = 0
      const manual = manualClock()
      const used: Array<string> = []
      const step = (name: string) =>
        LanguageModel.layer({
          provider: "p",
          model: name,
          chat: () =>
            Effect.zipRight(
              Effect.suspend(() => {
                used.push(name)
                return manual.advance(name === "c" && sent >= slowFrom && sent < slowTo ? 500 : 10)
              }),
              Effect.succeed({
                id: "x",
                model: name,
                provider: "p",
                text: name,
                toolCalls: [],
                finishReason: "stop" as const,
                usage: { inputTokens: 1, outputTokens: 1, totalTokens: 2, estimated: false }
              })
            ),
          stream: () => Stream.empty
        })
      const stack = Fallback.layer([{ model: step("a") }, { model: step("b"), equivalent: true }, { model: step("c"), equivalent: true }], {
        latency: true
      })
      yield* Effect.gen(function* () {
        for (; sent < total; sent++) yield* LanguageModel.chat(Message.request("hi"))
      }).pipe(Effect.provide(stack), Effect.withRandom(Random.make("fallback")), Effect.withClock(manual.clock))
      expect(used).toHaveLength(total)
      expectRoutedAway(used, "c", slowFrom, slowTo)
    }))

  it.effect("Fallback: without the latency option, equivalent steps keep their order", () =>
    Effect.gen(function* () {
      const used: Array<string> = []
      const step = (name: string) =>
        LanguageModel.layer({
          provider: "p",
          model: name,
          chat: () =>
            Effect.sync(() => {
              used.push(name)
              return { id: "x", model: name, provider: "p", text: name, toolCalls: [], finishReason: "stop" as const, usage: { inputTokens: 1, outputTokens: 1, totalTokens: 2, estimated: false } }
            }),
          stream: () => Stream.empty
        })
      const stack = Fallback.layer([{ model: step("a") }, { model: step("b"), equivalent: true }])
      yield* Effect.forEach([1, 2, 3], () => LanguageModel.chat(Message.request("hi")), { discard: true }).pipe(Effect.provide(stack))
      expect(used).toEqual(["a", "a", "a"])
    }))
})
