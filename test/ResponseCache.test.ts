import { describe, expect, it } from "@effect/vitest"
import { spawn } from "node:child_process"
import * as net from "node:net"
import { ConfigError, Context, Deferred, type Duration, Effect, Exit, Fiber, Layer, Logger, Ref, Scope, Stream, TestClock } from "effect"
import { inject } from "vitest"
import { KeyPool, LanguageModel, LlmError, Message, OpenAiCompatible, RateLimiter, ResponseCache, Transport } from "../src/index.js"
import * as Redis from "../src/Redis.js"
import * as Testing from "../src/Testing.js"
import { toWireRequest } from "../src/internal/providers/openaiChat/request.js"

const redisUrl = inject("redisUrl")
if (redisUrl === "") console.warn("[redis] no redis-server: the Redis ResponseCache tests are skipped")
const redisCluster = inject("redisCluster").split(",").filter((url) => url !== "")
if (redisUrl !== "" && redisCluster.length === 0) console.warn("[redis] no Redis Cluster: the ResponseCache tests on a cluster are skipped")

/** A model that counts upstream calls and, when gated, holds each call until the gate opens. */
const countingModel = Effect.gen(function* () {
  const calls = yield* Ref.make(0)
  const gate = yield* Ref.make<Deferred.Deferred<void> | undefined>(undefined)
  const mock = yield* Testing.makeMockModel({ steps: (request, n) => `answer ${n} to ${Message.contentText(request.messages[0]!)}` })
  const service: LanguageModel.Service = {
    ...mock.service,
    chat: (request) =>
      Effect.gen(function* () {
        yield* Ref.update(calls, (n) => n + 1)
        const g = yield* Ref.get(gate)
        if (g !== undefined) yield* Deferred.await(g)
        return yield* mock.service.chat(request)
      }),
    stream: (request) => Stream.unwrap(Effect.as(Ref.update(calls, (n) => n + 1), mock.service.stream(request)))
  }
  return { service, calls: Ref.get(calls), gate, requests: mock.requests }
})

let prefixCounter = 0
type StoreOptions = { maxEntries: number; ttl: Duration.DurationInput; staleFor?: Duration.DurationInput }
const stores: Array<[string, (options: StoreOptions) => Layer.Layer<ResponseCache.ResponseCacheStore, ConfigError.ConfigError>]> = [
  ["memory", (o) => ResponseCache.layerMemory(o)]
]
if (redisUrl !== "") {
  stores.push([
    "redis",
    (o) => Redis.layerResponseCacheStore({ url: redisUrl, prefix: `test:${process.pid}:${prefixCounter++}:`, ...o })
  ])
}
if (redisCluster.length > 0) {
  stores.push([
    "redis cluster",
    (o) => Redis.layerResponseCacheStore({ cluster: redisCluster, prefix: `test:${process.pid}:${prefixCounter++}:`, ...o })
  ])
}

describe.each(stores)("ResponseCache over the %s store", (_name, storeLayer) => {
  const withCache = <A, E>(
    options: StoreOptions,
    body: (m: Effect.Effect.Success<typeof countingModel>) => Effect.Effect<A, E, LanguageModel.LanguageModel | ResponseCache.ResponseCacheStore>,
    cacheOptions: ResponseCache.Options = {}
  ) =>
    Effect.gen(function* () {
      const m = yield* countingModel
      const layer = ResponseCache.layerWith(cacheOptions).pipe(
        Layer.provideMerge(storeLayer(options)),
        Layer.provide(Layer.succeed(LanguageModel.LanguageModel, m.service))
      )
      return yield* body(m).pipe(Effect.provide(layer))
    })

  it.scoped("a miss calls the model, a hit does not; stats count both; clear empties", () =>
    withCache({ maxEntries: 10, ttl: "1 hour" }, (m) =>
      Effect.gen(function* () {
        const first = yield* LanguageModel.chat(Message.request("hello"))
        const second = yield* LanguageModel.chat(Message.request("hello"))
        expect(second).toEqual(first)
        expect(yield* m.calls).toBe(1)
        expect(yield* ResponseCache.stats).toEqual({ hits: 1, misses: 1, hitRate: 0.5, size: 1, staleServed: 0 })
        yield* LanguageModel.chat(Message.request("something else"))
        expect(yield* m.calls).toBe(2)
        yield* ResponseCache.clear
        expect(yield* ResponseCache.stats).toEqual({ hits: 0, misses: 0, hitRate: 0, size: 0, staleServed: 0 })
        yield* LanguageModel.chat(Message.request("hello"))
        expect(yield* m.calls).toBe(3)
      })))

  it.scoped("entries expire after the TTL", () =>
    withCache({ maxEntries: 10, ttl: "1 minute" }, (m) =>
      Effect.gen(function* () {
        yield* LanguageModel.chat(Message.request("hello"))
        yield* TestClock.adjust("59 seconds")
        yield* LanguageModel.chat(Message.request("hello"))
        expect(yield* m.calls).toBe(1)
        yield* TestClock.adjust("2 seconds")
        const again = yield* LanguageModel.chat(Message.request("hello"))
        expect(yield* m.calls).toBe(2)
        expect(again.text).toBe("answer 1 to hello")
      })))

  it.scoped("beyond maxEntries the least recently used entry is evicted", () =>
    withCache({ maxEntries: 2, ttl: "1 hour" }, (m) =>
      Effect.gen(function* () {
        yield* LanguageModel.chat(Message.request("a"))
        yield* TestClock.adjust("1 second")
        yield* LanguageModel.chat(Message.request("b"))
        yield* TestClock.adjust("1 second")
        yield* LanguageModel.chat(Message.request("a")) // a is now fresher than b
        yield* TestClock.adjust("1 second")
        yield* LanguageModel.chat(Message.request("c")) // evicts b
        expect(yield* m.calls).toBe(3)
        expect((yield* ResponseCache.stats).size).toBe(2)
        yield* TestClock.adjust("1 second")
        yield* LanguageModel.chat(Message.request("a"))
        expect(yield* m.calls).toBe(3)
        yield* LanguageModel.chat(Message.request("b"))
        expect(yield* m.calls).toBe(4)
      })))

  it.scoped("concurrent identical requests share one upstream call", () =>
    withCache({ maxEntries: 10, ttl: "1 hour" }, (m) =>
      Effect.gen(function* () {
        const gate = yield* Deferred.make<void>()
        yield* Ref.set(m.gate, gate)
        const fibers = yield* Effect.forEach(
          [1, 2, 3, 4, 5],
          () => Effect.fork(LanguageModel.chat(Message.request("same question"))),
          { concurrency: "unbounded" }
        )
        // let every fiber reach the store and the in-flight table
        for (let i = 0; i < 50; i++) yield* Effect.yieldNow()
        yield* Deferred.succeed(gate, undefined)
        const answers = yield* Effect.forEach(fibers, Fiber.join)
        expect(yield* m.calls).toBe(1)
        expect(new Set(answers.map((a) => a.text)).size).toBe(1)
      })))

  it.scoped("a request can bypass the cache or force a refresh; neither field reaches the model", () =>
    withCache({ maxEntries: 10, ttl: "1 hour" }, (m) =>
      Effect.gen(function* () {
        const first = yield* LanguageModel.chat(Message.request("hello"))
        const bypassed = yield* LanguageModel.chat(Message.request("hello", { cache: "bypass" }))
        expect(bypassed.text).toBe("answer 1 to hello")
        const refreshed = yield* LanguageModel.chat(Message.request("hello", { cache: "refresh" }))
        expect(refreshed.text).toBe("answer 2 to hello")
        const cached = yield* LanguageModel.chat(Message.request("hello"))
        expect(cached.text).toBe("answer 2 to hello")
        expect(first.text).toBe("answer 0 to hello")
        expect(yield* m.calls).toBe(3)
        for (const request of yield* m.requests) expect("cache" in request).toBe(false)
      })))

  it.scoped("streams are not cached by default", () =>
    withCache({ maxEntries: 10, ttl: "1 hour" }, (m) =>
      Effect.gen(function* () {
        yield* LanguageModel.chat(Message.request("hello"))
        yield* Stream.runDrain(LanguageModel.stream(Message.request("hello")))
        yield* Stream.runDrain(LanguageModel.stream(Message.request("hello")))
        expect(yield* m.calls).toBe(3)
      })))

  it.scoped("with streams: replay, a cached answer replays as a stream and a finished stream is stored", () =>
    withCache(
      { maxEntries: 10, ttl: "1 hour" },
      (m) =>
        Effect.gen(function* () {
          const answer = yield* LanguageModel.chat(Message.request("hello"))
          const replayed = yield* LanguageModel.collect(LanguageModel.stream(Message.request("hello")))
          expect(replayed).toEqual(answer)
          expect(yield* m.calls).toBe(1)
          const streamed = yield* LanguageModel.collect(LanguageModel.stream(Message.request("new one")))
          const fromCache = yield* LanguageModel.chat(Message.request("new one"))
          expect(fromCache).toEqual(streamed)
          expect(yield* m.calls).toBe(2)
        }),
      { streams: "replay" }
    ))
  describe("degraded mode (serveStale)", () => {
    /** A model that answers until `failWith` is set, then fails with it (streams after `eventsFirst` events). */
    const flaky = Effect.gen(function* () {
      const failure = yield* Ref.make<{ error: LlmError.LlmError; eventsFirst: number } | undefined>(undefined)
      const calls = yield* Ref.make(0)
      const mock = yield* Testing.makeMockModel({ provider: "openai", model: "gpt-4o", steps: (request) => `answer to ${Message.contentText(request.messages[0]!)}` })
      const service: LanguageModel.Service = {
        ...mock.service,
        chat: (request) =>
          Effect.zipRight(
            Ref.update(calls, (n) => n + 1),
            Effect.flatMap(Ref.get(failure), (f) => f === undefined ? mock.service.chat(request) : Effect.fail(f.error))
          ),
        stream: (request) =>
          Stream.unwrap(Effect.zipRight(
            Ref.update(calls, (n) => n + 1),
            Effect.map(Ref.get(failure), (f) =>
              f === undefined
                ? mock.service.stream(request)
                : Stream.concat(Stream.take(mock.service.stream(request), f.eventsFirst), Stream.fail(f.error)))
          ))
      }
      return { service, calls: Ref.get(calls), failWith: (error: LlmError.LlmError, eventsFirst = 0) => Ref.set(failure, { error, eventsFirst }) }
    })
    const server = new LlmError.ServerError({ provider: "openai", model: "gpt-4o", status: 503, message: "overloaded" })
    const run = <A, E>(
      body: (m: Effect.Effect.Success<typeof flaky>) => Effect.Effect<A, E, LanguageModel.LanguageModel | ResponseCache.ResponseCacheStore>,
      options: ResponseCache.Options = { serveStale: true },
      store: StoreOptions = { maxEntries: 10, ttl: "1 minute", staleFor: "1 hour" }
    ) =>
      Effect.gen(function* () {
        const m = yield* flaky
        const layer = ResponseCache.layerWith(options).pipe(
          Layer.provideMerge(storeLayer(store)),
          Layer.provide(Layer.succeed(LanguageModel.LanguageModel, m.service))
        )
        return yield* body(m).pipe(Effect.provide(layer))
      })

    it.scoped("a model failure is answered with the stored reply past its TTL, marked stale, counted, and logged once per outage", () => {
      const logs: Array<string> = []
      const logger = Logger.replace(Logger.defaultLogger, Logger.make(({ message }) => void logs.push(String(message))))
      return run((m) =>
        Effect.gen(function* () {
          const fresh = yield* LanguageModel.chat(Message.request("hello"))
          expect(fresh.stale).toBeUndefined()
          yield* TestClock.adjust("2 minutes")
          yield* m.failWith(server)
          const first = yield* LanguageModel.chat(Message.request("hello"))
          expect(first).toEqual({ ...fresh, stale: true })
          const second = yield* LanguageModel.chat(Message.request("hello", { cache: "refresh" }))
          expect(second.stale).toBe(true)
          expect((yield* ResponseCache.stats).staleServed).toBe(2)
          expect(logs.filter((l) => l.includes("serving stale replies"))).toHaveLength(1)
          // a request never answered before still fails with the model's error
          expect((yield* Effect.flip(LanguageModel.chat(Message.request("never asked"))))._tag).toBe(server._tag)
        }).pipe(Effect.provide(logger)))
    })

    it.scoped("never for the caller's own errors, never past staleFor, never with cache: bypass, never when off", () =>
      Effect.gen(function* () {
        const callers = [
          new LlmError.InvalidRequestError({ provider: "openai", model: "gpt-4o", message: "bad" }),
          new LlmError.ContentFilterError({ provider: "openai", model: "gpt-4o", message: "filtered" }),
          new LlmError.BudgetExceededError({ provider: "openai", model: "gpt-4o", message: "budget", limit: 1, spent: 1 })
        ]
        yield* run((m) =>
          Effect.gen(function* () {
            yield* LanguageModel.chat(Message.request("hello"))
            yield* TestClock.adjust("2 minutes")
            for (const error of callers) {
              yield* m.failWith(error)
              expect((yield* Effect.flip(LanguageModel.chat(Message.request("hello"))))._tag).toBe(error._tag)
            }
            yield* m.failWith(server)
            expect((yield* Effect.flip(LanguageModel.chat(Message.request("hello", { cache: "bypass" }))))._tag).toBe(server._tag)
            yield* TestClock.adjust("1 hour")
            expect((yield* Effect.flip(LanguageModel.chat(Message.request("hello"))))._tag).toBe(server._tag)
            expect((yield* ResponseCache.stats).staleServed).toBe(0)
          }))
        yield* run((m) =>
          Effect.gen(function* () {
            yield* LanguageModel.chat(Message.request("hello"))
            yield* TestClock.adjust("2 minutes")
            yield* m.failWith(server)
            expect((yield* Effect.flip(LanguageModel.chat(Message.request("hello"))))._tag).toBe(server._tag)
          }), {})
      }))

    it.scoped("never past staleFor on the paths that skip the normal lookup: cache: refresh, and streams (bypassed or refreshed)", () =>
      Effect.gen(function* () {
        for (const streams of ["bypass", "replay"] as const) {
          yield* run((m) =>
            Effect.gen(function* () {
              const refresh = Message.request("hello", { cache: "refresh" })
              // a stream that is not replayed goes straight to the model; a replayed one with
              // cache: refresh skips the lookup too
              const streamed = streams === "bypass" ? Message.request("hello") : refresh
              yield* LanguageModel.chat(Message.request("hello"))
              yield* TestClock.adjust("2 minutes")
              yield* m.failWith(server)
              // past the TTL, within staleFor: each path reaches the stored reply
              expect((yield* LanguageModel.chat(refresh)).stale, `${streams}: refresh within staleFor`).toBe(true)
              expect((yield* LanguageModel.collect(LanguageModel.stream(streamed))).stale, `${streams}: stream within staleFor`).toBe(true)
              // past staleFor: no path serves it, however old the stored entry is
              yield* TestClock.adjust("1 hour")
              expect((yield* Effect.flip(LanguageModel.chat(refresh)))._tag, `${streams}: refresh past staleFor`).toBe(server._tag)
              expect((yield* Effect.flip(LanguageModel.collect(LanguageModel.stream(streamed))))._tag, `${streams}: stream past staleFor`)
                .toBe(server._tag)
              yield* TestClock.adjust("1 day")
              expect((yield* Effect.flip(LanguageModel.chat(refresh)))._tag, `${streams}: refresh a day later`).toBe(server._tag)
              expect((yield* ResponseCache.stats).staleServed).toBe(2)
            }), { serveStale: true, streams })
        }
      }))

    it.scoped("a stream that fails before its first event replays the stale reply; one that fails after events does not", () =>
      run((m) =>
        Effect.gen(function* () {
          const fresh = yield* LanguageModel.chat(Message.request("hello"))
          yield* TestClock.adjust("2 minutes")
          yield* m.failWith(server)
          const replayed = yield* LanguageModel.collect(LanguageModel.stream(Message.request("hello")))
          expect(replayed).toEqual({ ...fresh, stale: true })
          yield* m.failWith(server, 1)
          const error = yield* Effect.flip(LanguageModel.collect(LanguageModel.stream(Message.request("hello"))))
          expect(error._tag).toBe("ServerError")
          expect((yield* ResponseCache.stats).staleServed).toBe(1)
        })))
  })
})

/**
 * Two stacks over one store: one memory store provided to both, or (as two processes would
 * see it) two Redis connections with the same prefix.
 */
const sharedStores: Array<[string, Effect.Effect<readonly [ResponseCache.Store, ResponseCache.Store], ConfigError.ConfigError, Scope.Scope>]> = [
  ["one memory store under two stacks", Effect.map(ResponseCache.ResponseCacheStore.pipe(
    Effect.provide(ResponseCache.layerMemory({ maxEntries: 10, ttl: "1 hour" }))
  ), (store) => [store, store] as const)]
]
if (redisUrl !== "") {
  sharedStores.push(["one Redis store under two stacks", Effect.suspend(() => {
    const layer = Redis.layerResponseCacheStore({ url: redisUrl, prefix: `test:${process.pid}:shared:${prefixCounter++}:`, ttl: "1 hour" })
    const open = Effect.flatMap(Layer.build(layer), (context) => Effect.succeed(Context.get(context, ResponseCache.ResponseCacheStore)))
    return Effect.all([open, open])
  })])
}
if (redisCluster.length > 0) {
  sharedStores.push(["one Redis Cluster store under two stacks", Effect.suspend(() => {
    const layer = Redis.layerResponseCacheStore({ cluster: redisCluster, prefix: `test:${process.pid}:shared:${prefixCounter++}:`, ttl: "1 hour" })
    const open = Effect.flatMap(Layer.build(layer), (context) => Effect.succeed(Context.get(context, ResponseCache.ResponseCacheStore)))
    return Effect.all([open, open])
  })])
}

describe.each(sharedStores)("ResponseCache over %s", (_name, shared) => {
  /** A model of `provider`/`name` that names itself in each answer. */
  const named = (name: string) =>
    Effect.map(
      Testing.makeMockModel({ provider: "openai", model: name, steps: (request, n) => `${name} answer ${n} to ${Message.contentText(request.messages[0]!)}` }),
      (m) => ({ service: m.service, calls: Effect.map(m.requests, (r) => r.length) })
    )

  it.scoped("the same request to two models is two entries, for chat and for replayed streams", () =>
    Effect.gen(function* () {
      const [storeA, storeB] = yield* shared
      const a = yield* named("gpt-4o")
      const b = yield* named("gpt-4o-mini")
      const cachedA = yield* ResponseCache.decorator({ streams: "replay" })(a.service).pipe(Effect.provideService(ResponseCache.ResponseCacheStore, storeA))
      const cachedB = yield* ResponseCache.decorator({ streams: "replay" })(b.service).pipe(Effect.provideService(ResponseCache.ResponseCacheStore, storeB))
      // the request names no model: each stack's own model must be part of the key
      const request = Message.request("hello")
      expect(request.model).toBeUndefined()

      expect((yield* cachedA.chat(request)).text).toBe("gpt-4o answer 0 to hello")
      expect((yield* cachedB.chat(request)).text, "gpt-4o-mini was served gpt-4o's cached answer").toBe("gpt-4o-mini answer 0 to hello")
      expect([yield* a.calls, yield* b.calls]).toEqual([1, 1])
      expect((yield* storeA.stats).size).toBe(2)
      // each is then a hit for its own model only
      expect((yield* cachedA.chat(request)).text).toBe("gpt-4o answer 0 to hello")
      expect((yield* cachedB.chat(request)).text).toBe("gpt-4o-mini answer 0 to hello")
      expect([yield* a.calls, yield* b.calls]).toEqual([1, 1])

      // the same for a streamed request, whose answer is stored when it finishes
      const streamed = Message.request("stream me")
      expect((yield* LanguageModel.collect(cachedA.stream(streamed))).text).toBe("gpt-4o answer 1 to stream me")
      expect((yield* LanguageModel.collect(cachedB.stream(streamed))).text, "gpt-4o-mini replayed gpt-4o's stored stream").toBe(
        "gpt-4o-mini answer 1 to stream me"
      )
      expect([yield* a.calls, yield* b.calls]).toEqual([2, 2])
      expect((yield* LanguageModel.collect(cachedB.stream(streamed))).text).toBe("gpt-4o-mini answer 1 to stream me")
      expect([yield* a.calls, yield* b.calls]).toEqual([2, 2])
      expect((yield* storeB.stats).size).toBe(4)
    }))
})

describe("ResponseCache keys", () => {
  const base = Message.request([Message.system("be brief"), Message.user("hi")], { temperature: 0.2, maxTokens: 50 })
  const key = (r: Message.ChatRequest) => ResponseCache.keyOf("openai", "gpt-4o", r)

  it("ignore key order, defaulted fields, the end-user id and the cache switch", () => {
    const reordered: Message.ChatRequest = JSON.parse(
      `{"maxTokens":50,"temperature":0.2,"messages":[{"content":"be brief","role":"system"},{"content":"hi","role":"user"}]}`
    )
    expect(key(reordered)).toBe(key(base))
    expect(key({ ...base, topP: 1, presencePenalty: 0, frequencyPenalty: 0, stop: [], tools: [], extra: {} })).toBe(key(base))
    expect(key({ ...base, responseFormat: { type: "text" }, user: "end-user-42", cache: "refresh" })).toBe(key(base))
    expect(key({ ...base, messages: [Message.system("be brief"), Message.user([Message.text("hi")])] })).toBe(key(base))
  })

  it("change with anything that changes the answer", () => {
    const variants: Array<Message.ChatRequest> = [
      { ...base, temperature: 0.3 },
      { ...base, maxTokens: 51 },
      { ...base, messages: [Message.system("be brief"), Message.user("hi!")] },
      { ...base, seed: 1 },
      { ...base, tools: [{ name: "f", parameters: { type: "object" } }] },
      { ...base, responseFormat: { type: "json_object" } },
      { ...base, extra: { logit_bias: { "1": 2 } } },
      // an object call: the schema is in the key (generateObject's json_schema format)
      { ...base, responseFormat: { type: "json_schema", name: "r", schema: { type: "object" }, strict: true } },
      { ...base, responseFormat: { type: "json_schema", name: "r", schema: { type: "object", required: ["a"] }, strict: true } },
      // a tool result that reports a failure is another prompt than the same text as a success
      { ...base, messages: [...base.messages, Message.tool("c1", "{}", "f")] },
      { ...base, messages: [...base.messages, Message.tool("c1", "{}", "f", { isError: true })] }
    ]
    const keys = new Set([key(base), ...variants.map(key)])
    expect(keys.size).toBe(variants.length + 1)
    expect(ResponseCache.keyOf("openai", "gpt-4o-mini", base)).not.toBe(key(base))
    expect(ResponseCache.keyOf("groq", "gpt-4o", base)).not.toBe(key(base))
  })
})

describe("ResponseCache in a provider stack", () => {
  it("a provider ignores the cache field even without the cache layer", () => {
    const body = toWireRequest(Message.request("hi", { cache: "refresh" }), "gpt-4o-mini", true)
    expect(body).not.toHaveProperty("cache")
    expect(JSON.stringify(body)).not.toContain("refresh")
  })

  it.scoped("the cache field is never sent to the provider, and a hit sends nothing", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({ reply: { text: "cached?" } })
      const Stack = ResponseCache.layer.pipe(
        Layer.provide(OpenAiCompatible.layer({ model: "gpt-4o-mini", baseUrl: fake.baseUrl })),
        Layer.provide(KeyPool.layer({ providerId: "openai", keys: ["k1"] })),
        Layer.provide(RateLimiter.unlimited),
        Layer.provide(ResponseCache.layerMemory({ maxEntries: 10, ttl: "1 hour" })),
        Layer.provide(Transport.layerUndici)
      )
      yield* Effect.gen(function* () {
        yield* LanguageModel.chat(Message.request("hi", { cache: "refresh" }))
        yield* LanguageModel.chat(Message.request("hi"))
      }).pipe(Effect.provide(Stack))
      const requests = yield* fake.requests
      expect(requests).toHaveLength(1)
      expect(requests[0]!.body).not.toHaveProperty("cache")
    }))
})

describe("ResponseCache over an unreachable Redis", () => {
  it.scoped("degrades to misses with one warning and never fails the request", () =>
    Effect.gen(function* () {
      const logs: Array<string> = []
      const capture = Logger.add(Logger.make(({ logLevel, message }) => {
        logs.push(`${logLevel.label} ${Array.isArray(message) ? message.join(" ") : String(message)}`)
      }))
      const m = yield* countingModel
      const layer = ResponseCache.layer.pipe(
        Layer.provideMerge(Redis.layerResponseCacheStore({ url: "redis://127.0.0.1:1/0", ttl: "1 hour", commandTimeout: "200 millis" })),
        Layer.provide(Layer.succeed(LanguageModel.LanguageModel, m.service))
      )
      yield* Effect.gen(function* () {
        const a = yield* LanguageModel.chat(Message.request("hello"))
        const b = yield* LanguageModel.chat(Message.request("hello"))
        expect(a.text).toBe("answer 0 to hello")
        expect(b.text).toBe("answer 1 to hello")
        expect(yield* ResponseCache.stats).toEqual({ hits: 0, misses: 2, hitRate: 0, size: 0, staleServed: 0 })
      }).pipe(Effect.provide(layer), Effect.provide(capture))
      const warnings = logs.filter((l) => l.startsWith("WARN") && l.includes("Redis"))
      expect(warnings).toHaveLength(1)
    }), { timeout: 10_000 })

  it.scoped("its warning says what failed: the operation and Redis's own error, never the password", () =>
    Effect.gen(function* () {
      const logs: Array<string> = []
      const capture = Logger.add(Logger.make(({ logLevel, message }) => {
        logs.push(`${logLevel.label} ${Array.isArray(message) ? message.join(" ") : String(message)}`)
      }))
      const m = yield* countingModel
      const layer = ResponseCache.layer.pipe(
        Layer.provideMerge(Redis.layerResponseCacheStore({ url: "redis://:s3cret-pw@127.0.0.1:1/0", ttl: "1 hour", commandTimeout: "200 millis" })),
        Layer.provide(Layer.succeed(LanguageModel.LanguageModel, m.service))
      )
      yield* LanguageModel.chat(Message.request("hello")).pipe(Effect.provide(layer), Effect.provide(capture))
      const warning = logs.find((l) => l.startsWith("WARN") && l.includes("Redis"))
      expect(warning).toBeDefined()
      expect(warning).not.toContain("An unknown error occurred")
      // the operation, and ioredis' own reason (connection refused, closed, or no answer in time)
      expect(warning).toMatch(/Redis (connect|GET) failed \((connect ECONNREFUSED|Connection is closed|no answer within)/)
      expect(logs.join("\n")).not.toContain("s3cret-pw")
    }), { timeout: 10_000 })
})

describe.skipIf(redisUrl === "")("ResponseCache when Redis goes away and comes back", () => {
  const freePort = Effect.promise(() =>
    new Promise<number>((resolve) => {
      const server = net.createServer().listen(0, "127.0.0.1", () => {
        const port = (server.address() as net.AddressInfo).port
        server.close(() => resolve(port))
      })
    })
  )
  const isUp = (port: number) =>
    new Promise<boolean>((resolve) => {
      const socket = net.connect(port, "127.0.0.1", () => {
        socket.destroy()
        resolve(true)
      })
      socket.once("error", () => resolve(false))
    })
  /** A private redis-server on `port`, killed when the scope closes. */
  const redisOn = (port: number) =>
    Effect.acquireRelease(
      Effect.promise(async () => {
        const child = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], {
          stdio: "ignore"
        })
        for (let i = 0; i < 100 && !(await isUp(port)); i++) await new Promise((r) => setTimeout(r, 50))
        return child
      }),
      (child) => Effect.sync(() => child.kill("SIGKILL"))
    )

  it.live("misses while it is down, with one warning, and hits again once it is back", () =>
    Effect.gen(function* () {
      const port = yield* freePort
      const logs: Array<string> = []
      const capture = Logger.add(Logger.make(({ logLevel, message }) => {
        logs.push(`${logLevel.label} ${Array.isArray(message) ? message.join(" ") : String(message)}`)
      }))
      const first = yield* Scope.make()
      yield* Scope.extend(redisOn(port), first)
      const m = yield* countingModel
      const layer = ResponseCache.layer.pipe(
        Layer.provideMerge(Redis.layerResponseCacheStore({ url: `redis://127.0.0.1:${port}/0`, ttl: "1 hour", commandTimeout: "300 millis" })),
        Layer.provide(Layer.succeed(LanguageModel.LanguageModel, m.service))
      )
      const warnings = () => logs.filter((l) => l.startsWith("WARN")).length
      yield* Effect.gen(function* () {
        yield* LanguageModel.chat(Message.request("hello"))
        yield* LanguageModel.chat(Message.request("hello"))
        expect(yield* m.calls).toBe(1)

        yield* Scope.close(first, Exit.void)
        yield* Effect.sleep("100 millis")
        const down = yield* LanguageModel.chat(Message.request("hello"))
        expect(down.text).toBe("answer 1 to hello")
        yield* LanguageModel.chat(Message.request("hello"))
        expect(yield* m.calls).toBe(3)
        expect(warnings()).toBe(1)

        const second = yield* Scope.make()
        yield* Scope.extend(redisOn(port), second)
        // ioredis reconnects on its own schedule; ask until a repeat is served from the cache
        let hit = false
        for (let i = 0; i < 50 && !hit; i++) {
          yield* Effect.sleep("100 millis")
          const before = yield* m.calls
          yield* LanguageModel.chat(Message.request(`probe ${i}`))
          yield* LanguageModel.chat(Message.request(`probe ${i}`))
          hit = (yield* m.calls) === before + 1
        }
        expect(hit).toBe(true)
        expect(logs.some((l) => l.startsWith("INFO") && l.includes("answers again"))).toBe(true)
        expect(warnings()).toBe(1)
        yield* Scope.close(second, Exit.void)
      }).pipe(Effect.provide(layer), Effect.provide(capture))
    }), { timeout: 20_000 })
})
