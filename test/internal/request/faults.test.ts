/**
 * The request path against replies that are wrong in shape, size or time, over real sockets:
 * every call ends with `Finish` (or a response) or a typed error, never a silent success, and
 * nothing waits forever with the default deadlines.
 */
import { describe, expect, it } from "@effect/vitest"
import { Config, ConfigError, Duration, Effect, Exit, Layer, Redacted, Stream } from "effect"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import {
  Anthropic,
  Gemini,
  KeyPool,
  LanguageModel,
  type LlmError,
  Message,
  Ollama,
  OpenAiCompatible,
  OpenAiResponses,
  RateLimiter,
  Retry,
  Transport
} from "../../../src/index.js"
import * as Testing from "../../../src/Testing.js"
import * as Http from "../../../src/internal/request/endpoint.js"

type Model = Layer.Layer<LanguageModel.LanguageModel, ConfigError.ConfigError, KeyPool.KeyPool | RateLimiter.RateLimiter | import("@effect/platform/HttpClient").HttpClient>

const over = (model: Model, keys: ReadonlyArray<string> = ["sk-faults-key"]) =>
  model.pipe(
    Layer.provideMerge(KeyPool.layer({ providerId: "test", keys })),
    Layer.provide(RateLimiter.unlimited),
    Layer.provide(Transport.layerUndici)
  )

/** Runs a stream to its end, keeping what it delivered and how it ended. */
const drain = (stream: Stream.Stream<Message.StreamEvent, LlmError.LlmError, LanguageModel.LanguageModel>) =>
  Effect.gen(function* () {
    const events: Array<Message.StreamEvent> = []
    const exit = yield* stream.pipe(Stream.runForEach((e) => Effect.sync(() => void events.push(e))), Effect.exit)
    const error = Exit.isFailure(exit) && exit.cause._tag === "Fail" ? exit.cause.error : undefined
    return { events, exit, error }
  })

const textOf = (events: ReadonlyArray<Message.StreamEvent>) => events.map((e) => (e._tag === "TextDelta" ? e.text : "")).join("")

const chatFrame = (delta: unknown) => `data: ${JSON.stringify({ id: "c1", model: "m", choices: [{ index: 0, delta, finish_reason: null }] })}\n\n`

/** Each wire format: a good first event carrying "Hello", then a frame with a null where an object belongs. */
const damaged: ReadonlyArray<{ readonly name: string; readonly model: (baseUrl: string) => Model; readonly good: string; readonly bad: string; readonly contentType: string }> = [
  {
    name: "Chat Completions {\"choices\":[null]}",
    model: (url) => OpenAiCompatible.layer({ model: "m", baseUrl: `${url}/v1` }),
    good: chatFrame({ content: "Hello" }),
    bad: `data: {"choices":[null]}\n\n`,
    contentType: "text/event-stream"
  },
  {
    name: "Responses, a null item",
    model: (url) => OpenAiResponses.layer({ model: "m", baseUrl: `${url}/v1` }),
    good: `event: response.output_text.delta\ndata: ${JSON.stringify({ type: "response.output_text.delta", output_index: 0, content_index: 0, delta: "Hello" })}\n\n`,
    bad: `event: response.output_item.added\ndata: {"type":"response.output_item.added","output_index":1,"item":null}\n\n`,
    contentType: "text/event-stream"
  },
  {
    name: "Anthropic, a null content block",
    model: (url) => Anthropic.layer({ model: "m", baseUrl: url }),
    good: [
      `event: message_start\ndata: {"type":"message_start","message":{"id":"msg","model":"m","usage":{"input_tokens":1}}}\n\n`,
      `event: content_block_start\ndata: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}\n\n`,
      `event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}\n\n`
    ].join(""),
    bad: `event: content_block_start\ndata: {"type":"content_block_start","index":1,"content_block":null}\n\n`,
    contentType: "text/event-stream"
  },
  {
    name: "Gemini {\"candidates\":[null]}",
    model: (url) => Gemini.layer({ model: "m", baseUrl: `${url}/v1beta` }),
    good: `data: ${JSON.stringify({ candidates: [{ content: { role: "model", parts: [{ text: "Hello" }] } }] })}\r\n\r\n`,
    bad: `data: {"candidates":[null]}\r\n\r\n`,
    contentType: "text/event-stream"
  },
  {
    name: "Ollama, a null message",
    model: (url) => Ollama.layer({ model: "m", baseUrl: url }),
    good: `${JSON.stringify({ model: "m", message: { role: "assistant", content: "Hello" }, done: false })}\n`,
    bad: `{"model":"m","message":null,"done":false}\n`,
    contentType: "application/x-ndjson"
  }
]

describe("a malformed frame never ends a stream as a success", () => {
  for (const wire of damaged) {
    it.scoped(`${wire.name}: before any event, a typed error that is not partial`, () =>
      Effect.gen(function* () {
        const fake = yield* Testing.FakeProvider.make({ faults: [{ _tag: "Raw", body: wire.bad, contentType: wire.contentType }] })
        const { events, error } = yield* drain(LanguageModel.stream(Message.request("hi"))).pipe(Effect.provide(over(wire.model(fake.url))))
        expect(events).toEqual([])
        // a frame the parser cannot read is malformed; one it skips leaves a stream that never finished
        expect(["MalformedResponseError", "StreamError"]).toContain(error?._tag)
        expect(error?._tag === "StreamError" && error.partial).toBe(false)
      }))

    it.scoped(`${wire.name}: after events, they are delivered, then a partial StreamError with their text`, () =>
      Effect.gen(function* () {
        // the good events and the bad frame arrive in one read: the good ones must not be lost
        const fake = yield* Testing.FakeProvider.make({ faults: [{ _tag: "Raw", body: wire.good + wire.bad, contentType: wire.contentType }] })
        const { events, error } = yield* drain(LanguageModel.stream(Message.request("hi"))).pipe(Effect.provide(over(wire.model(fake.url))))
        expect(textOf(events)).toBe("Hello")
        expect(error?._tag).toBe("StreamError")
        expect(error?._tag === "StreamError" && error.partial).toBe(true)
        expect(error?._tag === "StreamError" ? error.partialText : undefined).toBe("Hello")
      }))
  }

  it.scoped("a stream that ends cleanly after reasoning only is a partial StreamError, not a success", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({ faults: [{ _tag: "Raw", body: chatFrame({ role: "assistant", content: null }) + chatFrame({ reasoning_content: "The" }) }] })
      const { events, error } = yield* drain(LanguageModel.stream(Message.request("hi"))).pipe(
        Effect.provide(over(OpenAiCompatible.layer({ model: "m", baseUrl: fake.baseUrl })))
      )
      expect(events.map((e) => e._tag)).toEqual(["ReasoningDelta"])
      expect(error?._tag === "StreamError" && error.partial).toBe(true)
    }))

  it.scoped("an SSE event past maxEventBytes fails with ResponseTooLargeError, not retried", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({
        faults: [{ _tag: "Raw", body: [chatFrame({ content: "Hi" }), `data: {"pad":"${"x".repeat(50_000)}`, `${"y".repeat(50_000)}"}\n\n`] }]
      })
      const stack = Retry.layer(Retry.schedule({ initialDelay: "1 millis" })).pipe(
        Layer.provideMerge(over(OpenAiCompatible.layer({ model: "m", baseUrl: fake.baseUrl, maxEventBytes: 10_000 })))
      )
      const { events, error } = yield* drain(LanguageModel.stream(Message.request("hi"))).pipe(Effect.provide(stack))
      expect(textOf(events)).toBe("Hi")
      // after an event, the cap is reported as a partial stream that names it
      expect(error?._tag).toBe("StreamError")
      expect(error?.message).toContain("maxEventBytes")
      expect((yield* fake.requests).length).toBe(1)
    }))

  it.scoped("an NDJSON line past maxEventBytes fails with ResponseTooLargeError before any event", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({ faults: [{ _tag: "Raw", body: `{"pad":"${"x".repeat(20_000)}"}\n`, contentType: "application/x-ndjson" }] })
      const { error } = yield* drain(LanguageModel.stream(Message.request("hi"))).pipe(
        Effect.provide(over(Ollama.layer({ model: "m", baseUrl: fake.url, maxEventBytes: 10_000 })))
      )
      expect(error?._tag).toBe("ResponseTooLargeError")
      expect(error?.retryable).toBe(false)
    }))
})

describe("reply size caps", () => {
  it.scoped("a JSON reply past maxResponseBytes is a non-retryable ResponseTooLargeError, downloaded once", () =>
    Effect.gen(function* () {
      const big = JSON.stringify({ id: "c", model: "m", choices: [{ message: { content: "x".repeat(300_000) }, finish_reason: "stop" }] })
      const fake = yield* Testing.FakeProvider.make({ respond: () => ({ _tag: "Raw", body: big, contentType: "application/json" }) })
      const stack = Retry.layer(Retry.schedule({ initialDelay: "1 millis" })).pipe(
        Layer.provideMerge(over(OpenAiCompatible.layer({ model: "m", baseUrl: fake.baseUrl, maxResponseBytes: 100_000 })))
      )
      const error = yield* Effect.flip(LanguageModel.chat(Message.request("hi"))).pipe(Effect.provide(stack))
      expect(error._tag).toBe("ResponseTooLargeError")
      expect(error.retryable).toBe(false)
      expect((yield* fake.requests).length).toBe(1)
      // under the cap, the same reply is read
      const ok = yield* LanguageModel.chat(Message.request("hi")).pipe(
        Effect.provide(over(OpenAiCompatible.layer({ model: "m", baseUrl: fake.baseUrl, maxResponseBytes: 1_000_000 })))
      )
      expect(ok.text.length).toBe(300_000)
    }))

  it.scoped("an error reply past the cap keeps its status error, read from its start", () =>
    Effect.gen(function* () {
      const body = JSON.stringify({ error: { message: "bad request", type: "invalid_request_error", pad: "x".repeat(200_000) } })
      const fake = yield* Testing.FakeProvider.make({ faults: [{ _tag: "Status", status: 400, body }] })
      const error = yield* Effect.flip(LanguageModel.chat(Message.request("hi"))).pipe(
        Effect.provide(over(OpenAiCompatible.layer({ model: "m", baseUrl: fake.baseUrl, maxResponseBytes: 100_000 })))
      )
      expect(error._tag).toBe("InvalidRequestError")
    }))
})

describe("a 200 whose body is an error object", () => {
  it.scoped("a gateway's rate limit is a RateLimitError with the provider's message, and cools the key", () =>
    Effect.gen(function* () {
      const body = JSON.stringify({ error: { message: "Rate limit exceeded: free-models-per-min", type: "rate_limit_exceeded", code: "rate_limit_exceeded" } })
      const fake = yield* Testing.FakeProvider.make({ faults: [{ _tag: "Raw", body, contentType: "application/json" }] })
      yield* Effect.gen(function* () {
        const error = yield* Effect.flip(LanguageModel.chat(Message.request("hi")))
        expect(error._tag).toBe("RateLimitError")
        expect(error.message).toContain("Rate limit exceeded: free-models-per-min")
        expect(error.message).not.toContain("Expected")
        const [key] = yield* KeyPool.status
        expect(key?.state).toBe("coolingDown")
      }).pipe(Effect.provide(over(OpenAiCompatible.layer({ model: "m", baseUrl: fake.baseUrl }))))
    }))

  it.scoped("a numeric code, Anthropic's error envelope and Ollama's string error map by kind", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({})
      const chat = (model: Model) => Effect.flip(LanguageModel.chat(Message.request("hi"))).pipe(Effect.provide(over(model)))
      yield* fake.inject({ _tag: "Raw", body: JSON.stringify({ error: { code: 503, message: "upstream down" } }), contentType: "application/json" })
      const numeric = yield* chat(OpenAiCompatible.layer({ model: "m", baseUrl: fake.baseUrl }))
      expect(numeric._tag).toBe("ServerError")
      expect(numeric.retryable).toBe(true)
      yield* fake.inject({ _tag: "Raw", body: JSON.stringify({ type: "error", error: { type: "authentication_error", message: "invalid x-api-key" } }), contentType: "application/json" })
      const anthropic = yield* chat(Anthropic.layer({ model: "m", baseUrl: fake.url }))
      expect(anthropic._tag).toBe("AuthenticationError")
      yield* fake.inject({ _tag: "Raw", body: JSON.stringify({ error: "model 'nope' not found" }), contentType: "application/json" })
      const ollama = yield* chat(Ollama.layer({ model: "m", baseUrl: fake.url }))
      expect(ollama._tag).toBe("InvalidRequestError")
      expect(ollama.message).toContain("model 'nope' not found")
    }))

  it.scoped("a stream request answered with 200 and a JSON error object fails with the mapped error", () =>
    Effect.gen(function* () {
      const body = JSON.stringify({ error: { message: "Rate limit exceeded", type: "rate_limit_exceeded" } })
      const fake = yield* Testing.FakeProvider.make({ faults: [{ _tag: "Raw", body, contentType: "application/json" }] })
      const { error } = yield* drain(LanguageModel.stream(Message.request("hi"))).pipe(
        Effect.provide(over(OpenAiCompatible.layer({ model: "m", baseUrl: fake.baseUrl })))
      )
      expect(error?._tag).toBe("RateLimitError")
    }))
})

/** A loopback server whose handler writes whatever it likes, slowly. */
const server = (handler: (res: http.ServerResponse) => Promise<void>) =>
  Effect.acquireRelease(
    Effect.async<{ url: string; srv: http.Server }>((resume) => {
      const srv = http.createServer((req, res) => {
        req.resume()
        void handler(res).catch(() => undefined)
      })
      srv.listen(0, "127.0.0.1", () => resume(Effect.succeed({ url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}/v1`, srv })))
    }),
    ({ srv }) => Effect.promise(() => new Promise<void>((done) => {
      srv.closeAllConnections()
      srv.close(() => done())
    }))
  )
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

describe("deadlines", () => {
  const idleCases: ReadonlyArray<readonly [string, string]> = [
    ["SSE comments (': ping')", ": ping\n\n"],
    ["empty deltas", chatFrame({ content: "" })]
  ]
  for (const [name, keepAlive] of idleCases) {
    it.live(`idle time is between events: ${name} do not keep a stalled stream alive`, () =>
      Effect.scoped(Effect.gen(function* () {
        const { url } = yield* server(async (res) => {
          res.writeHead(200, { "content-type": "text/event-stream" })
          res.write(chatFrame({ content: "Hi" }))
          for (let i = 0; i < 100 && !res.destroyed; i++) {
            await sleep(50)
            res.write(keepAlive)
          }
          res.end()
        })
        const started = Date.now()
        const { events, error } = yield* drain(LanguageModel.stream(Message.request("hi"))).pipe(
          Effect.provide(over(OpenAiCompatible.layer({ model: "m", baseUrl: url, idleTimeout: "400 millis" })))
        )
        expect(textOf(events)).toBe("Hi")
        expect(error?._tag).toBe("TimeoutError")
        expect(error?._tag === "TimeoutError" ? error.phase : undefined).toBe("idle")
        expect(Date.now() - started).toBeLessThan(2_000)
      })))
  }

  it.live("a consumer slower than the idle deadline is not blamed on the provider", () =>
    Effect.scoped(Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({ reply: { text: "one two three four", chunks: 4 } })
      const events = yield* LanguageModel.stream(Message.request("hi")).pipe(
        Stream.tap(() => Effect.sleep("150 millis")),
        Stream.runCollect,
        Effect.provide(over(OpenAiCompatible.layer({ model: "m", baseUrl: fake.baseUrl, idleTimeout: "100 millis" })))
      )
      expect([...events].at(-1)?._tag).toBe("Finish")
    })))

  it.live("a trickle of one byte at a time ends with the first-event deadline", () =>
    Effect.scoped(Effect.gen(function* () {
      const { url } = yield* server(async (res) => {
        res.writeHead(200, { "content-type": "text/event-stream" })
        for (const byte of ": keep-alive comment that never ends\n") {
          if (res.destroyed) return
          res.write(byte)
          await sleep(30)
        }
      })
      const { error } = yield* drain(LanguageModel.stream(Message.request("hi"))).pipe(
        Effect.provide(over(OpenAiCompatible.layer({ model: "m", baseUrl: url, firstTokenTimeout: "300 millis" })))
      )
      expect(error?._tag === "TimeoutError" ? error.phase : error?._tag).toBe("firstToken")
    })))

  it.live("a stream that never ends ends at its total timeout", () =>
    Effect.scoped(Effect.gen(function* () {
      const { url } = yield* server(async (res) => {
        res.writeHead(200, { "content-type": "text/event-stream" })
        while (!res.destroyed) {
          res.write(chatFrame({ content: "more " }))
          await sleep(20)
        }
      })
      const { events, error } = yield* drain(LanguageModel.stream(Message.request("hi"))).pipe(
        Effect.provide(over(OpenAiCompatible.layer({ model: "m", baseUrl: url, timeout: "500 millis" })))
      )
      expect(events.length).toBeGreaterThan(0)
      expect(error?._tag === "TimeoutError" ? error.phase : error?._tag).toBe("request")
    })))

  it.effect("with no options every provider has finite defaults for every phase", () =>
    Effect.gen(function* () {
      const endpoint = yield* Http.resolveEndpoint({ provider: "p", auth: () => ({}) }).pipe(
        Effect.provide(Layer.mergeAll(KeyPool.layerKeyless("p"), RateLimiter.unlimited, Transport.layerUndici))
      )
      for (const d of [endpoint.timeout, endpoint.streamTimeout, endpoint.firstTokenTimeout, endpoint.idleTimeout]) {
        expect(Duration.isFinite(d)).toBe(true)
      }
      expect(Duration.toMillis(endpoint.timeout)).toBe(600_000)
      expect(Duration.toMillis(endpoint.firstTokenTimeout)).toBe(600_000)
      expect(Duration.toMillis(endpoint.idleTimeout)).toBe(300_000)
      expect(Duration.toMillis(endpoint.streamTimeout)).toBe(3_600_000)
    }))

  it.scoped("with no options, a JSON call and each stream read are bounded by the defaults", () =>
    Effect.gen(function* () {
      // a transport that records the bounds it was given, over the fake's real replies
      const fake = yield* Testing.FakeProvider.make({ reply: { text: "one two", chunks: 2 } })
      const requests: Array<number | undefined> = []
      const reads: Array<number> = []
      const recording = Layer.effect(
        Transport.Transport,
        Effect.map(Transport.Transport, (real): Transport.Service => ({
          timeouts: true,
          text: (request) => (requests.push(request.timeoutMs), real.text(request)),
          stream: (request) => {
            requests.push(request.timeoutMs)
            return Effect.map(real.stream(request), (reply) => ({
              ...reply,
              pullWithin: (ms: number) => (reads.push(ms), reply.pullWithin!(ms))
            }))
          }
        }))
      ).pipe(Layer.provide(Transport.layerUndici))
      const stack = OpenAiCompatible.layer({ model: "m", baseUrl: fake.baseUrl }).pipe(
        Layer.provide(KeyPool.layer({ providerId: "p", keys: ["k"] })),
        Layer.provide(RateLimiter.unlimited),
        // the recording transport on top: the later of two in a merge wins
        Layer.provide(Layer.merge(Transport.layerUndici, recording))
      )
      yield* LanguageModel.chat(Message.request("hi")).pipe(Effect.provide(stack))
      yield* Stream.runDrain(LanguageModel.stream(Message.request("hi"))).pipe(Effect.provide(stack))
      expect(requests.length).toBe(2)
      for (const ms of requests) expect(ms).toBeGreaterThan(590_000)
      for (const ms of requests) expect(ms).toBeLessThanOrEqual(600_000)
      expect(reads.length).toBeGreaterThan(0)
      for (const ms of reads) expect(ms).toBeLessThanOrEqual(600_000)
    }))
})

describe("no key in a stream's partial text", () => {
  const key = 'sk-partial-"SECRET"/k+e=y'
  const echoes = [key, JSON.stringify(key).slice(1, -1), encodeURIComponent(key)]
  const names = ["the key", "the JSON-escaped key", "the URL-encoded key"]
  for (const [i, echo] of echoes.entries()) {
    it.scoped(`a stream cut by the network after echoing ${names[i]} masks it`, () =>
      Effect.gen(function* () {
        const fake = yield* Testing.FakeProvider.make({
          reply: { text: `you sent ${echo} as your key, ${"and then a great deal more text follows ".repeat(4)}`, chunks: 8 },
          faults: [{ _tag: "CutStream", afterChunks: 7 }]
        })
        const { error } = yield* drain(LanguageModel.stream(Message.request("hi"))).pipe(
          Effect.provide(over(OpenAiCompatible.layer({ model: "m", baseUrl: fake.baseUrl }), [key]))
        )
        expect(error?._tag).toBe("StreamError")
        const shown = JSON.stringify(error) + (error?.message ?? "")
        expect(shown).toContain("as your key")
        for (const form of echoes) expect(shown).not.toContain(form)
      }))
  }

  it.scoped("a 401 body quoting the key JSON-escaped or URL-encoded is masked", () =>
    Effect.gen(function* () {
      const body = JSON.stringify({ error: { message: `Incorrect API key provided: ${key}; url ?key=${encodeURIComponent(key)}`, type: "invalid_request_error" } })
      const fake = yield* Testing.FakeProvider.make({ faults: [{ _tag: "Status", status: 401, body }] })
      const error = yield* Effect.flip(LanguageModel.chat(Message.request("hi"))).pipe(
        Effect.provide(over(OpenAiCompatible.layer({ model: "m", baseUrl: fake.baseUrl }), [key]))
      )
      const shown = JSON.stringify(error) + error.message
      for (const form of echoes) expect(shown).not.toContain(form)
      expect(shown).toContain("Incorrect API key provided")
    }))

  it.effect("a key with CR, LF or a character a header cannot carry is refused when the pool is built, by position", () =>
    Effect.gen(function* () {
      for (const bad of ["sk-line\nbreak", "sk-carriage\rreturn", "sk-n\u00fcl", "sk-\u0000"]) {
        const exit = yield* Effect.exit(KeyPool.make({ providerId: "p", keys: ["sk-good", bad] }))
        expect(Exit.isFailure(exit)).toBe(true)
        const text = JSON.stringify(exit) + String(Exit.isFailure(exit) ? exit.cause : "")
        expect(text).toContain("key 2 of 2")
        expect(text).not.toContain(bad)
      }
      const config = yield* Effect.exit(
        Layer.build(KeyPool.layerConfig({ providerId: "p", keys: Config.succeed(Redacted.make("sk-ok,sk-bad\r\nx")) }))
      ).pipe(Effect.scoped)
      expect(Exit.isFailure(config)).toBe(true)
    }))
})

describe("requests are validated before sending", () => {
  const cases: ReadonlyArray<readonly [string, Message.ChatRequest, string]> = [
    ["empty messages", { messages: [] }, "request.messages is empty"],
    ["a NaN temperature", Message.request("hi", { temperature: NaN }), "request.temperature must be a finite number"],
    ["an infinite topP", Message.request("hi", { topP: Infinity }), "request.topP must be a finite number"],
    ["a temperature out of range", Message.request("hi", { temperature: 3 }), "request.temperature must be between 0 and 2"],
    ["maxTokens 0", Message.request("hi", { maxTokens: 0 }), "request.maxTokens must be at least 1"],
    ["maxTokens -5", Message.request("hi", { maxTokens: -5 }), "request.maxTokens must be at least 1"],
    ["a fractional maxTokens", Message.request("hi", { maxTokens: 1.5 }), "request.maxTokens must be a whole number"],
    [
      "a tool result answering no earlier call",
      Message.request([
        Message.user("hi"),
        Message.assistant("", { toolCalls: [{ id: "call_1", name: "f", arguments: "{}" }] }),
        Message.tool("call_1", "ok"),
        Message.tool("call_2", "stray")
      ]),
      "request.messages[3].toolCallId"
    ]
  ]
  for (const [name, request, expected] of cases) {
    it.scoped(`${name} is an InvalidRequestError naming the field, and nothing is sent`, () =>
      Effect.gen(function* () {
        const fake = yield* Testing.FakeProvider.make({})
        const stack = over(OpenAiCompatible.layer({ model: "m", baseUrl: fake.baseUrl }))
        const chat = yield* Effect.flip(LanguageModel.chat(request)).pipe(Effect.provide(stack))
        const { error: streamed } = yield* drain(LanguageModel.stream(request)).pipe(Effect.provide(stack))
        for (const error of [chat, streamed]) {
          expect(error?._tag).toBe("InvalidRequestError")
          expect(error?.message).toContain(expected)
          expect(error?.retryable).toBe(false)
        }
        expect((yield* fake.requests).length).toBe(0)
      }))
  }
})

describe("FakeProvider's NullFrame fault, through every provider", () => {
  const providers: ReadonlyArray<readonly [string, (fake: Testing.FakeProviderService) => Model]> = [
    ["OpenAiCompatible", (fake) => OpenAiCompatible.layer({ model: "m", baseUrl: fake.baseUrl })],
    ["OpenAiResponses", (fake) => OpenAiResponses.layer({ model: "m", baseUrl: fake.baseUrl })],
    ["Anthropic", (fake) => Anthropic.layer({ model: "m", baseUrl: fake.url })],
    ["Gemini", (fake) => Gemini.layer({ model: "m", baseUrl: `${fake.url}/v1beta` })],
    ["Ollama", (fake) => Ollama.layer({ model: "m", baseUrl: fake.url })]
  ]
  for (const [name, model] of providers) {
    it.scoped(`${name}: a null frame mid-stream ends it with a partial StreamError, a null body is malformed`, () =>
      Effect.gen(function* () {
        const fake = yield* Testing.FakeProvider.make({ reply: { text: "one two three four five six", chunks: 6 } })
        const stack = over(model(fake))
        yield* fake.inject({ _tag: "NullFrame", afterChunks: 4 })
        const { events, error } = yield* drain(LanguageModel.stream(Message.request("hi"))).pipe(Effect.provide(stack))
        expect(events.at(-1)?._tag).not.toBe("Finish")
        expect(error?._tag).toBe("StreamError")
        expect(error?._tag === "StreamError" && error.partial).toBe(textOf(events).length > 0)
        yield* fake.inject({ _tag: "NullFrame" })
        const chat = yield* Effect.flip(LanguageModel.chat(Message.request("hi"))).pipe(Effect.provide(stack))
        expect(chat._tag).toBe("MalformedResponseError")
      }))
  }
})
