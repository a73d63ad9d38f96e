import { describe, expect, it } from "@effect/vitest"
import { ConfigError, Context, Effect, Either, ExecutionPlan, Exit, Fiber, Layer, type Scope, Stream, TestClock } from "effect"
import { expectTypeOf } from "vitest"
import { Anthropic, Fallback, Gemini, Health, KeyPool, LanguageModel, LlmError, Message, OpenAiCompatible, RateLimiter, Retry, Transport } from "../src/index.js"
import * as Testing from "../src/Testing.js"

const request = Message.request("hi")
const err = {
  server: (model: string) => new LlmError.ServerError({ provider: "p", model, message: "503", status: 503 }),
  invalid: (model: string) => new LlmError.InvalidRequestError({ provider: "p", model, message: "400", status: 400 }),
  tooLong: (model: string) => new LlmError.ContextLengthError({ provider: "p", model, message: "context_length_exceeded", status: 400 })
}
const finish = (model: string): Message.StreamEvent => ({
  _tag: "Finish",
  finishReason: "stop",
  usage: { inputTokens: 1, outputTokens: 1, totalTokens: 2, estimated: false },
  id: "x",
  provider: "p",
  model
})

/** A scripted model named `name`, with the number of calls it saw. */
const mock = (name: string, steps: ReadonlyArray<Testing.MockStep> | ((call: number) => Testing.MockStep), contextWindow?: number) =>
  Effect.map(
    Testing.makeMockModel({
      provider: "p",
      model: name,
      steps: typeof steps === "function" ? (_, call) => steps(call) : steps,
      ...(contextWindow === undefined ? {} : { contextWindow })
    }),
    (m) => ({ layer: LanguageModel.layer(m.service), calls: Effect.map(m.requests, (r) => r.length) })
  )

const build = (layer: Layer.Layer<LanguageModel.LanguageModel, ConfigError.ConfigError, never>) =>
  Effect.map(Layer.build(layer), (context) => Context.get(context, LanguageModel.LanguageModel))

const failureOf = <A>(exit: Exit.Exit<A, LlmError.LlmError>) =>
  Exit.isFailure(exit) && exit.cause._tag === "Fail" ? exit.cause.error : undefined

describe("Fallback", () => {
  it.scoped("moves to the next model when the primary fails, at once", () =>
    Effect.gen(function* () {
      const a = yield* mock("a", [err.server("a")])
      const b = yield* mock("b", ["from b"])
      // a's schedule would wait 500 ms before a retry, but moving on must not wait for it
      const model = yield* build(Fallback.layer([{ model: a.layer, schedule: Retry.schedule(), attempts: 1 }, { model: b.layer }]))
      const response = yield* model.chat(request)
      expect(response.text).toBe("from b")
      expect([yield* a.calls, yield* b.calls]).toEqual([1, 1])
    }))

  it.scoped("retries within a step on its schedule before moving on", () =>
    Effect.gen(function* () {
      const a = yield* mock("a", [err.server("a"), err.server("a"), "from a"])
      const b = yield* mock("b", ["from b"])
      const model = yield* build(
        Fallback.layer([{ model: a.layer, attempts: 3, schedule: Retry.schedule({ jitter: false }) }, { model: b.layer }])
      )
      const fiber = yield* Effect.fork(model.chat(request))
      yield* TestClock.adjust("499 millis")
      expect(yield* a.calls).toBe(1)
      yield* TestClock.adjust("1 millis")
      expect(yield* a.calls).toBe(2)
      yield* TestClock.adjust("1 second")
      expect((yield* Fiber.join(fiber)).text).toBe("from a")
      expect([yield* a.calls, yield* b.calls]).toEqual([3, 0])
    }))

  it.scoped("fromPlan: an Effect ExecutionPlan of model layers, its attempts, schedule and while, for chat and stream", () =>
    Effect.gen(function* () {
      const limited = new LlmError.RateLimitError({ provider: "p", model: "a", message: "429", status: 429 })
      const a = yield* mock("a", [err.server("a"), err.server("a"), "from a", limited])
      const b = yield* mock("b", ["from b", { text: "b streamed", chunks: 2 }])
      const plan = ExecutionPlan.make(
        { provide: a.layer, attempts: 3, schedule: Retry.schedule({ jitter: false }), while: (e: LlmError.LlmError) => e._tag === "ServerError" },
        { provide: b.layer }
      )
      const model = yield* build(Fallback.fromPlan(plan, { when: () => true }))
      const fiber = yield* Effect.fork(model.chat(request))
      yield* TestClock.adjust("2 seconds")
      expect((yield* Fiber.join(fiber)).text).toBe("from a")
      expect([yield* a.calls, yield* b.calls]).toEqual([3, 0])
      // `while` refuses to retry a 429 on a (retryable otherwise): the next step serves it, with no wait
      const second = yield* Effect.fork(model.chat(request))
      yield* TestClock.adjust("0 millis")
      expect([yield* a.calls, yield* b.calls]).toEqual([4, 1])
      expect((yield* Fiber.join(second)).text).toBe("from b")
      // a stream walks the same plan: a is spent (its script ends in a failure), b streams
      const text = yield* Stream.runFold(model.stream(request), "", (acc, e) => (e._tag === "TextDelta" ? acc + e.text : acc))
      expect(text).toBe("b streamed")
    }))

  it.scoped("fails with AllModelsFailedError listing every attempt with its model and error", () =>
    Effect.gen(function* () {
      const a = yield* mock("a", [err.server("a")])
      const b = yield* mock("b", [err.server("b")])
      const model = yield* build(Fallback.layer([{ model: a.layer, attempts: 2 }, { model: b.layer }]))
      const error = failureOf(yield* Effect.exit(model.chat(request)))
      expect(error?._tag).toBe("AllModelsFailedError")
      expect(Fallback.attemptsOf(error!).map((a) => [a.model, a.error._tag])).toEqual([
        ["a", "ServerError"],
        ["a", "ServerError"],
        ["b", "ServerError"]
      ])
      expect(error?.message).toContain("all 2 models failed (3 attempts)")
    }))

  it.scoped("does not fall back on errors `when` rejects: an invalid request surfaces as itself", () =>
    Effect.gen(function* () {
      const a = yield* mock("a", [err.invalid("a")])
      const b = yield* mock("b", ["from b"])
      const model = yield* build(Fallback.layer([{ model: a.layer }, { model: b.layer }]))
      expect(yield* Effect.exit(model.chat(request))).toStrictEqual(Exit.fail(err.invalid("a")))
      expect(yield* b.calls).toBe(0)
      const custom = yield* build(Fallback.layer([{ model: a.layer }, { model: b.layer }], { when: () => true }))
      expect((yield* custom.chat(request)).text).toBe("from b")
    }))

  it.scoped("ContextLengthError goes to the next step with a larger context window", () =>
    Effect.gen(function* () {
      const small = yield* mock("small", [err.tooLong("small")], 8_000)
      const same = yield* mock("same", ["same"], 8_000)
      const unknown = yield* mock("unknown", ["unknown"])
      const large = yield* mock("large", ["large"], 128_000)
      const model = yield* build(
        Fallback.layer([{ model: small.layer }, { model: same.layer }, { model: unknown.layer }, { model: large.layer }])
      )
      expect(model.contextWindow).toBe(128_000)
      expect((yield* model.chat(request)).text).toBe("large")
      expect([yield* same.calls, yield* unknown.calls, yield* large.calls]).toEqual([0, 0, 1])
    }))

  it.scoped("a stream falls back before its first event and delivers the next model's whole answer", () =>
    Effect.gen(function* () {
      const a = yield* mock("a", [err.server("a")])
      const b = yield* mock("b", [{ events: [{ _tag: "TextDelta", text: "from " }, { _tag: "TextDelta", text: "b" }, finish("b")] }])
      const model = yield* build(Fallback.layer([{ model: a.layer }, { model: b.layer }]))
      const response = yield* LanguageModel.collect(model.stream(request))
      expect(response.text).toBe("from b")
    }))

  it.scoped("a stream cut after its first event ends at once with a partial StreamError and the text received: no retry, no fallback", () =>
    Effect.gen(function* () {
      const a = yield* mock("a", [{ events: [{ _tag: "TextDelta", text: "Hel" }, { _tag: "TextDelta", text: "lo" }], failWith: err.server("a") }])
      const b = yield* mock("b", [{ events: [{ _tag: "TextDelta", text: "Hello" }, finish("b")] }])
      const model = yield* build(Fallback.layer([{ model: a.layer, attempts: 3, schedule: Retry.schedule() }, { model: b.layer }]))
      const seen: Array<string> = []
      const fiber = yield* model.stream(request).pipe(
        Stream.runForEach((e) => Effect.sync(() => e._tag === "TextDelta" && seen.push(e.text))),
        Effect.exit,
        Effect.fork
      )
      // a retry or a move would wait on the clock, or not at all: run it past every schedule
      yield* TestClock.adjust("1 minute")
      const done = fiber.unsafePoll()
      if (done === null) yield* Fiber.interrupt(fiber)
      expect([yield* a.calls, yield* b.calls], "after the first event Fallback called a model again ([a, b] calls)").toEqual([1, 0])
      expect(seen, "the caller received text again after the cut").toEqual(["Hel", "lo"])
      expect(done, "Fallback had not ended the stream a minute (of TestClock) after its cut").not.toBeNull()
      const exit = Exit.isSuccess(done!) ? done.value : undefined
      expect(failureOf(exit!), "the cut did not end as a partial StreamError with the text received").toMatchObject({
        _tag: "StreamError",
        partial: true,
        partialText: "Hello",
        retryable: false
      })
    }))

  it.live("over providers: a cut after the first event is Fallback's partial StreamError within a bound, with the text received", () =>
    Effect.gen(function* () {
      const fakeA = yield* Testing.FakeProvider.make({ reply: { text: "one two three four five six", chunks: 6 } })
      const fakeB = yield* Testing.FakeProvider.make({ reply: { text: "from b" } })
      yield* fakeA.inject({ _tag: "CutStream", afterChunks: 3 })
      const provider = (fake: Testing.FakeProviderService, name: string) =>
        OpenAiCompatible.layer({ model: name, provider: name, baseUrl: fake.baseUrl }).pipe(
          Layer.provide(KeyPool.layer({ providerId: name, keys: [`sk-${name}`] })),
          Layer.provide(RateLimiter.unlimited),
          Layer.provide(Transport.layerUndici)
        )
      const model = yield* build(Fallback.layer([
        { model: provider(fakeA, "a"), attempts: 3, schedule: Retry.schedule({ initialDelay: "1 millis", maxDelay: "5 millis" }) },
        { model: provider(fakeB, "b") }
      ]))
      const seen: Array<string> = []
      const outcome = yield* model.stream(request).pipe(
        Stream.runForEach((e) => Effect.sync(() => e._tag === "TextDelta" && seen.push(e.text))),
        Effect.exit,
        Effect.timeoutTo({ duration: "5 seconds", onTimeout: () => "still running" as const, onSuccess: (exit) => exit })
      )
      expect(outcome, "Fallback had not ended the stream 5 s after its cut").not.toBe("still running")
      expect([(yield* fakeA.requests).length, (yield* fakeB.requests).length], "after the first event Fallback sent the request again ([a, b] requests)").toEqual([1, 0])
      const text = seen.join("")
      expect(text.length).toBeGreaterThan(0)
      expect("one two three four five six".startsWith(text)).toBe(true)
      expect(failureOf(outcome as Exit.Exit<void, LlmError.LlmError>), "the cut did not end as a partial StreamError with the text received").toMatchObject({
        _tag: "StreamError",
        partial: true,
        partialText: text,
        retryable: false
      })
    }).pipe(Effect.scoped))

  it.scoped("every step failing a stream gives AllModelsFailedError", () =>
    Effect.gen(function* () {
      const a = yield* mock("a", [err.server("a")])
      const b = yield* mock("b", [err.server("b")])
      const model = yield* build(Fallback.layer([{ model: a.layer }, { model: b.layer }]))
      const error = failureOf(yield* Effect.exit(Stream.runDrain(model.stream(request))))
      expect(Fallback.attemptsOf(error!).map((a) => a.model)).toEqual(["a", "b"])
    }))

  it.scoped("skips a step whose circuit is open, without calling it", () =>
    Effect.gen(function* () {
      const a = yield* mock("a", [err.server("a")])
      const b = yield* mock("b", ["from b"])
      const model = yield* build(
        Fallback.layer([{ model: a.layer, breaker: { consecutiveFailures: 2, cooldown: "1 minute" } }, { model: b.layer }])
      )
      for (let i = 0; i < 5; i++) expect((yield* model.chat(request)).text).toBe("from b")
      expect([yield* a.calls, yield* b.calls]).toEqual([2, 5])
      // and a call whose every step is down still names them all
      const c = yield* mock("c", [err.server("c")])
      const both = yield* build(Fallback.layer([{ model: a.layer, breaker: { consecutiveFailures: 1 } }, { model: c.layer }]))
      yield* Effect.exit(both.chat(request))
      const error = failureOf(yield* Effect.exit(both.chat(request)))
      expect(Fallback.attemptsOf(error!).map((x) => x.error._tag)).toEqual(["CircuitOpenError", "ServerError"])
    }))

  it.scoped("skips endpoints Health reports disconnected, and uses them again once they recover", () =>
    Effect.gen(function* () {
      let up = false
      const a = yield* mock("a", ["from a"])
      const b = yield* mock("b", ["from b"])
      const probe = Effect.suspend(() => (up ? Effect.void : Effect.fail("connection refused")))
      const health = yield* Health.make({ interval: "10 seconds" })
      const model = yield* build(
        Fallback.layer([{ model: a.layer, probe }, { model: b.layer, probe: Effect.void }], { skipDisconnected: true }).pipe(
          Layer.provide(Layer.succeed(Health.Health, health))
        )
      )
      yield* health.checkNow
      expect((yield* health.get("p/a"))?.status).toBe("disconnected")
      expect((yield* model.chat(request)).text).toBe("from b")
      expect(yield* a.calls).toBe(0)
      up = true
      yield* TestClock.adjust("10 seconds")
      expect((yield* model.chat(request)).text).toBe("from a")
    }))

  it.scoped("builds each step's layer once, not per request", () =>
    Effect.gen(function* () {
      let builds = 0
      const a = yield* mock("a", ["from a"])
      const counted = Layer.effectDiscard(Effect.sync(() => builds++)).pipe(Layer.provideMerge(a.layer))
      const model = yield* build(Fallback.layer([{ model: counted }]))
      for (let i = 0; i < 3; i++) yield* model.chat(request)
      expect(builds).toBe(1)
    }))

  it.scoped("skipDisconnected puts Health in the layer's requirements: without it the stack does not compile", () =>
    Effect.gen(function* () {
      const a = yield* mock("a", ["x"])
      const skipping = Fallback.layer([{ model: a.layer }], { skipDisconnected: true })
      expectTypeOf<Layer.Layer.Context<typeof skipping>>().toEqualTypeOf<Health.Health>()
      // a flag only known at run time may be true: Health is required then too
      const flag: boolean = Math.random() > 2
      expectTypeOf<Layer.Layer.Context<ReturnType<typeof Fallback.layer<[{ model: typeof a.layer }], { skipDisconnected: typeof flag }>>>>()
        .toEqualTypeOf<Health.Health>()
      expectTypeOf<Layer.Layer.Context<ReturnType<typeof Fallback.layer<[{ model: typeof a.layer }], { skipDisconnected: false }>>>>()
        .toEqualTypeOf<never>()
      const plain = Fallback.layer([{ model: a.layer }], { when: () => true })
      expectTypeOf<Layer.Layer.Context<typeof plain>>().toEqualTypeOf<never>()
      // @ts-expect-error: Health is missing
      const unbuildable: Effect.Effect<unknown, unknown, Scope.Scope> = Layer.build(skipping)
      void unbuildable
      // provided, it builds and registers the step
      const health = yield* Health.make({ interval: "1 hour" })
      yield* Layer.build(skipping.pipe(Layer.provide(Layer.succeed(Health.Health, health))))
      expect((yield* health.status).map((s) => s.name)).toEqual(["p/a"])
    }))

  it.scoped("a step's attempts that is not a whole number of at least 1 fails the layer with a ConfigError naming it", () =>
    Effect.gen(function* () {
      const a = yield* mock("a", ["x"])
      for (const attempts of [0, 1.5, Number.NaN]) {
        const result = yield* Effect.either(Layer.build(Fallback.layer([{ model: a.layer }, { model: a.layer, attempts }])))
        expect(result._tag).toBe("Left")
        const error = (result as Either.Left<unknown, unknown>).left
        expect(ConfigError.isConfigError(error) && error._op === "InvalidData" && error.path).toEqual(["1", "attempts"])
      }
    }))
})

describe("Fallback across APIs with providerOptions", () => {
  it.scoped("Anthropic → OpenAI → Gemini: each step receives only its own options", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({ reply: { text: "answered" } })
      // the first two steps fail, so the request reaches all three APIs
      yield* fake.inject({ _tag: "Status", status: 500 }, { _tag: "Status", status: 500 })
      const keyed = <A, E, R>(providerId: string, model: Layer.Layer<A, E, R>) =>
        model.pipe(Layer.provide(KeyPool.layer({ providerId, keys: ["k"] })), Layer.provide(RateLimiter.unlimited), Layer.provide(Transport.layerUndici))
      const chain = Fallback.layer([
        { model: keyed("anthropic", Anthropic.layer({ model: "claude-sonnet-4-5", baseUrl: fake.url })) },
        { model: keyed("openai", OpenAiCompatible.layer({ model: "gpt-4o-mini", baseUrl: fake.baseUrl })) },
        { model: keyed("gemini", Gemini.layer({ model: "gemini-2.5-flash", baseUrl: `${fake.url}/v1beta` })) }
      ])
      const request = Message.request([Message.cached(Message.system("Long shared rules.")), Message.user("hi")], {
        providerOptions: {
          anthropic: { metadata: { user_id: "tenant-7" }, top_k: 5 },
          openai: { prompt_cache_key: "tenant-7", service_tier: "flex" },
          gemini: { generationConfig: { topK: 5 }, safetySettings: [] }
        }
      })
      const response = yield* LanguageModel.chat(request).pipe(Effect.provide(chain))
      expect(response.text).toBe("answered")
      expect(response.provider).toBe("gemini")
      const [claude, openai, google] = (yield* fake.requests).map((r) => r.body as Record<string, unknown>)
      expect(claude).toMatchObject({ metadata: { user_id: "tenant-7" }, top_k: 5, system: [{ type: "text", text: "Long shared rules.", cache_control: { type: "ephemeral" } }] })
      expect(openai).toMatchObject({ prompt_cache_key: "tenant-7", service_tier: "flex" })
      expect(google).toMatchObject({ generationConfig: { topK: 5 }, safetySettings: [] })
      const keysOf = (body: Record<string, unknown>) => Object.keys(body)
      for (const foreign of ["prompt_cache_key", "service_tier", "safetySettings"]) expect(keysOf(claude!)).not.toContain(foreign)
      for (const foreign of ["metadata", "top_k", "safetySettings", "generationConfig"]) expect(keysOf(openai!)).not.toContain(foreign)
      for (const foreign of ["metadata", "top_k", "prompt_cache_key", "service_tier"]) expect(keysOf(google!)).not.toContain(foreign)
    }))
})

