/**
 * The two transports behave alike: every case runs through `Transport.layerUndici` (undici's
 * dispatcher, driven directly) and through `@effect/platform`'s HttpClient (what a provider
 * uses when no Transport is provided). The rest of the suite runs on `Transport.layerUndici`.
 */
import { NodeHttpClient } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Exit, Fiber, Layer, Redacted, Schema, Stream, Supervisor } from "effect"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import { Agent } from "undici"
import { KeyPool, LanguageModel, LlmError, Message, OpenAiCompatible, RateLimiter, Transport } from "../src/index.js"
import * as Testing from "../src/Testing.js"

const TEXT = "alpha beta gamma delta epsilon zeta eta theta"

const transports = [
  { name: "Transport.layerUndici", layer: Transport.layerUndici },
  { name: "HttpClient (no Transport)", layer: NodeHttpClient.layerUndici }
] as const

/** Counts the fibers started under it. */
class FiberCount extends Supervisor.AbstractSupervisor<number> {
  started = 0
  get value() {
    return Effect.sync(() => this.started)
  }
  override onStart() {
    this.started++
  }
}
const fibersStartedBy = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.suspend(() => {
    const count = new FiberCount()
    return Effect.map(Effect.supervised(effect, count), () => count.started)
  })

const inFlight = Effect.map(KeyPool.status, (keys) => keys.reduce((n, k) => n + k.inFlight, 0))
const textOf = (events: Chunk.Chunk<Message.StreamEvent>) =>
  Chunk.toReadonlyArray(events).map((e) => (e._tag === "TextDelta" ? e.text : "")).join("")

describe.each(transports)("$name", ({ layer }) => {
  const stack = (baseUrl: string, options: Partial<OpenAiCompatible.Options> = {}) =>
    OpenAiCompatible.layer({ model: "gpt-4o-mini", baseUrl, ...options }).pipe(
      Layer.provideMerge(KeyPool.layer({ providerId: "openai", keys: [Redacted.make("sk-transport-secret")] })),
      Layer.provide(RateLimiter.unlimited),
      Layer.provide(layer)
    )

  it.scoped("chat and stream carry the request as written and read the whole reply", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({ reply: { text: TEXT, chunks: 6 } })
      yield* Effect.gen(function* () {
        const reply = yield* LanguageModel.chat(Message.request("hi"))
        expect(reply.text).toBe(TEXT)
        const events = yield* Stream.runCollect(LanguageModel.stream(Message.request("hi")))
        expect(textOf(events)).toBe(TEXT)
        expect(yield* inFlight).toBe(0)
      }).pipe(Effect.provide(stack(fake.baseUrl)))
      const [chat, stream] = yield* fake.requests
      expect(chat!.path).toBe("/v1/chat/completions")
      expect(chat!.headers["content-type"]).toMatch(/^application\/json/)
      expect(chat!.headers["authorization"]).toBe("Bearer sk-transport-secret")
      expect((chat!.body as { stream?: boolean }).stream).toBeUndefined()
      expect(stream!.headers["accept"]).toBe("text/event-stream")
      expect((stream!.body as { stream?: boolean }).stream).toBe(true)
    }))

  it.scoped("with the default deadlines on, a chat forks no fiber, and a stream none beyond what consuming any stream does", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({ reply: { text: TEXT, chunks: 6 } })
      yield* Effect.gen(function* () {
        // warm: the pool, the connection and the limiter exist before counting
        expect((yield* LanguageModel.chat(Message.request("hi"))).text).toBe(TEXT)
        expect(yield* fibersStartedBy(LanguageModel.chat(Message.request("hi")))).toBe(0)
        const consuming = yield* fibersStartedBy(Stream.runDrain(Stream.fromIterable([1, 2, 3])))
        const streamed = yield* fibersStartedBy(Stream.runCollect(LanguageModel.stream(Message.request("hi"))))
        expect(streamed).toBe(consuming)
      }).pipe(Effect.provide(stack(fake.baseUrl)))
    }))

  it.scoped("an error status is read, typed and reported, for chat and for stream", () =>
    Effect.gen(function* () {
      const body = JSON.stringify({ error: { message: "Incorrect API key provided: sk-transport-secret", type: "invalid_request_error" } })
      const fake = yield* Testing.FakeProvider.make({
        faults: [{ _tag: "Status", status: 401, body }, { _tag: "Status", status: 401, body }]
      })
      yield* Effect.gen(function* () {
        const chat = yield* Effect.flip(LanguageModel.chat(Message.request("hi")))
        expect(chat._tag).toBe("AuthenticationError")
        expect(chat.message).toContain("Incorrect API key")
        expect(chat.message).not.toContain("sk-transport-secret")
      }).pipe(Effect.provide(stack(fake.baseUrl)))
      // a fresh pool: the first 401 disabled the only key
      yield* Effect.gen(function* () {
        const stream = yield* Effect.flip(Stream.runDrain(LanguageModel.stream(Message.request("hi"))))
        expect(stream._tag).toBe("AuthenticationError")
        expect(stream.message).not.toContain("sk-transport-secret")
        expect(yield* inFlight).toBe(0)
      }).pipe(Effect.provide(stack(fake.baseUrl)))
    }))

  it.scoped("the reply size cap holds whether the reply says its length or is chunked; an error reply past it keeps its status error", () =>
    Effect.gen(function* () {
      const big = JSON.stringify({ id: "c", model: "m", choices: [{ index: 0, message: { role: "assistant", content: "x".repeat(300_000) }, finish_reason: "stop" }] })
      const error = JSON.stringify({ error: { message: "bad request", type: "invalid_request_error", pad: "x".repeat(200_000) } })
      // /v1/sized sends content-length, /v1/chunked sends the same body in pieces
      const url = yield* Effect.acquireRelease(
        Effect.async<{ url: string; srv: http.Server }>((resume) => {
          const srv = http.createServer((req, res) => {
            req.resume()
            const body = req.url!.includes("error") ? error : big
            const status = req.url!.includes("error") ? 400 : 200
            if (req.url!.includes("sized")) {
              res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(body) })
              res.end(body)
            } else {
              res.writeHead(status, { "content-type": "application/json" })
              for (let i = 0; i < body.length; i += 50_000) res.write(body.slice(i, i + 50_000))
              res.end()
            }
          })
          srv.listen(0, "127.0.0.1", () => resume(Effect.succeed({ url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}`, srv })))
        }),
        ({ srv }) => Effect.promise(() => new Promise<void>((done) => {
          srv.closeAllConnections()
          srv.close(() => done())
        }))
      ).pipe(Effect.map(({ url }) => url))
      for (const framing of ["sized", "chunked"]) {
        const tooLarge = yield* Effect.flip(LanguageModel.chat(Message.request("hi"))).pipe(
          Effect.provide(stack(`${url}/${framing}`, { maxResponseBytes: 100_000 }))
        )
        expect(tooLarge._tag).toBe("ResponseTooLargeError")
        const read = yield* LanguageModel.chat(Message.request("hi")).pipe(Effect.provide(stack(`${url}/${framing}`, { maxResponseBytes: 1_000_000 })))
        expect(read.text.length).toBe(300_000)
        const status = yield* Effect.flip(LanguageModel.chat(Message.request("hi"))).pipe(
          Effect.provide(stack(`${url}/${framing}-error`, { maxResponseBytes: 100_000 }))
        )
        expect(status._tag).toBe("InvalidRequestError")
      }
    }))

  it.scoped("a reset connection is a NetworkError; a stream cut after output is a partial StreamError", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({
        reply: { text: TEXT, chunks: 6 },
        faults: [{ _tag: "Reset" }, { _tag: "CutStream", afterChunks: 3, mode: "destroy" }]
      })
      yield* Effect.gen(function* () {
        const reset = yield* Effect.flip(LanguageModel.chat(Message.request("hi")))
        expect(reset._tag).toBe("NetworkError")
        const cut = yield* Effect.flip(Stream.runDrain(LanguageModel.stream(Message.request("hi"))))
        expect(cut._tag).toBe("StreamError")
        expect((cut as LlmError.StreamError).partial).toBe(true)
        expect(yield* inFlight).toBe(0)
      }).pipe(Effect.provide(stack(fake.baseUrl)))
    }))

  it.scoped("a refused connection is a NetworkError that names no key", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(LanguageModel.chat(Message.request("hi"))).pipe(
        Effect.provide(stack("http://127.0.0.1:1/v1"))
      )
      expect(error._tag).toBe("NetworkError")
      expect(error.message).toMatch(/ECONNREFUSED|connect/i)
      expect(JSON.stringify(error)).not.toContain("sk-transport-secret")
    }))

  it.scoped("a URL that does not parse is a NetworkError, not a defect", () =>
    Effect.gen(function* () {
      yield* Effect.gen(function* () {
        const chat = yield* Effect.flip(LanguageModel.chat(Message.request("hi")))
        expect(chat._tag).toBe("NetworkError")
        const stream = yield* Effect.flip(Stream.runDrain(LanguageModel.stream(Message.request("hi"))))
        expect(stream._tag).toBe("NetworkError")
        expect(yield* inFlight).toBe(0)
      }).pipe(Effect.provide(stack("not a url")))
    }))

  it.live("interrupting a stream mid-body aborts the request and frees the lease", () =>
    Effect.scoped(Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({ reply: { text: TEXT, chunks: 6, chunkDelayMs: 200 } })
      yield* Effect.gen(function* () {
        const fiber = yield* Effect.fork(Stream.runDrain(LanguageModel.stream(Message.request("hi"))))
        yield* Effect.sleep("250 millis")
        const exit = yield* Fiber.interrupt(fiber)
        expect(Exit.isInterrupted(exit)).toBe(true)
        expect(yield* inFlight).toBe(0)
        // the connection is usable again at once
        expect((yield* LanguageModel.chat(Message.request("again"))).text).toBe(TEXT)
      }).pipe(Effect.provide(stack(fake.baseUrl)))
    })))

  it.live("a long stream read slowly arrives whole (the socket pauses and resumes)", () =>
    Effect.scoped(Effect.gen(function* () {
      // ~1.5 MB of deltas, well past the undici transport's 256 KB of unread bytes
      const long = Array.from({ length: 3000 }, (_, i) => `word${i} `.padEnd(500, "x")).join("")
      const fake = yield* Testing.FakeProvider.make({ reply: { text: long, chunks: 3000 } })
      yield* Effect.gen(function* () {
        let first = true
        const text = yield* LanguageModel.stream(Message.request("hi")).pipe(
          // the reader stalls at the start while the whole body arrives
          Stream.tap(() => (first ? ((first = false), Effect.sleep("300 millis")) : Effect.void)),
          Stream.runFold("", (acc, e) => (e._tag === "TextDelta" ? acc + e.text : acc))
        )
        expect(text).toBe(long)
      }).pipe(Effect.provide(stack(fake.baseUrl)))
    })), 30_000)

  it.live("the total timeout aborts a slow stream with TimeoutError", () =>
    Effect.scoped(Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({ reply: { text: TEXT, chunks: 6, chunkDelayMs: 100 } })
      yield* Effect.gen(function* () {
        const error = yield* Effect.flip(Stream.runDrain(LanguageModel.stream(Message.request("hi"))))
        expect(error._tag).toBe("TimeoutError")
        expect(yield* inFlight).toBe(0)
      }).pipe(Effect.provide(stack(fake.baseUrl, { timeout: "250 millis" })))
    })))
})

describe("Transport.fromDispatcher", () => {
  it.scoped("sends over a dispatcher the caller owns", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({ reply: { text: TEXT } })
      const agent = yield* Effect.acquireRelease(Effect.sync(() => new Agent()), (a) => Effect.promise(() => a.close()))
      const reply = yield* LanguageModel.chat(Message.request("hi")).pipe(
        Effect.provide(
          OpenAiCompatible.layer({ model: "gpt-4o-mini", baseUrl: fake.baseUrl }).pipe(
            Layer.provide(KeyPool.layer({ providerId: "openai", keys: [Redacted.make("sk-a")] })),
            Layer.provide(RateLimiter.unlimited),
            Layer.provide(Layer.succeed(Transport.Transport, Transport.fromDispatcher(agent))),
            Layer.provide(NodeHttpClient.layerUndici)
          )
        )
      )
      expect(reply.text).toBe(TEXT)
    }))

  it.live("interrupting a stream aborts its request: a one-connection agent is free again at once", () =>
    Effect.scoped(Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({ reply: { text: TEXT, chunks: 6, chunkDelayMs: 1000 } })
      const agent = yield* Effect.acquireRelease(Effect.sync(() => new Agent({ connections: 1 })), (a) => Effect.promise(() => a.destroy()))
      yield* Effect.gen(function* () {
        const fiber = yield* Effect.fork(Stream.runDrain(LanguageModel.stream(Message.request("hi"))))
        yield* Effect.sleep("300 millis")
        yield* Fiber.interrupt(fiber)
        // without the abort, this waits ~5 s behind the rest of the stream on the one socket
        yield* fake.setReply({ text: TEXT })
        const reply = yield* LanguageModel.chat(Message.request("next")).pipe(Effect.timeout("1500 millis"))
        expect(reply.text).toBe(TEXT)
      }).pipe(Effect.provide(
        OpenAiCompatible.layer({ model: "gpt-4o-mini", baseUrl: fake.baseUrl }).pipe(
          Layer.provide(KeyPool.layer({ providerId: "openai", keys: [Redacted.make("sk-a")] })),
          Layer.provide(RateLimiter.unlimited),
          Layer.provide(Layer.succeed(Transport.Transport, Transport.fromDispatcher(agent))),
          Layer.provide(NodeHttpClient.layerUndici)
        )
      ))
    })), 15_000)
})

describe("Transport's contract", () => {
  it.effect("TransportFailure is a Schema.TaggedError: it decodes from its encoded form and fails an Effect as itself", () =>
    Effect.gen(function* () {
      const failure = Schema.decodeUnknownSync(Transport.TransportFailure)({ _tag: "TransportFailure", description: "ECONNRESET", reason: "network" })
      expect(failure).toBeInstanceOf(Transport.TransportFailure)
      expect(failure).toMatchObject({ _tag: "TransportFailure", description: "ECONNRESET", reason: "network" })
      const caught = yield* Effect.flip(Effect.gen(function* () {
        return yield* new Transport.TransportFailure({ description: "too big", reason: "tooLarge", limit: 10 })
      }))
      expect(caught.limit).toBe(10)
      expect(() => Schema.decodeUnknownSync(Transport.TransportFailure)({ _tag: "TransportFailure", description: "x", reason: "other" })).toThrow()
    }))

  it.effect("the default transport is viaHttpClient, which a provider binds to its HttpClient; alone it sends nothing and says why", () =>
    Effect.gen(function* () {
      expect(yield* Transport.Transport).toBe(Transport.viaHttpClient)
      const failure = yield* Effect.flip(Transport.viaHttpClient.text({ url: "http://127.0.0.1:1", headers: {}, body: "", secretHeaders: [] }))
      expect(failure._tag).toBe("TransportFailure")
      expect(failure.description).toContain("Transport.fromHttpClient")
    }))
})
