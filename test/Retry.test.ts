import { describe, expect, it } from "@effect/vitest"
import { Context, Duration, Effect, Exit, Fiber, Layer, Schedule, Stream, TestClock } from "effect"
import { fromResponse } from "../src/internal/request/errors.js"
import { KeyPool, LanguageModel, LlmError, Message, OpenAiCompatible, RateLimiter, Retry, Transport } from "../src/index.js"
import * as Testing from "../src/Testing.js"

const ids = { provider: "mock", model: "mock-model" }
const server = (status = 500) => new LlmError.ServerError({ ...ids, message: `fake ${status}`, status })
const rateLimited = (retryAfter?: Duration.DurationInput) =>
  new LlmError.RateLimitError({ ...ids, message: "429", status: 429, ...(retryAfter === undefined ? {} : { retryAfter: Duration.decode(retryAfter) }) })
const invalid = new LlmError.InvalidRequestError({ ...ids, message: "bad", status: 400 })

/** A mock model behind `Retry.layer(policy)`, plus the requests the mock saw. */
const stack = (steps: ReadonlyArray<Testing.MockStep>, policy: Schedule.Schedule<unknown, LlmError.LlmError> = Retry.schedule({ jitter: false })) =>
  Effect.gen(function* () {
    const mock = yield* Testing.makeMockModel({ steps })
    const model = yield* Layer.build(Retry.layer(policy).pipe(Layer.provide(LanguageModel.layer(mock.service))))
    return { model: Context.get(model, LanguageModel.LanguageModel), calls: Effect.map(mock.requests, (r) => r.length) }
  })

const request = Message.request("hi")

describe("Retry.schedule", () => {
  it.scoped("retries retryable errors with exponential backoff: 500 ms, 1 s, 2 s", () =>
    Effect.gen(function* () {
      const { model, calls } = yield* stack([server(), server(), server(), "ok"])
      const fiber = yield* Effect.fork(model.chat(request))
      yield* TestClock.adjust("499 millis")
      expect(yield* calls).toBe(1)
      yield* TestClock.adjust("1 millis")
      expect(yield* calls).toBe(2)
      yield* TestClock.adjust("999 millis")
      expect(yield* calls).toBe(2)
      yield* TestClock.adjust("1 millis")
      expect(yield* calls).toBe(3)
      yield* TestClock.adjust("2 seconds")
      expect(yield* calls).toBe(4)
      expect((yield* Fiber.join(fiber)).text).toBe("ok")
    }))

  it.scoped("gives up after maxRetries with the last error", () =>
    Effect.gen(function* () {
      const { model, calls } = yield* stack([server(500), server(502), server(503), server(504), "never"])
      const fiber = yield* Effect.fork(Effect.exit(model.chat(request)))
      yield* TestClock.adjust("1 minute")
      const exit = yield* Fiber.join(fiber)
      expect(yield* calls).toBe(4)
      expect(exit).toStrictEqual(Exit.fail(server(504)))
    }))

  it.scoped("does not retry errors that are not retryable, in chat or in a stream", () =>
    Effect.gen(function* () {
      // a retry would wait on the clock: run it past every backoff, then look at what was sent
      const { model, calls } = yield* stack([invalid, "never"])
      const chat = yield* Effect.fork(Effect.exit(model.chat(request)))
      yield* TestClock.adjust("1 minute")
      expect(yield* calls, "a non-retryable InvalidRequestError was sent again").toBe(1)
      expect(chat.unsafePoll(), "the chat did not end with the InvalidRequestError").toStrictEqual(Exit.succeed(Exit.fail(invalid)))

      const streamed = yield* stack([invalid, { events: [{ _tag: "TextDelta", text: "never" }] }])
      const stream = yield* Effect.fork(Effect.exit(Stream.runDrain(streamed.model.stream(request))))
      yield* TestClock.adjust("1 minute")
      expect(yield* streamed.calls, "a stream that failed with a non-retryable InvalidRequestError was opened again").toBe(1)
      expect(stream.unsafePoll(), "the stream did not end with the InvalidRequestError").toStrictEqual(Exit.succeed(Exit.fail(invalid)))
    }))

  it.scoped("waits for retryAfter when it is longer than the backoff", () =>
    Effect.gen(function* () {
      const { model, calls } = yield* stack([rateLimited("5 seconds"), "ok"])
      const fiber = yield* Effect.fork(model.chat(request))
      yield* TestClock.adjust("4999 millis")
      expect(yield* calls).toBe(1)
      yield* TestClock.adjust("1 millis")
      expect((yield* Fiber.join(fiber)).text).toBe("ok")
      expect(yield* calls).toBe(2)
    }))

  it.scoped("honours a retryAfter beyond maxDelay, up to maxRetryAfter", () =>
    Effect.gen(function* () {
      const { model, calls } = yield* stack([rateLimited("45 seconds"), "ok"], Retry.schedule({ jitter: false, maxDelay: "1 second" }))
      const fiber = yield* Effect.fork(model.chat(request))
      yield* TestClock.adjust("44 seconds")
      expect(yield* calls).toBe(1)
      yield* TestClock.adjust("1 second")
      expect((yield* Fiber.join(fiber)).text).toBe("ok")
    }))

  it.scoped("fails at once with the original error when retryAfter exceeds maxRetryAfter", () =>
    Effect.gen(function* () {
      const error = rateLimited("61 seconds")
      const { model, calls } = yield* stack([error, "never"])
      const chat = yield* Effect.fork(Effect.exit(model.chat(request)))
      yield* TestClock.adjust("2 minutes")
      expect(yield* calls, "a retryAfter beyond maxRetryAfter was waited for and retried").toBe(1)
      expect(chat.unsafePoll()).toStrictEqual(Exit.succeed(Exit.fail(error)))
    }))

  it.effect("caps each backoff at maxDelay and keeps jitter within [delay × (1 − jitter), delay]", () =>
    Effect.gen(function* () {
      const resolved = Retry.resolveOptions({ initialDelay: "1 second", factor: 3, maxDelay: "5 seconds" })
      expect([1, 2, 3, 4].map((n) => Retry.backoffMillis(resolved, n))).toEqual([1000, 3000, 5000, 5000])
      const policy = Retry.schedule({ initialDelay: "1 second", factor: 3, maxDelay: "5 seconds", maxRetries: 10 })
      let state = policy.initial
      const delays: Array<number> = []
      for (let i = 0; i < 6; i++) {
        const [next, out] = yield* policy.step(0, server(), state)
        state = next
        delays.push(Duration.toMillis(out))
      }
      const caps = [1000, 3000, 5000, 5000, 5000, 5000]
      delays.forEach((delay, i) => {
        expect(delay).toBeGreaterThanOrEqual(caps[i]! / 2)
        expect(delay).toBeLessThanOrEqual(caps[i]!)
      })
      expect(new Set(delays.slice(2)).size).toBeGreaterThan(1)
    }))

  it("classifies statuses: 408, 409, 429, 5xx and 529 retry; 400, 401, 403 do not; x-should-retry overrides", () => {
    const of = (status: number, headers: Record<string, string> = {}) =>
      fromResponse({ ...ids, status, headers, body: "{}", now: 0 })
    const retried = (status: number, headers?: Record<string, string>) => Retry.isRetryable(of(status, headers))
    expect([408, 409, 429, 500, 502, 503, 529].map((s) => retried(s))).toEqual([true, true, true, true, true, true, true])
    expect([400, 401, 403, 404, 422].map((s) => retried(s))).toEqual([false, false, false, false, false])
    expect(retried(400, { "x-should-retry": "true" })).toBe(true)
    expect(retried(503, { "x-should-retry": "false" })).toBe(false)
    expect(Retry.isRetryable(new LlmError.NetworkError({ ...ids, message: "reset" }))).toBe(true)
    expect(Retry.isRetryable(new LlmError.TimeoutError({ ...ids, message: "slow", phase: "firstToken" }))).toBe(true)
  })

  it("rejects nonsense options with a clear error", () => {
    expect(() => Retry.schedule({ maxRetries: -1 })).toThrow(/maxRetries/)
    expect(() => Retry.schedule({ jitter: 2 })).toThrow(/jitter/)
  })
})

describe("Retry.layer streams", () => {
  const events = (text: string): ReadonlyArray<Message.StreamEvent> => [
    { _tag: "TextDelta", text },
    {
      _tag: "Finish",
      finishReason: "stop",
      usage: { inputTokens: 1, outputTokens: 1, totalTokens: 2, estimated: false },
      id: "x",
      ...ids
    }
  ]

  it.scoped("retries a stream that fails before its first event", () =>
    Effect.gen(function* () {
      const { model, calls } = yield* stack([server(), { events: events("whole answer") }])
      const fiber = yield* Effect.fork(LanguageModel.collect(model.stream(request)))
      yield* TestClock.adjust("1 second")
      expect((yield* Fiber.join(fiber)).text).toBe("whole answer")
      expect(yield* calls).toBe(2)
    }))

  it.scoped("never retries after the first event: the stream fails with a partial StreamError and its text", () =>
    Effect.gen(function* () {
      const cut = { events: [{ _tag: "TextDelta" as const, text: "Hello, " }, { _tag: "TextDelta" as const, text: "wor" }], failWith: server() }
      const { model, calls } = yield* stack([cut, { events: events("Hello, world") }], Retry.schedule({ jitter: false }).pipe(Schedule.map(() => 0)))
      const received: Array<string> = []
      const exit = yield* model.stream(request).pipe(
        Stream.runForEach((event) => Effect.sync(() => event._tag === "TextDelta" && received.push(event.text))),
        Effect.exit
      )
      expect(yield* calls).toBe(1)
      expect(received.join("")).toBe("Hello, wor")
      expect(Exit.isFailure(exit)).toBe(true)
      const error = Exit.isFailure(exit) ? exit.cause : undefined
      const failure = error?._tag === "Fail" ? error.error : undefined
      expect(failure?._tag).toBe("StreamError")
      expect(failure).toMatchObject({ partial: true, partialText: "Hello, wor", retryable: false })
    }))

  it.scoped("even a schedule that retries everything cannot repeat a delivered prefix", () =>
    Effect.gen(function* () {
      const cut = { events: [{ _tag: "TextDelta" as const, text: "abc" }], failWith: server() }
      const { model, calls } = yield* stack([cut, { events: events("abcdef") }], Schedule.recurs(5) as never)
      const exit = yield* Effect.exit(LanguageModel.collect(model.stream(request)))
      expect(yield* calls).toBe(1)
      expect(exit).toMatchObject({ _tag: "Failure" })
    }))
})

/**
 * Over a provider's own stream, Retry asks the stream what it delivered instead of counting
 * its chunks in a stage of its own; these pin that path to the same behaviour as the counting one.
 */
describe("Retry.layer over a provider's stream", () => {
  const provider = (baseUrl: string, policy: Schedule.Schedule<unknown, LlmError.LlmError>, options: { idleTimeout?: Duration.DurationInput } = {}) =>
    Retry.layer(policy).pipe(
      Layer.provide(OpenAiCompatible.layer({ model: "gpt-4o-mini", baseUrl, ...options })),
      Layer.provide(KeyPool.layer({ providerId: "openai", keys: ["sk-retry-test"] })),
      Layer.provide(RateLimiter.unlimited),
      Layer.provide(Transport.layerUndici)
    )
  const received = <R>(stream: Stream.Stream<Message.StreamEvent, LlmError.LlmError, R>) =>
    Effect.gen(function* () {
      const texts: Array<string> = []
      const exit = yield* Effect.exit(Stream.runForEach(stream, (event) => Effect.sync(() => event._tag === "TextDelta" && texts.push(event.text))))
      return { text: texts.join(""), exit }
    })
  const failureOf = (exit: Exit.Exit<unknown, LlmError.LlmError>) =>
    Exit.isFailure(exit) && exit.cause._tag === "Fail" ? exit.cause.error : undefined

  it.live("a failure before the first event is retried, and the retry's stream is whole", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({ reply: { text: "one two three four", chunks: 4 } })
      yield* fake.inject({ _tag: "Status", status: 503 })
      const { text, exit } = yield* received(LanguageModel.stream(request)).pipe(
        Effect.provide(provider(fake.baseUrl, Schedule.recurs(3)))
      )
      expect(Exit.isSuccess(exit)).toBe(true)
      expect(text).toBe("one two three four")
      expect((yield* fake.requests).length).toBe(2)
    }).pipe(Effect.scoped))

  it.live("a cut after events is never retried, even by a schedule that retries everything: a partial StreamError with the text received", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({ reply: { text: "one two three four five six", chunks: 6 } })
      yield* fake.inject({ _tag: "CutStream", afterChunks: 3 })
      const { text, exit } = yield* received(LanguageModel.stream(request)).pipe(
        Effect.provide(provider(fake.baseUrl, Schedule.recurs(5)))
      )
      expect(text.length).toBeGreaterThan(0)
      expect(failureOf(exit)).toMatchObject({ _tag: "StreamError", partial: true, partialText: text, retryable: false })
      expect((yield* fake.requests).length).toBe(1)
    }).pipe(Effect.scoped))

  it.live("a deadline after events becomes a partial StreamError with the text received, and is not retried", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({})
      const first = `data: ${JSON.stringify({ id: "c", object: "chat.completion.chunk", created: 1, model: "gpt-4o-mini", choices: [{ index: 0, delta: { content: "Hello" } }] })}\n\n`
      yield* fake.inject({ _tag: "Raw", body: [first, "data: [DONE]\n\n"], contentType: "text/event-stream", chunkDelayMs: 2_000 })
      const { text, exit } = yield* received(LanguageModel.stream(request)).pipe(
        Effect.provide(provider(fake.baseUrl, Schedule.recurs(5), { idleTimeout: "150 millis" }))
      )
      expect(text).toBe("Hello")
      expect(failureOf(exit)).toMatchObject({ _tag: "StreamError", partial: true, partialText: "Hello", retryable: false })
      expect((yield* fake.requests).length).toBe(1)
    }).pipe(Effect.scoped))
})
