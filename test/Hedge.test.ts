import { describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Stream from "effect/Stream"
import * as Supervisor from "effect/Supervisor"
import * as TestClock from "effect/TestClock"
import { Budget, Fallback, Hedge, LanguageModel, LlmError, Message, ResponseCache, Retry, Usage } from "../src/index.js"

/**
 * A model whose n-th call (0-based) answers after `latency(n)` millis of the Clock (TestClock
 * here), text `reply-n`; a stream's first event comes after that latency, then two more at
 * once. It records starts, interruptions and ends.
 */
const timed = (latency: (call: number) => number, fail?: (call: number) => LlmError.LlmError | undefined) => {
  const log = { started: [] as Array<number>, interrupted: [] as Array<number>, completed: [] as Array<number> }
  let calls = 0
  const reply = (n: number): Message.ChatResponse => ({
    id: `r${n}`,
    model: "m",
    provider: "p",
    text: `reply-${n}`,
    toolCalls: [],
    finishReason: "stop",
    usage: { inputTokens: 10, outputTokens: 5, totalTokens: 15, estimated: false }
  })
  const wait = (n: number) =>
    Effect.sleep(latency(n)).pipe(
      Effect.zipRight(Effect.suspend(() => {
        const error = fail?.(n)
        return error === undefined ? Effect.void : Effect.fail(error)
      })),
      Effect.onInterrupt(() => Effect.sync(() => log.interrupted.push(n)))
    )
  const service = LanguageModel.make({
    provider: "p",
    model: "m",
    chat: () =>
      Effect.suspend(() => {
        const n = calls++
        log.started.push(n)
        return Effect.as(Effect.tap(wait(n), () => Effect.sync(() => log.completed.push(n))), reply(n))
      }),
    stream: () =>
      Stream.suspend(() => {
        const n = calls++
        log.started.push(n)
        const events = LanguageModel.responseToEvents(reply(n))
        return Stream.concat(
          Stream.fromEffect(Effect.as(wait(n), events[0]!)),
          Stream.fromIterable(events.slice(1))
        ).pipe(Stream.ensuring(Effect.sync(() => log.completed.push(n))))
      })
  })
  return { layer: Layer.succeed(LanguageModel.LanguageModel, service), log }
}

const textOf = (events: Chunk.Chunk<Message.StreamEvent>) =>
  Chunk.toReadonlyArray(events).flatMap((e) => (e._tag === "TextDelta" ? [e.text] : [])).join("")

/** The fibers started under `effect`, by a supervisor. */
const fibersStartedBy = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.suspend(() => {
    let started = 0
    const count = new (class extends Supervisor.AbstractSupervisor<number> {
      get value() {
        return Effect.sync(() => started)
      }
      override onStart() {
        started++
      }
    })()
    return Effect.map(Effect.supervised(effect, count), (a) => [a, started] as const)
  })

/** Node's pending timers. */
const timers = () => process.getActiveResourcesInfo().filter((resource) => resource === "Timeout").length

/** Yields (real time, a millisecond at a time) until `done`: a wait on the live clock with no timing asserted. */
const until = (done: () => boolean) =>
  Effect.gen(function* () {
    for (let i = 0; i < 10_000 && !done(); i++) yield* Effect.sleep("1 millis")
    expect(done()).toBe(true)
  })

const serverError = new LlmError.ServerError({ provider: "p", model: "m", message: "boom", status: 500 })

describe("Hedge", () => {
  it.effect("rejects options out of range with a ConfigError naming them", () =>
    Effect.gen(function* () {
      const bad: ReadonlyArray<readonly [Hedge.Options, string]> = [
        [{ after: "100 millis", max: 0 }, "max"],
        [{ after: "100 millis", max: 1.5 }, "max"],
        [{ after: "100 millis", budget: 0 }, "budget"],
        [{ after: "100 millis", budget: 1.5 }, "budget"],
        [{ after: -5 }, "after"],
        [{ after: { percentile: 100 } }, "after.percentile"],
        [{ after: { percentile: 95, window: 10, warmup: 11 } }, "after.warmup"],
        [{ after: { percentile: 95, window: 0 } }, "after.window"],
        [{ after: { percentile: 95, floor: -1 } }, "after.floor"]
      ]
      for (const [options, path] of bad) {
        const result = yield* Effect.either(Hedge.make(options))
        expect(Either.isLeft(result), path).toBe(true)
        if (Either.isLeft(result)) expect(String(result.left)).toContain(path)
      }
      expect(Either.isRight(yield* Effect.either(Hedge.make({ after: "1 second", max: 2, budget: 1 })))).toBe(true)
    }))

  it.effect("a slow first attempt is hedged after the delay; the first success wins and the other is interrupted", () =>
    Effect.gen(function* () {
      const model = timed((n) => (n === 0 ? 10_000 : 100))
      const hedge = yield* Hedge.make({ after: "500 millis", budget: 1 })
      const hedged = yield* hedge.decorator(yield* Effect.provide(LanguageModel.LanguageModel, model.layer))
      const fiber = yield* Effect.fork(hedged.chat(Message.request("hi")))
      yield* TestClock.adjust("499 millis")
      expect(model.log.started).toEqual([0])
      yield* TestClock.adjust("1 millis")
      expect(model.log.started).toEqual([0, 1])
      yield* TestClock.adjust("100 millis")
      const response = yield* Fiber.join(fiber)
      expect(response.text).toBe("reply-1")
      expect(model.log.interrupted).toEqual([0])
      const stats = yield* hedge.stats
      expect(stats).toMatchObject({ requests: 1, hedges: 1, refused: 0 })
      expect(stats.wins).toEqual([0, 1])
    }))

  it.effect("a fast first attempt sends nothing more", () =>
    Effect.gen(function* () {
      const model = timed(() => 100)
      const hedge = yield* Hedge.make({ after: "500 millis", budget: 1 })
      const hedged = yield* hedge.decorator(yield* Effect.provide(LanguageModel.LanguageModel, model.layer))
      const fiber = yield* Effect.fork(hedged.chat(Message.request("hi")))
      yield* TestClock.adjust("1 second")
      expect((yield* Fiber.join(fiber)).text).toBe("reply-0")
      expect(model.log.started).toEqual([0])
      expect((yield* hedge.stats).hedges).toBe(0)
    }))

  it.effect("a failure is not hedged; a failure while another attempt runs waits for it", () =>
    Effect.gen(function* () {
      // fails at once: the call fails, nothing else is sent
      const failing = timed(() => 10, () => serverError)
      const h1 = yield* Hedge.make({ after: "500 millis", budget: 1 })
      const m1 = yield* h1.decorator(yield* Effect.provide(LanguageModel.LanguageModel, failing.layer))
      const f1 = yield* Effect.fork(Effect.either(m1.chat(Message.request("hi"))))
      yield* TestClock.adjust("2 seconds")
      const r1 = yield* Fiber.join(f1)
      expect(Either.isLeft(r1) && r1.left._tag).toBe("ServerError")
      expect(failing.log.started).toEqual([0])
      // the first attempt fails after the hedge went: the hedge answers
      const late = timed((n) => (n === 0 ? 1_000 : 800), (n) => (n === 0 ? serverError : undefined))
      const h2 = yield* Hedge.make({ after: "500 millis", budget: 1 })
      const m2 = yield* h2.decorator(yield* Effect.provide(LanguageModel.LanguageModel, late.layer))
      const f2 = yield* Effect.fork(m2.chat(Message.request("hi")))
      yield* TestClock.adjust("2 seconds")
      expect((yield* Fiber.join(f2)).text).toBe("reply-1")
    }))

  it.effect("the budget caps the share of calls hedged", () =>
    Effect.gen(function* () {
      const model = timed(() => 1_000)
      const hedge = yield* Hedge.make({ after: "100 millis", budget: 0.1 })
      const hedged = yield* hedge.decorator(yield* Effect.provide(LanguageModel.LanguageModel, model.layer))
      const fiber = yield* Effect.fork(Effect.forEach(Array.from({ length: 200 }, (_, i) => i), () => hedged.chat(Message.request("hi")), {
        concurrency: 20
      }))
      for (let i = 0; i < 40; i++) yield* TestClock.adjust("500 millis")
      yield* Fiber.join(fiber)
      const stats = yield* hedge.stats
      expect(stats.requests).toBe(200)
      // every call was slow, so every call wanted a hedge: the budget let about one in ten go
      expect(stats.hedges).toBeLessThanOrEqual(0.1 * 200 + 1)
      expect(stats.hedges).toBeGreaterThanOrEqual(0.1 * 200 - 2)
      expect(stats.refused).toBe(200 - stats.hedges)
      expect(model.log.started.length).toBe(200 + stats.hedges)
    }))

  it.effect("a percentile delay waits for its warm-up, then follows the window, never below its floor", () =>
    Effect.gen(function* () {
      // latencies 100, 200, …, 1000 ms, then a slow one
      const model = timed((n) => (n < 10 ? (n + 1) * 100 : n === 10 ? 5_000 : 100))
      const hedge = yield* Hedge.make({ after: { percentile: 50, warmup: 10, window: 100, floor: "50 millis" }, budget: 1 })
      const hedged = yield* hedge.decorator(yield* Effect.provide(LanguageModel.LanguageModel, model.layer))
      for (let i = 0; i < 10; i++) {
        const fiber = yield* Effect.fork(hedged.chat(Message.request("hi")))
        yield* TestClock.adjust("1 second")
        yield* Fiber.join(fiber)
      }
      // warming up: nothing hedged, even the 1000 ms call
      expect((yield* hedge.stats).hedges).toBe(0)
      expect((yield* hedge.stats).delays["m"]).toBe(500)
      const fiber = yield* Effect.fork(hedged.chat(Message.request("hi")))
      yield* TestClock.adjust("500 millis")
      expect(model.log.started.length).toBe(12)
      yield* TestClock.adjust("100 millis")
      expect((yield* Fiber.join(fiber)).text).toBe("reply-11")
      // the floor holds when the window is faster
      const floored = timed(() => 1)
      const h2 = yield* Hedge.make({ after: { percentile: 50, warmup: 3, floor: "50 millis" } })
      const m2 = yield* h2.decorator(yield* Effect.provide(LanguageModel.LanguageModel, floored.layer))
      for (let i = 0; i < 3; i++) {
        const f = yield* Effect.fork(m2.chat(Message.request("hi")))
        yield* TestClock.adjust("10 millis")
        yield* Fiber.join(f)
      }
      expect((yield* h2.stats).delays["m"]).toBe(50)
    }))

  it.effect("a hedged stream never shows the events of two attempts", () =>
    Effect.gen(function* () {
      // attempt 0 delivers its first event at 600 ms, attempt 1 (sent at 500) at 600 too: one wins
      for (const [first, second, winner] of [[10_000, 100, "reply-1"], [600, 100, undefined], [550, 100, "reply-0"]] as const) {
        const model = timed((n) => (n === 0 ? first : second))
        const hedge = yield* Hedge.make({ after: "500 millis", budget: 1 })
        const hedged = yield* hedge.decorator(yield* Effect.provide(LanguageModel.LanguageModel, model.layer))
        const fiber = yield* Effect.fork(Stream.runCollect(hedged.stream(Message.request("hi"))))
        yield* TestClock.adjust("20 seconds")
        const events = yield* Fiber.join(fiber)
        const text = textOf(events)
        expect(["reply-0", "reply-1"]).toContain(text)
        if (winner !== undefined) expect(text).toBe(winner)
        const finishes = Chunk.filter(events, (e) => e._tag === "Finish")
        expect(Chunk.size(finishes)).toBe(1)
        expect(Chunk.size(events)).toBe(2)
        expect(model.log.started).toEqual([0, 1])
      }
    }))

  it.effect("interrupting the caller interrupts every attempt, for chat and for stream", () =>
    Effect.gen(function* () {
      for (const mode of ["chat", "stream"] as const) {
        const model = timed(() => 10_000)
        const hedge = yield* Hedge.make({ after: "500 millis", max: 2, budget: 1 })
        const hedged = yield* hedge.decorator(yield* Effect.provide(LanguageModel.LanguageModel, model.layer))
        const call = mode === "chat" ? hedged.chat(Message.request("hi")) : Stream.runDrain(hedged.stream(Message.request("hi")))
        const fiber = yield* Effect.fork(call)
        yield* TestClock.adjust("1500 millis")
        expect(model.log.started, mode).toEqual([0, 1, 2])
        const exit = yield* Fiber.interrupt(fiber)
        expect(Exit.isInterrupted(exit), mode).toBe(true)
        expect([...model.log.interrupted].sort(), mode).toEqual([0, 1, 2])
        expect(model.log.completed.filter((n) => !model.log.interrupted.includes(n)), mode).toEqual([])
      }
    }))

  it.effect("a loser is paid for: its estimated input goes to Usage", () =>
    Effect.gen(function* () {
      const model = timed((n) => (n === 0 ? 10_000 : 100))
      const tracker = yield* Usage.make()
      const hedge = yield* Effect.provideService(Hedge.make({ after: "500 millis", budget: 1 }), Usage.UsageTracker, tracker)
      const hedged = yield* hedge.decorator(yield* Effect.provide(LanguageModel.LanguageModel, model.layer))
      const fiber = yield* Effect.fork(hedged.chat(Message.request("a prompt of some length to estimate")))
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(fiber)
      const snapshot = yield* tracker.snapshot
      // the mock records nothing itself: what is there is the interrupted loser's estimate
      expect(snapshot.total.requests).toBe(1)
      expect(snapshot.total.inputTokens).toBeGreaterThan(0)
      expect(snapshot.total.outputTokens).toBe(0)
    }))

  it.effect("with a cache above: one fill, from the winner", () =>
    Effect.gen(function* () {
      const model = timed((n) => (n === 0 ? 10_000 : 100))
      const stack = ResponseCache.layer.pipe(
        Layer.provide(Hedge.layer({ after: "500 millis", budget: 1 })),
        Layer.provide(model.layer),
        Layer.provideMerge(ResponseCache.layerMemory({ maxEntries: 10, ttl: "1 hour" }))
      )
      yield* Effect.gen(function* () {
        const fiber = yield* Effect.fork(LanguageModel.chat(Message.request("hi")))
        yield* TestClock.adjust("1 second")
        expect((yield* Fiber.join(fiber)).text).toBe("reply-1")
        expect((yield* LanguageModel.chat(Message.request("hi"))).text).toBe("reply-1")
        expect((yield* ResponseCache.stats).size).toBe(1)
        expect(model.log.started).toEqual([0, 1])
      }).pipe(Effect.provide(stack))
    }))

  it.effect("with a Budget below: a hedge reserves too, and one the budget refuses is not sent", () =>
    Effect.gen(function* () {
      const model = timed((n) => (n === 0 ? 1_000 : 100))
      // room for one request's estimate, not two
      const estimate = 40
      const stack = Hedge.layer({ after: "500 millis", budget: 1 }).pipe(
        Layer.provide(Budget.layer({ period: "day", maxTokens: estimate + 10, assumedOutputTokens: estimate - 15 })),
        Layer.provide(model.layer)
      )
      yield* Effect.gen(function* () {
        const fiber = yield* Effect.fork(LanguageModel.chat(Message.request("hi")))
        yield* TestClock.adjust("2 seconds")
        // the hedge was refused by the budget: the first attempt answered
        expect((yield* Fiber.join(fiber)).text).toBe("reply-0")
        expect(model.log.started).toEqual([0])
      }).pipe(Effect.provide(stack))
    }))

  it.effect("composes with Retry below and Fallback above", () =>
    Effect.gen(function* () {
      // every attempt of the primary fails after the hedge went; the fallback answers
      const primary = timed((n) => (n === 0 ? 800 : 600), () => serverError)
      const secondary = timed(() => 10)
      const stack = Fallback.layer([
        { model: Hedge.layer({ after: "500 millis", budget: 1 }).pipe(Layer.provide(Retry.layer(Retry.schedule({ maxRetries: 0 }))), Layer.provide(primary.layer)) },
        { model: secondary.layer }
      ])
      yield* Effect.gen(function* () {
        const fiber = yield* Effect.fork(LanguageModel.chat(Message.request("hi")))
        yield* TestClock.adjust("5 seconds")
        expect((yield* Fiber.join(fiber)).text).toBe("reply-0")
        expect(primary.log.started).toEqual([0, 1])
        expect(secondary.log.started).toEqual([0])
      }).pipe(Effect.provide(stack))
    }))

  describe("the delay's timer", () => {
    // under the live clock a call's delay is a plain timer and its attempt a fiber of its own; under
    // any other clock (TestClock here) it is a race with the clock's sleep, which that clock drives
    it.effect("under TestClock, a call answered in time is a race with the clock's sleep (two fibers)", () =>
      Effect.gen(function* () {
        const model = timed(() => 100)
        const hedge = yield* Hedge.make({ after: "10 seconds" })
        const hedged = yield* hedge.decorator(yield* Effect.provide(LanguageModel.LanguageModel, model.layer))
        const fiber = yield* Effect.fork(fibersStartedBy(hedged.chat(Message.request("hi"))))
        yield* TestClock.adjust("100 millis")
        const [response, fibers] = yield* Fiber.join(fiber)
        expect(response.text).toBe("reply-0")
        expect(fibers).toBe(2)
        expect((yield* hedge.stats).wins).toEqual([1, 0])
      }))

    it.live("under the live clock, a call answered in time starts one fiber, and its timer is cleared", () =>
      Effect.gen(function* () {
        // answers after a live sleep of 0: on a later turn, so the timer is set and then cleared
        const model = timed(() => 0)
        const hedge = yield* Hedge.make({ after: "10 seconds" })
        const hedged = yield* hedge.decorator(yield* Effect.provide(LanguageModel.LanguageModel, model.layer))
        const firstWins = Metric.value(Metric.tagged(Hedge.wins, "attempt", "0"))
        const [before, winsBefore] = [timers(), (yield* firstWins).count]
        const [response, fibers] = yield* fibersStartedBy(hedged.chat(Message.request("hi")))
        expect(response.text).toBe("reply-0")
        expect(fibers).toBe(1)
        expect(timers()).toBe(before)
        expect((yield* hedge.stats)).toMatchObject({ requests: 1, hedges: 0, wins: [1, 0] })
        expect((yield* firstWins).count - winsBefore).toBe(1)
      }))

    it.live("under the live clock, a slow attempt is hedged when the timer fires; the first success wins, the other is interrupted", () =>
      Effect.gen(function* () {
        // the first attempt would take a minute: only the hedge can answer
        const model = timed((n) => (n === 0 ? 60_000 : 0))
        const hedge = yield* Hedge.make({ after: "1 millis", budget: 1 })
        const hedged = yield* hedge.decorator(yield* Effect.provide(LanguageModel.LanguageModel, model.layer))
        const before = timers()
        const response = yield* hedged.chat(Message.request("hi"))
        expect(response.text).toBe("reply-1")
        expect(model.log.started).toEqual([0, 1])
        expect(model.log.interrupted).toEqual([0])
        expect(yield* hedge.stats).toMatchObject({ requests: 1, hedges: 1, wins: [0, 1] })
        expect(timers()).toBe(before)
      }))

    it.live("under the live clock, interrupting the caller interrupts the attempt before and after the timer fires", () =>
      Effect.gen(function* () {
        for (const [after, attempts] of [["10 seconds", [0]], ["1 millis", [0, 1]]] as const) {
          const model = timed(() => 60_000)
          const hedge = yield* Hedge.make({ after, budget: 1 })
          const hedged = yield* hedge.decorator(yield* Effect.provide(LanguageModel.LanguageModel, model.layer))
          const before = timers()
          const fiber = yield* Effect.fork(hedged.chat(Message.request("hi")))
          yield* until(() => model.log.started.length === attempts.length)
          const exit = yield* Fiber.interrupt(fiber)
          expect(Exit.isInterrupted(exit), after).toBe(true)
          expect([...model.log.interrupted].sort(), after).toEqual(attempts)
          // no timer is left behind: a short-lived one of the runtime's may still be pending
          yield* until(() => timers() <= before)
          expect(timers(), after).toBe(before)
        }
      }))
  })
})
