import { describe, expect, it } from "@effect/vitest"
import { Config, ConfigError, ConfigProvider, Deferred, Duration, Effect, Either, Exit, Fiber, Layer, Redacted, Scope, TestClock } from "effect"
import * as fc from "fast-check"
import { KeyPool, LanguageModel, LlmError, Message, OpenAiCompatible, RateLimiter, Transport } from "../src/index.js"
import * as Testing from "../src/Testing.js"
import { type HeapEntry, KeyHeap } from "../src/internal/keyHeap.js"

const fp = KeyPool.fingerprint

/** Lets forked fibers run until they block. */
const settle = Effect.repeatN(Effect.yieldNow(), 50)

const byId = (status: ReadonlyArray<KeyPool.KeyStatus>) => new Map(status.map((s) => [s.keyId, s]))

/**
 * A lease that must be granted at once, held in the current scope. A pool that makes the
 * caller wait fails the test here, saying so, instead of hanging it under TestClock.
 */
const leaseNow = (pool: KeyPool.Service, what: string) =>
  Effect.gen(function* () {
    const fiber = yield* Effect.fork(Scope.extend(pool.acquire, yield* Effect.scope))
    yield* settle
    const exit = fiber.unsafePoll()
    if (exit === null) yield* Fiber.interrupt(fiber)
    expect(exit, `${what}: the pool made the caller wait although a key was free`).not.toBeNull()
    return yield* exit!
  })

describe("KeyPool", () => {
  it.scoped("leases the least-loaded key, then the least recently used", () =>
    Effect.gen(function* () {
      const pool = yield* KeyPool.make({ providerId: "p", keys: ["a", "b", "c"] })
      const first = yield* leaseNow(pool, "first lease")
      yield* TestClock.adjust(1)
      const second = yield* leaseNow(pool, "second lease")
      yield* TestClock.adjust(1)
      const third = yield* leaseNow(pool, "third lease")
      expect(new Set([first.keyId, second.keyId, third.keyId]).size, "a loaded key was leased while another was idle").toBe(3)
      // every key carries one: the next goes to the one used longest ago
      yield* TestClock.adjust(1)
      const fourth = yield* leaseNow(pool, "fourth lease")
      expect(fourth.keyId).toBe(first.keyId)
      expect(Redacted.value(fourth.key!)).toBe("a")
      const status = byId(yield* pool.status)
      expect(status.get(fp("a"))!.inFlight).toBe(2)
      expect(status.get(fp("b"))!.inFlight).toBe(1)
    }))

  it.effect("releases a lease when its scope closes, including by interruption", () =>
    Effect.gen(function* () {
      const pool = yield* KeyPool.make({ providerId: "p", keys: ["a", "b"] })
      const held = yield* Deferred.make<void>()
      const fiber = yield* Effect.fork(Effect.scoped(Effect.zipRight(pool.acquire, Effect.zipRight(Deferred.succeed(held, undefined), Effect.never))))
      yield* Deferred.await(held)
      expect((yield* pool.status).reduce((n, s) => n + s.inFlight, 0)).toBe(1)
      yield* Fiber.interrupt(fiber)
      expect((yield* pool.status).every((s) => s.inFlight === 0)).toBe(true)

      yield* Effect.scoped(pool.acquire)
      expect((yield* pool.status).every((s) => s.inFlight === 0)).toBe(true)
    }))

  it.effect("a 429 cools the key for retry-after; it comes back half-open and a success heals it", () =>
    Effect.gen(function* () {
      const pool = yield* KeyPool.make({ providerId: "p", keys: ["a", "b"] })
      yield* pool.report(fp("a"), { _tag: "RateLimited", retryAfter: Duration.seconds(5) })
      expect(byId(yield* pool.status).get(fp("a"))!.state).toBe("coolingDown")
      for (let i = 0; i < 3; i++) {
        const lease = yield* Effect.scoped(leaseNow(pool, "a lease while a cools"))
        expect(lease.keyId).toBe(fp("b"))
      }
      yield* TestClock.adjust("5 seconds")
      // half-open: one call at a time on "a"
      const scope = yield* Scope.make()
      const probe = yield* Scope.extend(leaseNow(pool, "the half-open probe"), scope)
      expect(probe.keyId).toBe(fp("a"))
      expect(byId(yield* pool.status).get(fp("a"))!.state).toBe("halfOpen")
      // a key carrying its probe ranks behind every other key, however loaded
      const other = yield* Effect.scoped(leaseNow(pool, "a lease while a carries its probe"))
      expect(other.keyId).toBe(fp("b"))
      yield* pool.report(fp("a"), { _tag: "Success" })
      yield* Scope.close(scope, Exit.void)
      expect(byId(yield* pool.status).get(fp("a"))!.state).toBe("healthy")
    }))

  it.effect("a 429 without retry-after uses the default cooldown", () =>
    Effect.gen(function* () {
      const pool = yield* KeyPool.make({ providerId: "p", keys: ["a"], defaultCooldown: "3 seconds" })
      yield* pool.report(fp("a"), { _tag: "RateLimited" })
      const error = yield* Effect.flip(Effect.scoped(pool.acquire).pipe(Effect.catchTag("StoreUnavailableError", Effect.die)))
      expect(error._tag).toBe("NoKeyAvailableError")
      expect(Duration.toMillis(error.retryAfter!)).toBe(3000)
      yield* TestClock.adjust("3 seconds")
      expect((yield* Effect.scoped(pool.acquire)).keyId).toBe(fp("a"))
    }))

  it.effect("401 and 403 disable a key with the reason; when none is left the error has no retryAfter", () =>
    Effect.gen(function* () {
      const pool = yield* KeyPool.make({ providerId: "p", keys: ["a", "b"] })
      yield* pool.report(fp("a"), KeyPool.outcomeOf(new LlmError.AuthenticationError({ provider: "p", model: "m", message: "bad key" }))!)
      yield* pool.report(fp("b"), KeyPool.outcomeOf(new LlmError.PermissionError({ provider: "p", model: "m", message: "no access" }))!)
      const status = byId(yield* pool.status)
      expect(status.get(fp("a"))).toMatchObject({ state: "disabled", disabledReason: "bad key", failures: 1 })
      expect(status.get(fp("b"))).toMatchObject({ state: "disabled", disabledReason: "no access" })
      yield* TestClock.adjust("1 day")
      const error = yield* Effect.flip(Effect.scoped(pool.acquire).pipe(Effect.catchTag("StoreUnavailableError", Effect.die)))
      expect(error.retryAfter).toBeUndefined()
      expect(error.message).toContain("disabled")
      expect(yield* pool.hasHealthyKey()).toBe(false)
    }))

  it.effect("insufficient quota disables until the configured reset; the error names the earliest return", () =>
    Effect.gen(function* () {
      const pool = yield* KeyPool.make({ providerId: "p", keys: ["a", "b"], quotaResetAfter: "10 minutes" })
      yield* pool.report(fp("a"), { _tag: "QuotaExceeded", reason: "quota" })
      yield* TestClock.adjust("1 minute")
      yield* pool.report(fp("b"), { _tag: "RateLimited", retryAfter: Duration.minutes(20) })
      const error = yield* Effect.flip(Effect.scoped(pool.acquire).pipe(Effect.catchTag("StoreUnavailableError", Effect.die)))
      expect(Duration.toMillis(error.retryAfter!)).toBe(9 * 60_000)
      yield* TestClock.adjust("9 minutes")
      expect((yield* Effect.scoped(pool.acquire)).keyId).toBe(fp("a"))
    }))

  it.effect("withKey reports the outcome of its callback", () =>
    Effect.gen(function* () {
      const pool = yield* KeyPool.make({ providerId: "p", keys: ["a"] })
      yield* pool.withKey(() => Effect.succeed(1))
      const failed = yield* Effect.flip(
        pool.withKey(() => Effect.fail(new LlmError.RateLimitError({ provider: "p", model: "m", message: "429", retryAfter: Duration.seconds(2) })))
      )
      expect(failed._tag).toBe("RateLimitError")
      const a = byId(yield* pool.status).get(fp("a"))!
      expect(a).toMatchObject({ successes: 1, failures: 1, state: "coolingDown", inFlight: 0 })
    }))

  it.effect("maxConcurrentPerKey makes callers wait in FIFO order, and an interrupted waiter leaves the queue", () =>
    Effect.gen(function* () {
      const pool = yield* KeyPool.make({ providerId: "p", keys: ["a", "b"], maxConcurrentPerKey: 1 })
      const order: Array<number> = []
      const gates = yield* Effect.all([0, 1, 2, 3, 4].map(() => Deferred.make<void>()))
      const run = (i: number) =>
        Effect.scoped(Effect.zipRight(Effect.tap(pool.acquire, () => Effect.sync(() => order.push(i))), Deferred.await(gates[i]!)))
      const f0 = yield* Effect.fork(run(0))
      const f1 = yield* Effect.fork(run(1))
      yield* settle
      const f2 = yield* Effect.fork(run(2))
      yield* settle
      const f3 = yield* Effect.fork(run(3))
      yield* settle
      const f4 = yield* Effect.fork(run(4))
      yield* settle
      expect(order).toEqual([0, 1])
      expect((yield* pool.status).map((s) => s.load)).toEqual([1, 1])
      yield* Fiber.interrupt(f3)
      yield* Deferred.succeed(gates[0]!, undefined)
      yield* Fiber.join(f0)
      yield* settle
      expect(order).toEqual([0, 1, 2])
      yield* Deferred.succeed(gates[1]!, undefined)
      yield* Fiber.join(f1)
      yield* settle
      expect(order).toEqual([0, 1, 2, 4])
      yield* Deferred.succeed(gates[2]!, undefined)
      yield* Deferred.succeed(gates[4]!, undefined)
      yield* Fiber.join(f2)
      yield* Fiber.join(f4)
      expect((yield* pool.status).every((s) => s.inFlight === 0)).toBe(true)
    }))

  it.effect("with maxConcurrentPerKey, a caller waits for a cooling key instead of failing", () =>
    Effect.gen(function* () {
      const pool = yield* KeyPool.make({ providerId: "p", keys: ["a"], maxConcurrentPerKey: 2 })
      yield* pool.report(fp("a"), { _tag: "RateLimited", retryAfter: Duration.seconds(4) })
      const fiber = yield* Effect.fork(Effect.scoped(pool.acquire))
      yield* TestClock.adjust("3 seconds")
      expect(fiber.unsafePoll()).toBeNull()
      yield* TestClock.adjust("1 second")
      expect((yield* Fiber.join(fiber)).keyId).toBe(fp("a"))
    }))

  it.effect("status and errors never show a key", () =>
    Effect.gen(function* () {
      const secret = "sk-live-very-secret-123"
      const pool = yield* KeyPool.make({ providerId: "p", keys: [secret] })
      yield* pool.report(fp(secret), { _tag: "RateLimited" })
      const error = yield* Effect.flip(Effect.scoped(pool.acquire))
      const text = JSON.stringify(yield* pool.status) + JSON.stringify(error) + String(error)
      expect(text).not.toContain(secret)
      expect(text).toContain(fp(secret))
    }))

  it.effect("layerConfig reads a comma-separated list", () =>
    Effect.gen(function* () {
      const status = yield* KeyPool.status.pipe(
        Effect.provide(KeyPool.layerConfig({ providerId: "openai", keys: Config.redacted("OPENAI_API_KEYS") })),
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["OPENAI_API_KEYS", "k1, k2,,k1"]])))
      )
      expect(status.map((s) => s.keyId)).toEqual([fp("k1"), fp("k2")])
    }))

  it.effect("layerConfig: an empty or blank key list fails as the layer is built, naming the variable", () =>
    Effect.gen(function* () {
      for (const value of ["", " , ", ","]) {
        const error = yield* Effect.flip(Layer.build(KeyPool.layerConfig({ providerId: "openai", keys: Config.redacted("OPENAI_API_KEY") }))).pipe(
          Effect.scoped,
          Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["OPENAI_API_KEY", value]])))
        )
        expect(String(error)).toContain("OPENAI_API_KEY is set but empty")
      }
    }))

  it.effect("layerConfig: a missing variable says which one to set, not that something was redacted", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(Layer.build(KeyPool.layerConfig({ providerId: "openai", keys: Config.redacted("OPENAI_API_KEY") }))).pipe(
        Effect.scoped,
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map()))
      )
      expect(String(error)).toContain("set OPENAI_API_KEY")
      expect(String(error)).not.toContain("<redacted>")
    }))

  it.effect("layerConfig with optional: true (keyless by design) builds a keyless pool from a missing or empty variable", () =>
    Effect.gen(function* () {
      for (const env of [new Map<string, string>(), new Map([["OLLAMA_API_KEY", " "]])]) {
        const lease = yield* Effect.scoped(KeyPool.acquire).pipe(
          Effect.provide(KeyPool.layerConfig({ providerId: "ollama", keys: Config.redacted("OLLAMA_API_KEY"), optional: true })),
          Effect.withConfigProvider(ConfigProvider.fromMap(env))
        )
        expect(lease.key).toBeUndefined()
      }
    }))

  it.effect("a pool given no keys, and not keyless, fails a lease with a typed error instead of sending no credentials", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(Effect.scoped(KeyPool.acquire)).pipe(Effect.provide(KeyPool.layer({ providerId: "openai", keys: [] })))
      expect(error._tag).toBe("NoKeyAvailableError")
      expect(error.message).toContain("no keys")
      expect(error.retryable).toBe(false)
    }))

  it.effect("a keyless pool leases no key", () =>
    Effect.gen(function* () {
      const lease = yield* Effect.scoped(KeyPool.acquire).pipe(Effect.provide(KeyPool.layerKeyless("ollama")))
      expect(lease.key).toBeUndefined()
    }))
})



// ---------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------

describe("KeyPool options", () => {
  it.effect("a key that cannot go in a header is a typed ConfigError naming its position, never the key", () =>
    Effect.gen(function* () {
      for (const bad of ["sk-line\nbreak", "sk-carriage\rreturn", "sk-n\u00fcl", "sk-\u0000"]) {
        const result = yield* Effect.either(KeyPool.make({ providerId: "p", keys: ["sk-good", bad] }))
        expect(Either.isLeft(result), "the pool was built").toBe(true)
        const error = (result as Either.Left<ConfigError.ConfigError, unknown>).left
        expect(ConfigError.isConfigError(error)).toBe(true)
        expect(error).toMatchObject({ _op: "InvalidData", path: ["keys"] })
        expect(String(error)).toContain("key 2 of 2")
        expect(JSON.stringify(error) + String(error)).not.toContain(bad)
      }
      // the layer says so in its type and fails the same way
      const layer: Layer.Layer<KeyPool.KeyPool, ConfigError.ConfigError> = KeyPool.layer({ providerId: "p", keys: ["sk-\n"] })
      const built = yield* Effect.either(Effect.scoped(Layer.build(layer)))
      expect(Either.isLeft(built) && ConfigError.isConfigError(built.left)).toBe(true)
    }))

  it.effect("an invalid maxConcurrentPerKey is a typed ConfigError that names it", () =>
    Effect.gen(function* () {
      for (const max of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
        const result = yield* Effect.either(KeyPool.make({ providerId: "p", keys: ["k"], maxConcurrentPerKey: max }))
        expect(Either.isLeft(result), `maxConcurrentPerKey ${max} was accepted`).toBe(true)
        const error = (result as Either.Left<ConfigError.ConfigError, unknown>).left
        expect(error).toMatchObject({ _op: "InvalidData", path: ["maxConcurrentPerKey"] })
        expect(String(error)).toContain("positive integer")
      }
      // a keyless pool has nothing to check: its layer cannot fail
      const keyless: Layer.Layer<KeyPool.KeyPool> = KeyPool.layerKeyless("ollama")
      expect((yield* Effect.scoped(Layer.build(keyless))).unsafeMap.size).toBe(1)
    }))
})

describe("KeyPoolStore", () => {
  /** A memory store per pool that logs what the service asks of it. */
  const recording = (specs: Array<KeyPool.StoreSpec>, calls: Array<string>) =>
    Layer.succeed(KeyPool.KeyPoolStore, {
      make: (spec) =>
        Effect.map(KeyPool.makeStoreMemory(spec), (store): KeyPool.Store => {
          specs.push(spec)
          const log = (call: string) => Effect.sync(() => void calls.push(`${spec.providerId} ${call}`))
          return {
            ...store,
            take: Effect.tap(store.take, (take) => log(`take ${take._tag}`)),
            release: (keyId, leaseId) => Effect.zipRight(log("release"), store.release(keyId, leaseId)),
            report: (keyId, outcome) => Effect.zipRight(log(`report ${outcome._tag}`), store.report(keyId, outcome))
          }
        })
    })

  it.scoped("a pool is built over the store in context: it gets the pool's fingerprints and timings, and every take, report and release", () =>
    Effect.gen(function* () {
      const specs: Array<KeyPool.StoreSpec> = []
      const calls: Array<string> = []
      const pool = yield* KeyPool.KeyPool.pipe(
        Effect.provide(
          KeyPool.layer({ providerId: "p", keys: ["a", "b", "a"], defaultCooldown: "3 seconds", maxConcurrentPerKey: 2 }).pipe(
            Layer.provide(recording(specs, calls))
          )
        )
      )
      expect(specs).toEqual([
        { providerId: "p", keyIds: [fp("a"), fp("b")], timings: { defaultCooldown: 3000, quotaReset: 3_600_000, maxConcurrentPerKey: 2 } }
      ])
      expect(yield* pool.withKey(() => Effect.succeed("ok"))).toBe("ok")
      yield* Effect.flip(pool.withKey(() => Effect.fail(new LlmError.RateLimitError({ provider: "p", model: "m", message: "429" }))))
      expect(calls).toEqual(["p take Leased", "p report Success", "p release", "p take Leased", "p report RateLimited", "p release"])
      expect((yield* pool.status).map((s) => s.state).sort()).toEqual(["coolingDown", "healthy"])
    }))

  it.scoped("one store layer serves every pool built over it; layerStoreMemory keeps each pool its own", () =>
    Effect.gen(function* () {
      const specs: Array<KeyPool.StoreSpec> = []
      const calls: Array<string> = []
      yield* Effect.gen(function* () {
        const a = yield* KeyPool.make({ providerId: "openai", keys: ["k1"] })
        const b = yield* KeyPool.make({ providerId: "anthropic", keys: ["k2"] })
        yield* Effect.scoped(a.acquire)
        yield* Effect.scoped(b.acquire)
      }).pipe(Effect.provide(recording(specs, calls)))
      expect(specs.map((s) => s.providerId)).toEqual(["openai", "anthropic"])
      expect(calls).toEqual(["openai take Leased", "openai release", "anthropic take Leased", "anthropic release"])

      const [a, b] = yield* Effect.all([
        KeyPool.make({ providerId: "p", keys: ["k1"] }),
        KeyPool.make({ providerId: "p", keys: ["k1"] })
      ]).pipe(Effect.provide(KeyPool.layerStoreMemory))
      yield* leaseNow(a, "a fresh pool")
      expect((yield* a.status)[0]!.inFlight).toBe(1)
      expect((yield* b.status)[0]!.inFlight).toBe(0)
    }))

  it.effect("a store decides what a lease gets: no key (NoKeyAvailableError, with its wait) or no answer (StoreUnavailableError)", () =>
    Effect.gen(function* () {
      const store = (take: KeyPool.Store["take"]): KeyPool.StoreFactory => ({
        make: () =>
          Effect.succeed({
            take,
            release: () => Effect.void,
            report: () => Effect.void,
            status: Effect.succeed([]),
            hasHealthyKey: () => Effect.succeed(false),
            pollMillis: 1000
          })
      })
      const options = { providerId: "p", keys: ["k1", "k2"] }
      const cooling = yield* KeyPool.make(options).pipe(
        Effect.provideService(KeyPool.KeyPoolStore, store(Effect.succeed({ _tag: "Unavailable", retryAfterMs: 1500 })))
      )
      const none = yield* Effect.flip(Effect.scoped(cooling.acquire))
      expect(none._tag).toBe("NoKeyAvailableError")
      expect(Duration.toMillis((none as LlmError.NoKeyAvailableError).retryAfter!)).toBe(1500)
      const unavailable = new LlmError.StoreUnavailableError({ provider: "p", model: "*", message: "down", store: "KeyPool", operation: "keypool take" })
      const down = yield* KeyPool.make(options).pipe(Effect.provideService(KeyPool.KeyPoolStore, store(Effect.fail(unavailable))))
      const error = yield* Effect.flip(down.withKey(() => Effect.void))
      expect([error._tag, error.message]).toEqual(["StoreUnavailableError", "down"])
    }))
})

describe("KeyPool properties", () => {
  it("the heap keeps its invariant through pushes, updates and removals", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({ op: fc.constantFrom("push", "inc", "dec", "remove", "touch", "half"), at: fc.nat(), value: fc.nat(1000) }),
          { maxLength: 200 }
        ),
        (ops) => {
          const heap = new KeyHeap<HeapEntry>()
          const all: Array<HeapEntry> = Array.from({ length: 16 }, (_, seq) => ({
            keyId: String(seq),
            seq,
            inFlight: 0,
            lastUsed: 0,
            halfOpen: false,
            index: -1
          }))
          for (const { op, at, value } of ops) {
            const entry = all[at % all.length]!
            if (op === "push") {
              if (entry.index < 0) heap.push(entry)
            } else if (op === "remove") heap.remove(entry)
            else {
              if (op === "inc") entry.inFlight++
              if (op === "dec" && entry.inFlight > 0) entry.inFlight--
              if (op === "touch") entry.lastUsed = value
              if (op === "half") entry.halfOpen = !entry.halfOpen
              heap.update(entry)
            }
            if (!heap.isValid()) return false
            if (heap.size !== all.filter((e) => e.index >= 0).length) return false
          }
          return true
        }
      ),
      { numRuns: 300 }
    )
  })

  it("after any sequence of acquires, releases and interrupts, every key's load returns to 0", async () => {
    type Op = { readonly kind: "acquire" | "release" | "interrupt" | "report"; readonly pick: number; readonly outcome: number }
    await fc.assert(
      fc.asyncProperty(
        fc.option(fc.integer({ min: 1, max: 3 }), { nil: undefined }),
        fc.array(
          fc.record({
            kind: fc.constantFrom<Op["kind"]>("acquire", "acquire", "release", "interrupt", "report"),
            pick: fc.nat(),
            outcome: fc.nat(3)
          }),
          { maxLength: 60 }
        ),
        async (maxConcurrentPerKey, ops) => {
          const program = Effect.gen(function* () {
            const pool = yield* KeyPool.make({ providerId: "p", keys: ["a", "b", "c"], maxConcurrentPerKey })
            const ended: Array<Fiber.RuntimeFiber<void, unknown>> = []
            const held: Array<{ readonly fiber: Fiber.RuntimeFiber<void, unknown>; readonly gate: Deferred.Deferred<void> }> = []
            for (const op of ops) {
              if (op.kind === "acquire") {
                const gate = yield* Deferred.make<void>()
                const fiber = yield* Effect.fork(
                  Effect.scoped(
                    Effect.flatMap(pool.acquire, (lease) =>
                      Effect.zipRight(
                        op.outcome === 3 ? Effect.void : pool.report(lease.keyId, [{ _tag: "Success" } as const, { _tag: "Failure" } as const, { _tag: "Success" } as const][op.outcome]!),
                        Deferred.await(gate)
                      ))
                  )
                )
                held.push({ fiber, gate })
              } else if (held.length > 0) {
                const [item] = held.splice(op.pick % held.length, 1)
                if (op.kind === "release") {
                  // a fiber still waiting for a key takes one, then ends at once
                  yield* Deferred.succeed(item!.gate, undefined)
                  ended.push(item!.fiber)
                } else if (op.kind === "interrupt") yield* Fiber.interrupt(item!.fiber)
                else {
                  held.push(item!)
                  yield* pool.report(KeyPool.fingerprint(["a", "b", "c"][op.pick % 3]!), { _tag: "Failure" })
                }
              }
              yield* settle
              const status = yield* pool.status
              if (maxConcurrentPerKey !== undefined && status.some((s) => s.inFlight > maxConcurrentPerKey)) return false
            }
            yield* Effect.forEach(held, (h) => Fiber.interrupt(h.fiber))
            yield* Effect.forEach(ended, Fiber.await)
            const status = yield* pool.status
            return status.every((s) => s.inFlight === 0)
          })
          return Effect.runPromise(program)
        }
      ),
      { numRuns: 150 }
    )
  })
})

// ---------------------------------------------------------------------------
// Through a provider: every outcome is reported, and key-specific failures re-try at once
// ---------------------------------------------------------------------------

const stackWith = (baseUrl: string, pool: Layer.Layer<KeyPool.KeyPool, ConfigError.ConfigError>, limiter: Layer.Layer<RateLimiter.RateLimiter, ConfigError.ConfigError>) =>
  OpenAiCompatible.layer({ model: "gpt-4o-mini", baseUrl }).pipe(
    Layer.provideMerge(pool),
    Layer.provideMerge(limiter),
    Layer.provide(Transport.layerUndici)
  )

const authOf = (request: Testing.RecordedRequest) => String(request.headers["authorization"])

describe("KeyPool through a provider", () => {
  it.scopedLive("an empty key list never reaches the provider: no request goes out without credentials", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({ reply: { text: "ok" } })
      const stack = stackWith(fake.baseUrl, KeyPool.layer({ providerId: "openai", keys: [] }), RateLimiter.unlimited)
      const error = yield* Effect.flip(LanguageModel.chat(Message.request("hi"))).pipe(Effect.provide(stack))
      expect(error._tag).toBe("NoKeyAvailableError")
      expect(yield* fake.requests).toHaveLength(0)
    }))

  it.scopedLive("layerPreset of a provider that needs a key fails at build on an empty env var", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(
        Layer.build(OpenAiCompatible.layerPreset("openai", { model: "gpt-4o-mini" }).pipe(Layer.provide(Layer.mergeAll(RateLimiter.unlimited, Transport.layerUndici))))
      ).pipe(Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["OPENAI_API_KEY", ""]]))))
      expect(String(error)).toContain("OPENAI_API_KEY is set but empty")
    }))

  it.scopedLive("a 429 on one key is re-tried at once on another, past the limiter's pause", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({ reply: { text: "ok" } })
      yield* fake.inject({ _tag: "RateLimit", retryAfterSeconds: 30 })
      const stack = stackWith(fake.baseUrl, KeyPool.layer({ providerId: "openai", keys: ["k1", "k2"] }), RateLimiter.layer({ capacity: 10, refillPerSecond: 10 }))
      const [response, status, limiter] = yield* Effect.gen(function* () {
        const response = yield* LanguageModel.chat(Message.request("hi"))
        return [response, yield* KeyPool.status, yield* RateLimiter.status] as const
      }).pipe(Effect.provide(stack), Effect.timeout("5 seconds"))
      expect(response.text).toBe("ok")
      const requests = yield* fake.requests
      expect(requests.length).toBe(2)
      expect(authOf(requests[0]!)).not.toBe(authOf(requests[1]!))
      const first = status.find((s) => `Bearer ${["k1", "k2"].find((k) => fp(k) === s.keyId)}` === authOf(requests[0]!))!
      expect(first.state).toBe("coolingDown")
      expect(first.cooldownUntil! - Date.now()).toBeGreaterThan(25_000)
      // another key was healthy: the 429 cooled its own key and did not pause the limiter
      expect(limiter.pausedUntil ?? 0).toBeLessThanOrEqual(Date.now())
      expect(status.reduce((n, s) => n + s.successes, 0)).toBe(1)
    }))

  it.scopedLive("a 429 on the only healthy key pauses the limiter until its retry-after", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({ reply: { text: "ok" } })
      yield* fake.inject({ _tag: "RateLimit", retryAfterSeconds: 30 })
      const stack = stackWith(fake.baseUrl, KeyPool.layer({ providerId: "openai", keys: ["only"] }), RateLimiter.layer({ capacity: 10, refillPerSecond: 10 }))
      const [error, limiter] = yield* Effect.gen(function* () {
        const error = yield* Effect.flip(LanguageModel.chat(Message.request("hi")))
        return [error, yield* RateLimiter.status] as const
      }).pipe(Effect.provide(stack), Effect.timeout("5 seconds"))
      expect(error._tag).toBe("RateLimitError")
      expect(limiter.pausedUntil).toBeGreaterThan(Date.now() + 25_000)
    }))

  it.scopedLive("401, 403 and quota disable their key and re-try on the next; streams too", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({ reply: { text: "streamed fine", chunks: 3 } })
      yield* fake.inject(
        { _tag: "Status", status: 401, body: JSON.stringify({ error: { message: "Incorrect API key", type: "invalid_request_error", code: "invalid_api_key" } }) },
        { _tag: "Status", status: 403 },
        { _tag: "RateLimit", insufficientQuota: true }
      )
      const stack = stackWith(fake.baseUrl, KeyPool.layer({ providerId: "openai", keys: ["k1", "k2", "k3", "k4"] }), RateLimiter.unlimited)
      const [text, status] = yield* Effect.gen(function* () {
        const response = yield* LanguageModel.collect(LanguageModel.stream(Message.request("hi")))
        return [response.text, yield* KeyPool.status] as const
      }).pipe(Effect.provide(stack))
      expect(text).toBe("streamed fine")
      const requests = yield* fake.requests
      expect(new Set(requests.map(authOf)).size).toBe(4)
      expect(status.filter((s) => s.state === "disabled").map((s) => s.disabledReason)).toEqual(
        expect.arrayContaining([expect.stringContaining("Incorrect API key"), expect.stringContaining("403"), expect.stringContaining("quota")])
      )
      expect(status.find((s) => s.state === "disabled" && s.disabledReason!.includes("quota"))!.disabledUntil).toBeGreaterThan(Date.now())
      expect(status.every((s) => s.inFlight === 0)).toBe(true)
    }))

  it.scopedLive("when every key is rate limited the 429 surfaces, then NoKeyAvailableError names the wait", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({ reply: { text: "ok" } })
      yield* fake.inject({ _tag: "RateLimit", retryAfterMs: 20_000 }, { _tag: "RateLimit", retryAfterMs: 40_000 })
      const stack = stackWith(fake.baseUrl, KeyPool.layer({ providerId: "openai", keys: ["k1", "k2"] }), RateLimiter.unlimited)
      const [first, second] = yield* Effect.gen(function* () {
        const first = yield* Effect.flip(LanguageModel.chat(Message.request("hi")))
        const second = yield* Effect.flip(LanguageModel.chat(Message.request("hi")))
        return [first, second] as const
      }).pipe(Effect.provide(stack))
      expect(first._tag).toBe("RateLimitError")
      expect((yield* fake.requests).length).toBe(2)
      expect(second._tag).toBe("NoKeyAvailableError")
      const wait = Duration.toMillis((second as LlmError.NoKeyAvailableError).retryAfter!)
      expect(wait).toBeGreaterThan(15_000)
      expect(wait).toBeLessThanOrEqual(20_000)
    }))

  it.scopedLive("a generic server error is reported but not re-tried on another key", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({ reply: { text: "ok" } })
      yield* fake.inject({ _tag: "Status", status: 500 })
      const stack = stackWith(fake.baseUrl, KeyPool.layer({ providerId: "openai", keys: ["k1", "k2"] }), RateLimiter.unlimited)
      const [error, status] = yield* Effect.gen(function* () {
        return [yield* Effect.flip(LanguageModel.chat(Message.request("hi"))), yield* KeyPool.status] as const
      }).pipe(Effect.provide(stack))
      expect(error._tag).toBe("ServerError")
      expect((yield* fake.requests).length).toBe(1)
      expect(status.reduce((n, s) => n + s.failures, 0)).toBe(1)
      expect(status.every((s) => s.state === "healthy")).toBe(true)
    }))

  it.scopedLive("a 429 whose retry-after is 0, negative, unparseable or past never re-sends to the key that got it", () =>
    Effect.gen(function* () {
      for (const retryAfter of ["0", "-1", "1 2", "Thu, 01 Jan 1970 00:00:00 GMT"]) {
        const fake = yield* Testing.FakeProvider.make({
          respond: () => ({ _tag: "Status", status: 429, headers: { "retry-after": retryAfter }, body: JSON.stringify({ error: { message: "slow down", type: "rate_limit_exceeded" } }) })
        })
        // one key: one request, then the error (backoff is Retry's, not an immediate loop)
        const one = stackWith(fake.baseUrl, KeyPool.layer({ providerId: "openai", keys: ["only"] }), RateLimiter.unlimited)
        const error = yield* Effect.flip(LanguageModel.chat(Message.request("hi"))).pipe(Effect.provide(one), Effect.timeout("5 seconds"))
        expect(error._tag, `retry-after: ${retryAfter}`).toBe("RateLimitError")
        expect((yield* fake.requests).length, `retry-after: ${retryAfter}`).toBe(1)
        expect((error as LlmError.RateLimitError).retryAfter, `retry-after: ${retryAfter}`).toBeUndefined()
        // three keys: each key once at most, whatever the header says
        yield* fake.clear
        const three = stackWith(fake.baseUrl, KeyPool.layer({ providerId: "openai", keys: ["k1", "k2", "k3"] }), RateLimiter.unlimited)
        yield* Effect.flip(LanguageModel.chat(Message.request("hi"))).pipe(Effect.provide(three), Effect.timeout("5 seconds"))
        const sent = (yield* fake.requests).map(authOf)
        expect(sent.length, `retry-after: ${retryAfter}`).toBe(3)
        expect(new Set(sent).size, `retry-after: ${retryAfter}`).toBe(3)
      }
    }))

  it.scopedLive("an immediate re-try never lands on a key this call already tried, even one back at once", () =>
    Effect.gen(function* () {
      // a tiny positive retry-after: the key is back before the re-try leases
      const fake = yield* Testing.FakeProvider.make({ respond: () => ({ _tag: "RateLimit", retryAfterMs: 1 }) })
      const stack = stackWith(fake.baseUrl, KeyPool.layer({ providerId: "openai", keys: ["k1", "k2"] }), RateLimiter.unlimited)
      const error = yield* Effect.flip(LanguageModel.chat(Message.request("hi"))).pipe(Effect.provide(stack), Effect.timeout("5 seconds"))
      expect(error._tag).toBe("RateLimitError")
      const sent = (yield* fake.requests).map(authOf)
      expect(sent.length).toBeLessThanOrEqual(2)
      expect(new Set(sent).size).toBe(sent.length)
    }))
})
