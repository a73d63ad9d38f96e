import { describe, expect, it } from "@effect/vitest"
import { Cause, Clock, Config, ConfigError, ConfigProvider, Duration, Effect, Either, Exit, Fiber, Layer, TestClock, TestContext } from "effect"
import * as fc from "fast-check"
import { RateLimiter } from "../src/index.js"

/** Lets forked fibers run until they block. */
const settle = Effect.repeatN(Effect.yieldNow(), 50)

const available = (status: RateLimiter.Status) => status.requests!.available

/** Forks `admit(cost)` and records the clock when it is admitted. */
const admitAt = (limiter: RateLimiter.Service, cost: RateLimiter.Cost, log: Array<number>) =>
  Effect.fork(Effect.zipRight(limiter.admit(cost), Effect.flatMap(Clock.currentTimeMillis, (t) => Effect.sync(() => log.push(t)))))

describe("RateLimiter", () => {
  it.effect("an option that is not a positive number is a typed ConfigError naming it, from make and from the layer", () =>
    Effect.gen(function* () {
      const cases: Array<[RateLimiter.Options, string]> = [
        [{ capacity: 0, refillPerSecond: 1 }, "capacity"],
        [{ capacity: 1, refillPerSecond: Number.NaN }, "refillPerSecond"],
        [{ requestsPerMinute: -5 }, "requestsPerMinute"],
        [{ requestsPerMinute: 60, bufferRatio: 1.5 }, "bufferRatio"]
      ]
      for (const [options, name] of cases) {
        const made = yield* Effect.either(RateLimiter.make(options))
        expect(Either.isLeft(made), `${name} was accepted`).toBe(true)
        const error = (made as Either.Left<ConfigError.ConfigError, unknown>).left
        expect(error).toMatchObject({ _op: "InvalidData", path: [name] })
        const layer: Layer.Layer<RateLimiter.RateLimiter, ConfigError.ConfigError> = RateLimiter.layer(options)
        const built = yield* Effect.either(Effect.scoped(Layer.build(layer)))
        expect(Either.isLeft(built) && ConfigError.isConfigError(built.left)).toBe(true)
      }
    }))

  it.effect("admits a burst up to capacity, then one per refill interval", () =>
    Effect.gen(function* () {
      const limiter = yield* RateLimiter.make({ capacity: 3, refillPerSecond: 2 })
      const log: Array<number> = []
      for (let i = 0; i < 5; i++) yield* admitAt(limiter, { requests: 1 }, log)
      yield* settle
      expect(log).toEqual([0, 0, 0])
      yield* TestClock.adjust(499)
      expect(log.length).toBe(3)
      yield* TestClock.adjust(1)
      yield* settle
      expect(log).toEqual([0, 0, 0, 500])
      yield* TestClock.adjust(500)
      yield* settle
      expect(log).toEqual([0, 0, 0, 500, 1000])
    }))

  it.effect("waiters are admitted in arrival order, a large cost holding back later small ones", () =>
    Effect.gen(function* () {
      const limiter = yield* RateLimiter.make({ capacity: 10, refillPerSecond: 10, tokenCapacity: 100, tokenRefillPerSecond: 100 })
      const order: Array<string> = []
      const run = (name: string, tokens: number) =>
        Effect.fork(Effect.zipRight(limiter.admit({ requests: 1, tokens }), Effect.sync(() => order.push(name))))
      yield* run("a", 100)
      yield* run("b", 100)
      yield* run("c", 1)
      yield* settle
      expect(order).toEqual(["a"])
      yield* TestClock.adjust("1 second")
      yield* settle
      expect(order).toEqual(["a", "b"])
      yield* TestClock.adjust(10)
      yield* settle
      expect(order).toEqual(["a", "b", "c"])
    }))

  it.effect("onExceeded: fail refuses at once with the wait, and reserves nothing", () =>
    Effect.gen(function* () {
      const limiter = yield* RateLimiter.make({ capacity: 1, refillPerSecond: 4, onExceeded: "fail", provider: "openai" })
      yield* limiter.admit({})
      const error = yield* Effect.flip(limiter.admit({}).pipe(Effect.catchTag("StoreUnavailableError", Effect.die)))
      expect(error._tag).toBe("RateLimitExceededError")
      expect(error.provider).toBe("openai")
      expect(Duration.toMillis(error.retryAfter!)).toBe(250)
      yield* TestClock.adjust(250)
      yield* limiter.admit({})
    }))

  it.effect("an interrupted waiter gives its reservation back", () =>
    Effect.gen(function* () {
      const limiter = yield* RateLimiter.make({ capacity: 2, refillPerSecond: 1 })
      yield* limiter.admit({ requests: 2 })
      const waiter = yield* Effect.fork(limiter.admit({ requests: 1 }))
      yield* settle
      yield* Fiber.interrupt(waiter)
      yield* TestClock.adjust("1 second")
      expect(available(yield* limiter.status)).toBe(1)
    }))

  it.effect("per-minute limits and bufferRatio", () =>
    Effect.gen(function* () {
      const limiter = yield* RateLimiter.make({ requestsPerMinute: 600, tokensPerMinute: 60_000, bufferRatio: 0.9 })
      const status = yield* limiter.status
      expect(status.requests).toEqual({ available: 540, capacity: 540, refillPerSecond: 9 })
      expect(status.tokens).toEqual({ available: 54_000, capacity: 54_000, refillPerSecond: 900 })
    }))

  it.effect("settle charges what the estimate missed, and refunds what it overcounted", () =>
    Effect.gen(function* () {
      const limiter = yield* RateLimiter.make({ capacity: 10, refillPerSecond: 1, tokenCapacity: 1000, tokenRefillPerSecond: 1 })
      yield* limiter.admit({ tokens: 100 })
      yield* limiter.settle(400, 100)
      expect((yield* limiter.status).tokens!.available).toBe(600)
      yield* limiter.settle(50, 400)
      expect((yield* limiter.status).tokens!.available).toBe(950)
    }))

  it.effect("observe lowers the bucket to what OpenAI says remains", () =>
    Effect.gen(function* () {
      const limiter = yield* RateLimiter.make({ requestsPerMinute: 500, tokensPerMinute: 200_000 })
      yield* limiter.observe({
        "x-ratelimit-limit-requests": "500",
        "x-ratelimit-remaining-requests": "3",
        "x-ratelimit-reset-requests": "120ms",
        "x-ratelimit-limit-tokens": "150000",
        "x-ratelimit-remaining-tokens": "149984",
        "x-ratelimit-reset-tokens": "6m0s"
      })
      const status = yield* limiter.status
      expect(status.requests!.available).toBe(3)
      // the server's token limit is below ours: capacity follows it down
      expect(status.tokens!.capacity).toBe(150_000)
      expect(status.tokens!.available).toBe(149_984)
      expect(status.pausedUntil).toBeUndefined()
    }))

  it.effect("nothing remaining pauses admission until the reset; retry-after pauses too", () =>
    Effect.gen(function* () {
      const limiter = yield* RateLimiter.make({ capacity: 100, refillPerSecond: 100 })
      yield* limiter.observe({ "x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "1h2m3.5s" })
      expect((yield* limiter.status).pausedUntil).toBe(3_723_500)
      yield* limiter.reset
      expect((yield* limiter.status).pausedUntil).toBeUndefined()

      yield* limiter.observe({ "retry-after": "7" })
      const log: Array<number> = []
      yield* admitAt(limiter, {}, log)
      // an immediate re-try on another key is not held by the pause
      yield* admitAt(limiter, { reattempt: true }, log)
      yield* settle
      expect(log).toEqual([0])
      yield* TestClock.adjust("7 seconds")
      yield* settle
      expect(log).toEqual([0, 7000])

      yield* limiter.observe({ "retry-after-ms": "1500" })
      yield* admitAt(limiter, {}, log)
      yield* TestClock.adjust(1500)
      yield* settle
      expect(log).toEqual([0, 7000, 8500])
    }))

  it.effect("a pause learned while a caller waits holds it back too", () =>
    Effect.gen(function* () {
      const limiter = yield* RateLimiter.make({ capacity: 1, refillPerSecond: 1 })
      yield* limiter.admit({})
      const log: Array<number> = []
      yield* admitAt(limiter, {}, log)
      yield* settle
      yield* TestClock.adjust(500)
      yield* limiter.observe({ "retry-after": "2" })
      yield* TestClock.adjust(500)
      yield* settle
      expect(log).toEqual([])
      yield* TestClock.adjust(1500)
      yield* settle
      expect(log).toEqual([2500])
    }))

  it.effect("a waiter interrupted after its turn came, while a pause held it, gives nothing back: capacity is never exceeded", () =>
    Effect.gen(function* () {
      const limiter = yield* RateLimiter.make({ capacity: 2, refillPerSecond: 1 })
      yield* limiter.admit({})
      yield* limiter.admit({})
      yield* limiter.observe({ "retry-after": "10" })
      const log: Array<number> = []
      // A's turn comes at 1 s, but the pause holds it until 10 s
      const a = yield* admitAt(limiter, {}, log)
      yield* settle
      yield* TestClock.adjust("4 seconds")
      yield* admitAt(limiter, { reattempt: true }, log)
      yield* settle
      yield* Fiber.interrupt(a)
      yield* admitAt(limiter, { reattempt: true }, log)
      yield* admitAt(limiter, { reattempt: true }, log)
      yield* settle
      // in the 4 s window [0, 4]: capacity 2 + 4 refilled = 6 at most, and 2 were admitted at 0;
      // at 4 s, the level allows 2 of the 3 re-attempts, and an interrupted A must not add a third
      const at4 = log.filter((t) => t === 4000).length
      expect(at4, `admitted at 4 s: ${JSON.stringify(log)}`).toBeLessThanOrEqual(2)
    }))

  it.effect("a waiter interrupted before its turn gives its reservation back", () =>
    Effect.gen(function* () {
      const limiter = yield* RateLimiter.make({ capacity: 1, refillPerSecond: 1 })
      yield* limiter.admit({})
      const log: Array<number> = []
      const a = yield* admitAt(limiter, {}, log)
      yield* settle
      yield* TestClock.adjust(500)
      yield* Fiber.interrupt(a)
      yield* admitAt(limiter, {}, log)
      yield* settle
      yield* TestClock.adjust(500)
      yield* settle
      // A's slot at 1 s went back: the next caller takes it
      expect(log).toEqual([1000])
    }))

  it.effect("Anthropic headers: RFC 3339 resets, the tightest token limit binds", () =>
    Effect.gen(function* () {
      const limiter = yield* RateLimiter.make({ requestsPerMinute: 50, tokensPerMinute: 100_000 })
      yield* TestClock.setTime(Date.parse("2025-01-01T00:00:00Z"))
      yield* limiter.reset
      yield* limiter.observe({
        "anthropic-ratelimit-requests-limit": "50",
        "anthropic-ratelimit-requests-remaining": "0",
        "anthropic-ratelimit-requests-reset": "2025-01-01T00:00:12Z",
        "anthropic-ratelimit-tokens-limit": "80000",
        "anthropic-ratelimit-tokens-remaining": "79000",
        "anthropic-ratelimit-tokens-reset": "2025-01-01T00:00:01Z",
        "anthropic-ratelimit-input-tokens-limit": "40000",
        "anthropic-ratelimit-input-tokens-remaining": "39000",
        "anthropic-ratelimit-input-tokens-reset": "2025-01-01T00:00:01Z",
        "anthropic-ratelimit-output-tokens-limit": "8000",
        "anthropic-ratelimit-output-tokens-remaining": "7500",
        "anthropic-ratelimit-output-tokens-reset": "2025-01-01T00:00:01Z"
      })
      const status = yield* limiter.status
      expect(status.requests!.available).toBe(0)
      expect(status.tokens!.capacity).toBe(8000)
      expect(status.tokens!.available).toBe(7500)
      expect(status.pausedUntil).toBe(Date.parse("2025-01-01T00:00:12Z"))
    }))

  it.effect("malformed headers are ignored", () =>
    Effect.gen(function* () {
      const limiter = yield* RateLimiter.make({ capacity: 10, refillPerSecond: 1, tokenCapacity: 100 })
      yield* limiter.observe({
        "x-ratelimit-remaining-requests": "soon",
        "x-ratelimit-limit-requests": "-4",
        "x-ratelimit-reset-requests": "6 minutes",
        "x-ratelimit-remaining-tokens": "",
        "anthropic-ratelimit-requests-reset": "1",
        "retry-after": "tomorrow-ish",
        "retry-after-ms": "NaN"
      })
      const status = yield* limiter.status
      expect(status.requests!.available).toBe(10)
      expect(status.tokens!.available).toBe(100)
      expect(status.pausedUntil).toBeUndefined()
    }))

  it("parseHeaders reads OpenAI durations and Anthropic timestamps", () => {
    const now = Date.parse("2024-08-28T17:59:00Z")
    expect(RateLimiter.parseHeaders({
      "x-ratelimit-limit-requests": "60",
      "x-ratelimit-remaining-requests": "59",
      "x-ratelimit-reset-requests": "1s",
      "x-ratelimit-limit-tokens": "150000",
      "x-ratelimit-remaining-tokens": "149984",
      "x-ratelimit-reset-tokens": "6m0s"
    }, now)).toEqual({
      requests: { limit: 60, remaining: 59, resetMs: 1000 },
      tokens: { limit: 150_000, remaining: 149_984, resetMs: 360_000 },
      retryAfterMs: undefined
    })
    expect(RateLimiter.parseHeaders({ "x-ratelimit-reset-tokens": "12ms", "retry-after": "20" }, now)).toMatchObject({
      tokens: { resetMs: 12 },
      retryAfterMs: 20_000
    })
    expect(RateLimiter.parseHeaders({
      "anthropic-ratelimit-requests-remaining": "49",
      "anthropic-ratelimit-requests-reset": "2024-08-28T18:00:00Z"
    }, now).requests).toEqual({ limit: undefined, remaining: 49, resetMs: 60_000 })
  })

  it.effect("layerConfig reads options from config and rejects bad numbers with a ConfigError", () =>
    Effect.gen(function* () {
      const options = Config.all({ requestsPerMinute: Config.number("RPM") })
      const ok = yield* RateLimiter.status.pipe(
        Effect.provide(RateLimiter.layerConfig(options)),
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["RPM", "120"]])))
      )
      expect(ok.requests!.refillPerSecond).toBe(2)
      const bad = yield* Effect.exit(RateLimiter.status.pipe(
        Effect.provide(RateLimiter.layerConfig(options)),
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["RPM", "0"]])))
      ))
      expect(Exit.isFailure(bad)).toBe(true)
      expect(String(bad)).toContain("positive")
    }))

  it.effect("make rejects a bufferRatio outside (0, 1] with a message naming it", () =>
    Effect.gen(function* () {
      const exit = yield* Effect.exit(RateLimiter.make({ capacity: 1, refillPerSecond: 1, bufferRatio: 1.5 }))
      expect(Exit.isFailure(exit) && Cause.pretty(exit.cause)).toContain("bufferRatio")
    }))
})

describe("RateLimiterStore", () => {
  it.effect("a limiter is built over the store in context: it gets the budget's name and limits, and every reservation and lesson", () =>
    Effect.gen(function* () {
      const specs: Array<RateLimiter.StoreSpec> = []
      const calls: Array<string> = []
      const recording = Layer.succeed(RateLimiter.RateLimiterStore, {
        make: (spec) =>
          Effect.map(RateLimiter.makeStoreMemory(spec), (store): RateLimiter.Store => {
            specs.push(spec)
            return {
              ...store,
              reserve: (r, t, failFast, ignorePause) =>
                Effect.zipRight(Effect.sync(() => calls.push(`reserve ${r} ${t} ${failFast} ${ignorePause}`)), store.reserve(r, t, failFast, ignorePause)),
              learn: (learned) => Effect.zipRight(Effect.sync(() => calls.push(`learn ${learned.requestsRemaining}`)), store.learn(learned))
            }
          })
      })
      const [limiter, named] = yield* Effect.all([
        RateLimiter.make({ capacity: 2, refillPerSecond: 1, provider: "openai" }),
        RateLimiter.make({ requestsPerMinute: 60, tokensPerMinute: 600, bufferRatio: 0.5, name: "shared" })
      ]).pipe(Effect.provide(recording))
      expect(specs).toEqual([
        { name: "openai", provider: "openai", limits: { requests: { capacity: 2, refillPerMs: 0.001 }, tokens: undefined, ratio: 1 } },
        {
          name: "shared",
          provider: "rate-limiter",
          limits: { requests: { capacity: 30, refillPerMs: 0.0005 }, tokens: { capacity: 300, refillPerMs: 0.005 }, ratio: 0.5 }
        }
      ])
      yield* limiter.admit({ requests: 1, tokens: 50 })
      yield* named.admit({ requests: 1, tokens: 50, reattempt: true })
      yield* limiter.observe({ "x-ratelimit-remaining-requests": "0" })
      expect(calls).toEqual(["reserve 1 0 false false", "reserve 1 50 false true", "learn 0"])
      expect(available(yield* limiter.status)).toBe(0)
    }))

  it.effect("the waiting is the service's over any store: a store's reservation says how long, and a failFast one refuses", () =>
    Effect.gen(function* () {
      const store = (waitMs: number): Layer.Layer<RateLimiter.RateLimiterStore> =>
        Layer.succeed(RateLimiter.RateLimiterStore, {
          make: () =>
            Effect.succeed({
              reserve: (_r, _t, failFast) => Effect.succeed(failFast ? { waitMs: -waitMs - 1, turnMs: 0 } : { waitMs, turnMs: waitMs }),
              refund: () => Effect.void,
              adjustTokens: () => Effect.void,
              learn: () => Effect.void,
              pausedFor: Effect.succeed(0),
              status: Effect.succeed({ requests: undefined, tokens: undefined }),
              reset: Effect.void
            })
        })
      const limiter = yield* RateLimiter.make({ capacity: 1, refillPerSecond: 1 }).pipe(Effect.provide(store(250)))
      const log: Array<number> = []
      yield* admitAt(limiter, { requests: 1 }, log)
      yield* settle
      yield* TestClock.adjust(249)
      expect(log).toEqual([])
      yield* TestClock.adjust(1)
      yield* settle
      expect(log).toEqual([250])
      const strict = yield* RateLimiter.make({ capacity: 1, refillPerSecond: 1, onExceeded: "fail" }).pipe(Effect.provide(store(250)))
      const refused = yield* Effect.flip(strict.admit({ requests: 1 }))
      expect(refused._tag).toBe("RateLimitExceededError")
      // layerStoreMemory keeps each limiter its own
      const [a, b] = yield* Effect.all([
        RateLimiter.make({ capacity: 1, refillPerSecond: 1, name: "same" }),
        RateLimiter.make({ capacity: 1, refillPerSecond: 1, name: "same" })
      ]).pipe(Effect.provide(RateLimiter.layerStoreMemory))
      yield* a.admit({ requests: 1 })
      expect([available(yield* a.status), available(yield* b.status)]).toEqual([0, 1])
    }))
})

describe("RateLimiter properties", () => {
  it("never admits more than capacity + rate × t in any window", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 10 }),
        fc.integer({ min: 1, max: 50 }),
        fc.array(fc.record({ gap: fc.nat(400), cost: fc.integer({ min: 1, max: 3 }), interrupt: fc.boolean() }), {
          minLength: 1,
          maxLength: 30
        }),
        async (capacity, refillPerSecond, arrivals) => {
          const program = Effect.gen(function* () {
            const limiter = yield* RateLimiter.make({ capacity, refillPerSecond })
            const admitted: Array<{ readonly at: number; readonly cost: number }> = []
            const fibers: Array<Fiber.RuntimeFiber<void, unknown>> = []
            for (const { gap, cost, interrupt } of arrivals) {
              yield* TestClock.adjust(gap)
              const c = Math.min(cost, capacity)
              const fiber = yield* Effect.fork(
                Effect.asVoid(Effect.zipRight(
                  limiter.admit({ requests: c }),
                  Effect.flatMap(Clock.currentTimeMillis, (at) => Effect.sync(() => admitted.push({ at, cost: c })))
                ))
              )
              yield* Effect.repeatN(Effect.yieldNow(), 5)
              if (interrupt) yield* Fiber.interrupt(fiber)
              else fibers.push(fiber)
            }
            yield* TestClock.adjust("1 hour")
            yield* Effect.forEach(fibers, Fiber.join)
            // every window [a, b] whose ends are admission times
            for (let i = 0; i < admitted.length; i++) {
              let total = 0
              for (let j = i; j < admitted.length; j++) {
                total += admitted[j]!.cost
                const t = (admitted[j]!.at - admitted[i]!.at) / 1000
                if (total > capacity + refillPerSecond * t + 1e-9) return false
              }
            }
            // interrupted callers may have been admitted before their interruption
            return admitted.length >= fibers.length
          })
          return Effect.runPromise(Effect.provide(program, TestContext.TestContext))
        }
      ),
      { numRuns: 30 }
    )
  })
})
