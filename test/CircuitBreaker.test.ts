import { describe, expect, it } from "@effect/vitest"
import { ConfigError, Context, Deferred, Effect, Either, Exit, Fiber, Layer, Stream, TestClock } from "effect"
import { CircuitBreaker, LanguageModel, LlmError, Message } from "../src/index.js"
import * as Testing from "../src/Testing.js"

const ids = { provider: "mock", model: "mock-model" }
const down = new LlmError.ServerError({ ...ids, message: "503", status: 503 })
const request = Message.request("hi")

/** A breaker over a mock whose answers `next()` picks, with the number of calls it saw. */
const setup = (options: CircuitBreaker.Options, next: (call: number) => Testing.MockStep) =>
  Effect.gen(function* () {
    const mock = yield* Testing.makeMockModel({ steps: (_, call) => next(call) })
    const context = yield* Layer.build(
      CircuitBreaker.layer(options).pipe(
        Layer.provide(LanguageModel.layer(mock.service)),
        Layer.provideMerge(CircuitBreaker.layerRegistry)
      )
    )
    const model = Context.get(context, LanguageModel.LanguageModel)
    const status = Effect.map(Context.get(context, CircuitBreaker.Registry).status, (all) => all[0]!)
    return { model, status, calls: Effect.map(mock.requests, (r) => r.length) }
  })

const run = (model: LanguageModel.Service) => Effect.exit(model.chat(request))

describe("CircuitBreaker", () => {
  it.scoped("opens after N consecutive failures and then fails fast without calling the model", () =>
    Effect.gen(function* () {
      const { model, status, calls } = yield* setup({ consecutiveFailures: 3 }, () => down)
      for (let i = 0; i < 3; i++) expect(yield* run(model)).toStrictEqual(Exit.fail(down))
      expect((yield* status).state).toBe("open")
      const exit = yield* run(model)
      expect(exit).toMatchObject({ _tag: "Failure", cause: { error: { _tag: "CircuitOpenError", retryable: true } } })
      expect(yield* calls).toBe(3)
    }))

  it.scoped("a success resets the consecutive count", () =>
    Effect.gen(function* () {
      const { model, status } = yield* setup({ consecutiveFailures: 3, minimumRequests: 100 }, (n) => (n % 3 === 2 ? "ok" : down))
      for (let i = 0; i < 12; i++) yield* run(model)
      expect((yield* status).state).toBe("closed")
    }))

  it.scoped("opens on the failure ratio in the sliding window, once the window holds minimumRequests", () =>
    Effect.gen(function* () {
      // fail, ok, fail, ok… never two failures in a row, a 50% ratio
      const { model, status } = yield* setup(
        { consecutiveFailures: 99, failureRate: 0.5, windowSize: 10, minimumRequests: 6 },
        (n) => (n % 2 === 0 ? down : "ok")
      )
      for (let i = 0; i < 4; i++) yield* run(model)
      expect(yield* status).toMatchObject({ state: "closed", requestsInWindow: 4, failureRate: 0.5 })
      yield* run(model) // the 5th call: a failure, but the window is below its minimum
      expect((yield* status).state).toBe("closed")
      yield* run(model) // ok: 6 calls, 3 failures, but the rule is checked on failures
      expect((yield* status).state).toBe("closed")
      yield* run(model) // a failure with 7 calls, 4 failures: ≥ 50%
      expect((yield* status).state).toBe("open")
    }))

  it.scoped("stays closed below the ratio", () =>
    Effect.gen(function* () {
      const { model, status } = yield* setup(
        { consecutiveFailures: 99, failureRate: 0.5, windowSize: 10, minimumRequests: 6 },
        (n) => (n % 3 === 0 ? down : "ok")
      )
      for (let i = 0; i < 30; i++) yield* run(model)
      expect((yield* status).state).toBe("closed")
    }))

  it.scoped("after the cooldown it is half-open, lets one probe through, and closes on its success", () =>
    Effect.gen(function* () {
      const gate = yield* Deferred.make<void>()
      let healthy = false
      const mock = yield* Testing.makeMockModel({ steps: () => (healthy ? "ok" : down) })
      const slow: LanguageModel.Service = {
        ...mock.service,
        chat: (r) => Effect.zipRight(healthy ? Deferred.await(gate) : Effect.void, mock.service.chat(r))
      }
      const breaker = yield* CircuitBreaker.make({ ...ids, consecutiveFailures: 2, cooldown: "10 seconds" })
      const model = yield* breaker.decorator(slow)
      yield* run(model)
      yield* run(model)
      expect((yield* breaker.status).state).toBe("open")
      expect((yield* breaker.status).retryAt).toBe(10_000)
      yield* TestClock.adjust("9 seconds")
      expect(yield* run(model)).toMatchObject({ cause: { error: { _tag: "CircuitOpenError" } } })
      yield* TestClock.adjust("1 second")
      expect((yield* breaker.status).state).toBe("halfOpen")
      healthy = true
      const probe = yield* Effect.fork(model.chat(request))
      yield* Effect.yieldNow()
      // while the probe is in flight, everyone else still fails fast
      expect(yield* run(model)).toMatchObject({ cause: { error: { _tag: "CircuitOpenError" } } })
      yield* Deferred.succeed(gate, undefined)
      expect((yield* Fiber.join(probe)).text).toBe("ok")
      expect(yield* breaker.status).toMatchObject({ state: "closed", consecutiveFailures: 0, requestsInWindow: 0 })
      expect(Exit.isSuccess(yield* run(model))).toBe(true)
      expect((yield* mock.requests).length).toBe(4)
    }))

  it.scoped("a failed probe opens it again for another cooldown", () =>
    Effect.gen(function* () {
      const { model, status, calls } = yield* setup({ consecutiveFailures: 1, cooldown: "5 seconds" }, () => down)
      yield* run(model)
      yield* TestClock.adjust("5 seconds")
      expect(yield* run(model)).toStrictEqual(Exit.fail(down))
      expect(yield* status).toMatchObject({ state: "open", openedAt: 5000, retryAt: 10_000 })
      expect(yield* run(model)).toMatchObject({ cause: { error: { _tag: "CircuitOpenError" } } })
      expect(yield* calls).toBe(2)
    }))

  it.scoped("ignores rate limits, and counts answers such as 400 as the endpoint being up", () =>
    Effect.gen(function* () {
      const limited = new LlmError.RateLimitError({ ...ids, message: "429", status: 429 })
      const invalid = new LlmError.InvalidRequestError({ ...ids, message: "400", status: 400 })
      const { model, status } = yield* setup(
        { consecutiveFailures: 2, failureRate: 0.9, minimumRequests: 2 },
        (n) => [down, limited, invalid, down, limited, invalid][n % 6]!
      )
      for (let i = 0; i < 12; i++) yield* run(model)
      expect(yield* status).toMatchObject({ state: "closed", requestsInWindow: 8 })
    }))

  it.scoped("streams: a failing stream counts, an abandoned probe frees the half-open slot", () =>
    Effect.gen(function* () {
      let call = 0
      const mock = yield* Testing.makeMockModel({ steps: ["fine"] })
      const model: LanguageModel.Service = {
        ...mock.service,
        stream: (r) =>
          Stream.suspend(() => {
            const n = call++
            if (n < 2) return Stream.concat(Stream.make({ _tag: "TextDelta" as const, text: "a" }), Stream.fail(down))
            if (n === 2) return Stream.concat(Stream.make({ _tag: "TextDelta" as const, text: "a" }), Stream.never)
            return mock.service.stream(r)
          })
      }
      const breaker = yield* CircuitBreaker.make({ ...ids, consecutiveFailures: 2, cooldown: "1 second" })
      const wrapped = yield* breaker.decorator(model)
      for (let i = 0; i < 2; i++) yield* Effect.exit(Stream.runDrain(wrapped.stream(request)))
      expect((yield* breaker.status).state).toBe("open")
      yield* TestClock.adjust("1 second")
      // the probe hangs and its caller walks away: the breaker must not stay wedged
      yield* Stream.runDrain(Stream.take(wrapped.stream(request), 1))
      expect((yield* breaker.status).state).toBe("halfOpen")
      const response = yield* LanguageModel.collect(wrapped.stream(request))
      expect(response.text).toBe("fine")
      expect((yield* breaker.status).state).toBe("closed")
    }))

  it("rejects nonsense options", () => {
    expect(() => Effect.runSync(CircuitBreaker.make({ ...ids, consecutiveFailures: 0 }))).toThrow(/consecutiveFailures/)
  })

  it.effect("nonsense options are a typed ConfigError naming the option, from make and from the layer", () =>
    Effect.gen(function* () {
      for (const [options, name] of [[{ consecutiveFailures: 0 }, "consecutiveFailures"], [{ failureRate: Number.NaN }, "failureRate"], [{ windowSize: 2.5 }, "windowSize"], [{ minimumRequests: -1 }, "minimumRequests"]] as const) {
        const made = yield* Effect.either(CircuitBreaker.make({ ...ids, ...options }))
        expect(Either.isLeft(made), `${name} was accepted`).toBe(true)
        expect((made as Either.Left<ConfigError.ConfigError, unknown>).left).toMatchObject({ _op: "InvalidData", path: [name] })
      }
      const mock = yield* Testing.makeMockModel({ provider: "p", model: "m", steps: () => "x" })
      const layer: Layer.Layer<LanguageModel.LanguageModel, ConfigError.ConfigError, LanguageModel.LanguageModel> = CircuitBreaker.layer({ windowSize: 0 })
      const built = yield* Effect.either(Effect.scoped(Layer.build(layer.pipe(Layer.provide(LanguageModel.layer(mock.service))))))
      expect(Either.isLeft(built) && ConfigError.isConfigError(built.left)).toBe(true)
    }))
})
