/**
 * The stream path of src/internal/request/stream.ts (`streamChannel`): the lease lives exactly as long as
 * the stream, outcomes are reported against the key, and failures keep their meaning.
 * These pin the behaviour the benchmark-driven rewrite of `streamChannel`/`frames` must keep.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Logger, LogLevel, Option, Redacted, Stream } from "effect"
import { KeyPool, LanguageModel, Message, OpenAiCompatible, RateLimiter, Transport } from "../../../src/index.js"
import * as Testing from "../../../src/Testing.js"

const TEXT = "one two three four five six seven eight"

const withStack = (fake: Testing.FakeProviderService) =>
  OpenAiCompatible.layer({ model: "gpt-4o-mini", baseUrl: fake.baseUrl }).pipe(
    Layer.provideMerge(KeyPool.layer({ providerId: "openai", keys: [Redacted.make("sk-a"), Redacted.make("sk-b")] })),
    Layer.provide(RateLimiter.unlimited),
    Layer.provide(Transport.layerUndici)
  )

const textOf = (events: ReadonlyArray<Message.StreamEvent>) => events.map((e) => (e._tag === "TextDelta" ? e.text : "")).join("")

const inFlight = Effect.map(KeyPool.status, (keys) => keys.reduce((n, k) => n + k.inFlight, 0))

describe("streamChannel", () => {
  it.scoped("a finished stream reports success and frees its lease", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({ reply: { text: TEXT, chunks: 8 } })
      yield* Effect.gen(function* () {
        const events = yield* Stream.runCollect(LanguageModel.stream(Message.request("hi")))
        expect(textOf([...events])).toBe(TEXT)
        expect([...events].at(-1)?._tag).toBe("Finish")
        expect(yield* inFlight).toBe(0)
        const keys = yield* KeyPool.status
        expect(keys.reduce((n, k) => n + k.successes, 0)).toBe(1)
      }).pipe(Effect.provide(withStack(fake)))
    }))

  it.scoped("the lease is held while the stream is read, and freed when the reader stops early", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({ reply: { text: TEXT, chunks: 8, chunkDelayMs: 20 } })
      yield* Effect.gen(function* () {
        const held = yield* LanguageModel.stream(Message.request("hi")).pipe(
          Stream.filter((e) => e._tag === "TextDelta"),
          Stream.take(1),
          Stream.mapEffect(() => inFlight),
          Stream.runCollect
        )
        expect([...held]).toEqual([1])
        expect(yield* inFlight).toBe(0)
      }).pipe(Effect.provide(withStack(fake)))
    }))

  it.live("an interrupted stream frees its lease", () =>
    Effect.scoped(Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({ reply: { text: TEXT, chunks: 8, chunkDelayMs: 50 } })
      yield* Effect.gen(function* () {
        const result = yield* Effect.timeoutOption(Stream.runDrain(LanguageModel.stream(Message.request("hi"))), "120 millis")
        expect(result._tag).toBe("None")
        expect(yield* inFlight).toBe(0)
      }).pipe(Effect.provide(withStack(fake)))
    })))

  it.scoped("a 429 before the first byte is re-tried on the other key; the first key cools down", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({ reply: { text: TEXT }, faults: [{ _tag: "RateLimit", retryAfterSeconds: 20 }] })
      yield* Effect.gen(function* () {
        const response = yield* LanguageModel.collect(LanguageModel.stream(Message.request("hi")))
        expect(response.text).toBe(TEXT)
        const keys = yield* KeyPool.status
        expect(keys.filter((k) => k.cooldownUntil !== undefined).map((k) => k.failures)).toEqual([1])
        expect(keys.reduce((n, k) => n + k.successes, 0)).toBe(1)
        expect(yield* inFlight).toBe(0)
        expect((yield* fake.requests).length).toBe(2)
      }).pipe(Effect.provide(withStack(fake)))
    }))

  it.scoped("a stream cut after output began fails with a partial StreamError, reported as a failure", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({ reply: { text: TEXT, chunks: 8 }, faults: [{ _tag: "CutStream", afterChunks: 4, mode: "end" }] })
      yield* Effect.gen(function* () {
        const error = yield* Effect.flip(LanguageModel.collect(LanguageModel.stream(Message.request("hi"))))
        expect(error._tag).toBe("StreamError")
        expect(error._tag === "StreamError" && error.partial).toBe(true)
        const keys = yield* KeyPool.status
        expect(keys.reduce((n, k) => n + k.failures, 0)).toBe(1)
        expect(keys.reduce((n, k) => n + k.successes, 0)).toBe(0)
        expect(yield* inFlight).toBe(0)
      }).pipe(Effect.provide(withStack(fake)))
    }))

  it.scoped("a connection destroyed after output began is a partial StreamError too, and frees the lease", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({ reply: { text: TEXT, chunks: 8, chunkDelayMs: 10 }, faults: [{ _tag: "CutStream", afterChunks: 4 }] })
      yield* Effect.gen(function* () {
        const error = yield* Effect.flip(Stream.runDrain(LanguageModel.stream(Message.request("hi"))))
        expect(error._tag).toBe("StreamError")
        expect(error._tag === "StreamError" && error.partial).toBe(true)
        expect(yield* inFlight).toBe(0)
        expect((yield* KeyPool.status).reduce((n, k) => n + k.failures, 0)).toBe(1)
      }).pipe(Effect.provide(withStack(fake)))
    }))

  it.scoped("an error event in the stream fails it and is reported against the key", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({ reply: { text: TEXT, chunks: 8 }, faults: [{ _tag: "StreamErrorEvent", afterChunks: 3 }] })
      yield* Effect.gen(function* () {
        const error = yield* Effect.flip(Stream.runDrain(LanguageModel.stream(Message.request("hi"))))
        expect(["StreamError", "ServerError"]).toContain(error._tag)
        expect(yield* inFlight).toBe(0)
        expect((yield* KeyPool.status).reduce((n, k) => n + k.failures, 0)).toBe(1)
      }).pipe(Effect.provide(withStack(fake)))
    }))

  it.scoped("a reader that stops early frees the lease and reports neither success nor failure", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({ reply: { text: TEXT, chunks: 8, chunkDelayMs: 20 } })
      yield* Effect.gen(function* () {
        const first = yield* LanguageModel.stream(Message.request("hi")).pipe(
          Stream.filter((e) => e._tag === "TextDelta"),
          Stream.take(1),
          Stream.runCollect
        )
        expect(first.length).toBe(1)
        expect(yield* inFlight).toBe(0)
        const keys = yield* KeyPool.status
        expect(keys.reduce((n, k) => n + k.successes, 0)).toBe(0)
        expect(keys.reduce((n, k) => n + k.failures, 0)).toBe(0)
      }).pipe(Effect.provide(withStack(fake)))
    }))

  it.scoped("a reader that stops at Finish, before the body ends, reports success", () =>
    Effect.gen(function* () {
      // the fake sends [DONE] after the usage frame: stopping at Finish leaves it unread
      const fake = yield* Testing.FakeProvider.make({ reply: { text: TEXT, chunks: 8 } })
      yield* Effect.gen(function* () {
        const events = yield* LanguageModel.stream(Message.request("hi")).pipe(
          Stream.takeUntil((e) => e._tag === "Finish"),
          Stream.runCollect
        )
        expect([...events].at(-1)?._tag).toBe("Finish")
        expect(yield* inFlight).toBe(0)
        const keys = yield* KeyPool.status
        expect(keys.reduce((n, k) => n + k.successes, 0)).toBe(1)
        expect(keys.reduce((n, k) => n + k.failures, 0)).toBe(0)
      }).pipe(Effect.provide(withStack(fake)))
    }))
})

/**
 * Effect logs "Fiber terminated with an unhandled error" (at Debug) for every forked fiber
 * that fails, and `Stream.run*` always forks one to run the channel — so a failing
 * `Stream.fail("x")` logs it once too. The stream path must add no failing fiber of its own.
 */
describe("unhandled fiber failures", () => {
  const counting = () => {
    const lines: Array<string> = []
    const logger = Logger.make(({ message }) => {
      const text = Array.isArray(message) ? message.join(" ") : String(message)
      if (text.includes("unhandled error")) lines.push(text)
    })
    return { lines, layer: Logger.replace(Logger.defaultLogger, logger) }
  }

  it.scoped("a failed stream logs no more than Effect's own Stream.runDrain does; a failed chat logs none", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({ reply: { text: TEXT, chunks: 8 } })
      const { lines, layer } = counting()
      const logged = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
        Effect.gen(function* () {
          lines.length = 0
          yield* effect.pipe(Effect.provide(layer), Logger.withMinimumLogLevel(LogLevel.All))
          return lines.length
        })
      const baseline = yield* logged(Effect.flip(Stream.runDrain(Stream.fail("x"))))
      yield* Effect.gen(function* () {
        yield* fake.inject({ _tag: "Status", status: 500 })
        expect(yield* logged(Effect.flip(Stream.runDrain(LanguageModel.stream(Message.request("hi")))))).toBe(baseline)
        yield* fake.inject({ _tag: "CutStream", afterChunks: 2, mode: "end" })
        expect(yield* logged(Effect.flip(Stream.runDrain(LanguageModel.stream(Message.request("hi")))))).toBe(baseline)
        yield* fake.inject({ _tag: "StreamErrorEvent", afterChunks: 2 })
        expect(yield* logged(Effect.flip(Stream.runDrain(LanguageModel.stream(Message.request("hi")))))).toBe(baseline)
        // the consumer can silence Effect's own: the forked fiber inherits the level
        yield* fake.inject({ _tag: "Status", status: 500 })
        expect(
          yield* logged(Effect.flip(Stream.runDrain(LanguageModel.stream(Message.request("hi")))).pipe(
            Effect.withUnhandledErrorLogLevel(Option.none())
          ))
        ).toBe(0)
        yield* fake.inject({ _tag: "Status", status: 500 })
        expect(yield* logged(Effect.flip(LanguageModel.chat(Message.request("hi"))))).toBe(0)
      }).pipe(Effect.provide(withStack(fake)))
    }))
})
