/**
 * The test doubles themselves: FakeProvider's wire behaviour and faults, checked with a
 * plain `fetch` so that the library under test is not also the judge; and mockModel.
 */
import { describe, expect, it } from "@effect/vitest"
import { Chunk, ConfigProvider, Effect, Exit, Layer, Scope, Stream } from "effect"
import { Anthropic, Gemini, KeyPool, LanguageModel, LlmError, Message, OpenAiCompatible, OpenAiResponses, RateLimiter, Transport } from "../src/index.js"
import { pdf, png } from "./support/media.js"
import * as Testing from "../src/Testing.js"
import { readAll as readBody } from "./support/readBody.js"

const post = (url: string, body: unknown) =>
  Effect.promise(() =>
    fetch(`${url}/v1/chat/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) })
  )

/** Test-only: the fake's JSON, read loosely. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const jsonOf = (response: Response) => Effect.promise(() => response.json() as Promise<any>)

const chatBody = { model: "gpt-test", messages: [{ role: "user", content: "hi" }] }
const streamBody = { ...chatBody, stream: true, stream_options: { include_usage: true } }

/** The `data:` payloads of an SSE text. */
const dataOf = (text: string) => text.split("\n\n").filter((f) => f.startsWith("data: ")).map((f) => f.slice(6))

/** Reads a body to its end, or to its failure; the text that arrived is kept either way. */
const readAll = (response: Response) => Effect.promise(() => readBody(response))

describe("FakeProvider replies", () => {
  it.scoped("a JSON chat completion with the configured text, tool calls and usage", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({
        reply: { text: "Hi!", toolCalls: [{ id: "c1", name: "f", arguments: "{\"a\":1}" }], reasoning: "hm" }
      })
      const response = yield* post(fake.url, chatBody)
      expect(response.status).toBe(200)
      const json = yield* jsonOf(response)
      expect(json.object).toBe("chat.completion")
      expect(json.model).toBe("gpt-test")
      expect(json.choices[0].message).toMatchObject({
        content: "Hi!",
        reasoning_content: "hm",
        tool_calls: [{ id: "c1", type: "function", function: { name: "f", arguments: "{\"a\":1}" } }]
      })
      expect(json.choices[0].finish_reason).toBe("tool_calls")
      expect(json.usage.total_tokens).toBe(json.usage.prompt_tokens + json.usage.completion_tokens)
      yield* fake.setReply({ text: "plain", usage: false })
      const bare = yield* Effect.flatMap(post(fake.url, chatBody), jsonOf)
      expect(bare.usage).toBeUndefined()
      expect(bare.choices[0].message.content).toBe("plain")
    }))

  it.scoped("SSE with the configured chunk count, usage only when asked, and [DONE]", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({ reply: { text: "abcdefghij", chunks: 5 } })
      const response = yield* post(fake.url, streamBody)
      expect(response.headers.get("content-type")).toBe("text/event-stream")
      const { text } = yield* readAll(response)
      const frames = dataOf(text)
      expect(frames.at(-1)).toBe("[DONE]")
      const chunks = frames.slice(0, -1).map((f) => JSON.parse(f))
      const contents = chunks.map((c) => c.choices[0]?.delta?.content).filter((c) => typeof c === "string" && c.length > 0)
      expect(contents).toEqual(["ab", "cd", "ef", "gh", "ij"])
      expect(chunks.at(-1).usage).toBeDefined()
      const noUsage = yield* readAll(yield* post(fake.url, { ...streamBody, stream_options: undefined }))
      expect(dataOf(noUsage.text).some((f) => f.includes("\"usage\""))).toBe(false)
    }))

  it.scoped("streams tool calls: id and name first, then argument fragments, per index", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({
        reply: { text: "", toolCalls: [{ name: "a", arguments: "{\"x\":12345}" }, { name: "b", arguments: "{}" }], chunks: 3 }
      })
      const { text } = yield* readAll(yield* post(fake.url, streamBody))
      const calls = dataOf(text).slice(0, -1).flatMap((f) => JSON.parse(f).choices[0]?.delta?.tool_calls ?? [])
      expect(calls[0]).toMatchObject({ index: 0, id: "call_0", function: { name: "a", arguments: "" } })
      const args = (index: number) => calls.filter((c: any) => c.index === index).map((c: any) => c.function.arguments).join("")
      expect(args(0)).toBe("{\"x\":12345}")
      expect(args(1)).toBe("{}")
      expect(calls.filter((c: any) => c.index === 0).length).toBeGreaterThan(2)
    }))

  it.scoped("records requests, applies faults in order then the reply, and lets respond choose", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({ faults: [{ _tag: "Status", status: 500 }] })
      yield* fake.inject({ _tag: "Status", status: 503 })
      expect((yield* post(fake.url, chatBody)).status).toBe(500)
      expect((yield* post(fake.url, chatBody)).status).toBe(503)
      expect((yield* post(fake.url, chatBody)).status).toBe(200)
      yield* fake.setResponder((request) =>
        (request.body as { model?: string }).model === "broken" ? { _tag: "Status", status: 418 } : { text: "chosen" }
      )
      expect((yield* post(fake.url, { ...chatBody, model: "broken" })).status).toBe(418)
      const chosen = yield* Effect.flatMap(post(fake.url, chatBody), jsonOf)
      expect(chosen.choices[0].message.content).toBe("chosen")
      const requests = yield* fake.requests
      expect(requests.map((r) => r.index)).toEqual([0, 1, 2, 3, 4])
      expect(requests[0]).toMatchObject({ method: "POST", path: "/v1/chat/completions", body: chatBody })
      expect(requests[3]!.body).toMatchObject({ model: "broken" })
      yield* fake.clear
      expect(yield* fake.requests).toEqual([])
    }))

  it.effect("listens on loopback, on a free port, and closes with its scope", () =>
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      const fake = yield* Scope.extend(Testing.FakeProvider.make(), scope)
      expect(fake.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
      expect(fake.url).not.toMatch(/:0$/)
      expect(fake.baseUrl).toBe(`${fake.url}/v1`)
      expect((yield* post(fake.url, chatBody)).status).toBe(200)
      yield* Scope.close(scope, Exit.void)
      const after = yield* Effect.either(Effect.tryPromise(() => fetch(`${fake.url}/v1/chat/completions`, { method: "POST" })))
      expect(after._tag).toBe("Left")
    }))

  it.scoped("answers 404 for a path it does not speak", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make()
      const response = yield* Effect.promise(() => fetch(`${fake.url}/v1/nothing`, { method: "POST", body: "{}" }))
      expect(response.status).toBe(404)
    }))
})

describe("FakeProvider faults", () => {
  it.scoped("RateLimit: 429 with retry-after-ms and retry-after; the quota body on request", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make()
      yield* fake.inject({ _tag: "RateLimit", retryAfterMs: 1500, retryAfterSeconds: 2 }, { _tag: "RateLimit", insufficientQuota: true })
      const limited = yield* post(fake.url, chatBody)
      expect(limited.status).toBe(429)
      expect(limited.headers.get("retry-after-ms")).toBe("1500")
      expect(limited.headers.get("retry-after")).toBe("2")
      expect((yield* jsonOf(limited)).error.code).toBe("rate_limit_exceeded")
      const quota = yield* post(fake.url, chatBody)
      expect(quota.status).toBe(429)
      expect(quota.headers.get("retry-after")).toBeNull()
      expect((yield* jsonOf(quota)).error.code).toBe("insufficient_quota")
    }))

  it.scoped("Status: any status, with an OpenAI error body by default or the given body and headers", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make()
      yield* fake.inject({ _tag: "Status", status: 503 }, { _tag: "Status", status: 401, body: "nope", headers: { "x-extra": "1" } })
      const server = yield* post(fake.url, chatBody)
      expect(server.status).toBe(503)
      expect((yield* jsonOf(server)).error.type).toBe("server_error")
      const custom = yield* post(fake.url, chatBody)
      expect(custom.status).toBe(401)
      expect(custom.headers.get("x-extra")).toBe("1")
      expect(yield* Effect.promise(() => custom.text())).toBe("nope")
    }))

  it.scoped("Reset: the connection drops before any header", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make()
      yield* fake.inject({ _tag: "Reset" })
      const result = yield* Effect.either(Effect.tryPromise(() => fetch(`${fake.url}/v1/chat/completions`, { method: "POST", body: JSON.stringify({ model: "m", messages: [{ role: "user", content: "hi" }] }) })))
      expect(result._tag).toBe("Left")
    }))

  it.scoped("CutStream: N frames arrive, then the socket dies (or, with mode end, the body just ends)", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({ reply: { text: "abcdefgh", chunks: 8 } })
      yield* fake.inject({ _tag: "CutStream", afterChunks: 3 }, { _tag: "CutStream", afterChunks: 4, mode: "end" })
      const destroyed = yield* readAll(yield* post(fake.url, streamBody))
      expect(destroyed.failed).toBe(true)
      expect(dataOf(destroyed.text)).toHaveLength(3)
      const ended = yield* readAll(yield* post(fake.url, streamBody))
      expect(ended.failed).toBe(false)
      expect(dataOf(ended.text)).toHaveLength(4)
      expect(ended.text).not.toContain("[DONE]")
    }))

  it.scoped("MalformedJson: a JSON body cut short, or stream frame N not JSON", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make()
      yield* fake.inject({ _tag: "MalformedJson" }, { _tag: "MalformedJson", afterChunks: 2 })
      const body = yield* Effect.flatMap(post(fake.url, chatBody), (r) => Effect.promise(() => r.text()))
      expect(() => JSON.parse(body)).toThrow()
      const { text } = yield* readAll(yield* post(fake.url, streamBody))
      const frames = dataOf(text)
      expect(frames).toHaveLength(3)
      expect(() => JSON.parse(frames[0]!)).not.toThrow()
      expect(() => JSON.parse(frames[2]!)).toThrow()
    }))

  it.scoped("StreamErrorEvent: frame N is data: {\"error\": …}", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make()
      yield* fake.inject({ _tag: "StreamErrorEvent", afterChunks: 2 })
      const { text, failed } = yield* readAll(yield* post(fake.url, streamBody))
      expect(failed).toBe(false)
      const frames = dataOf(text)
      expect(frames).toHaveLength(3)
      expect(JSON.parse(frames[2]!).error.type).toBe("server_error")
    }))

  it.scoped("SlowFirstByte: the headers wait at least the delay", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make()
      yield* fake.inject({ _tag: "SlowFirstByte", delayMs: 150 })
      const started = performance.now()
      const response = yield* post(fake.url, chatBody)
      expect(performance.now() - started).toBeGreaterThanOrEqual(140)
      expect(response.status).toBe(200)
    }))

  it.scoped("Raw: the literal body, in the given pieces, with status and headers", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make()
      yield* fake.inject({ _tag: "Raw", body: ["da", "ta: x\n", new TextEncoder().encode("\n")], status: 202, headers: { "x-a": "b" } })
      const response = yield* post(fake.url, chatBody)
      expect(response.status).toBe(202)
      expect(response.headers.get("x-a")).toBe("b")
      expect(yield* Effect.promise(() => response.text())).toBe("data: x\n\n")
    }))
})

// ---------------------------------------------------------------------------
// mockModel
// ---------------------------------------------------------------------------

const provide = Effect.provide

describe("mockModel", () => {
  it.effect("replies in script order, repeating the last step", () =>
    Effect.gen(function* () {
      const texts: Array<string> = []
      for (let i = 0; i < 4; i++) texts.push((yield* LanguageModel.chat(Message.request("x"))).text)
      expect(texts).toEqual(["one", "two", "two", "two"])
    }).pipe(provide(Testing.mockModel(["one", "two"]))))

  it.effect("a step with tool calls, reasoning and usage; its stream collects to the same response", () =>
    Effect.gen(function* () {
      const step = {
        text: "calling",
        reasoning: "because",
        toolCalls: [{ id: "t1", name: "f", arguments: "{}" }],
        usage: { inputTokens: 1, outputTokens: 2, totalTokens: 3, estimated: false }
      }
      const layer = Testing.mockModel({ steps: [step], provider: "mockp", model: "mockm" })
      const chat = yield* provide(LanguageModel.chat(Message.request("x")), layer)
      expect(chat).toEqual({
        id: "mock",
        model: "mockm",
        provider: "mockp",
        text: "calling",
        reasoning: "because",
        toolCalls: step.toolCalls,
        finishReason: "tool_calls",
        usage: step.usage
      })
      const streamed = yield* provide(LanguageModel.collect(LanguageModel.stream(Message.request("x"))), layer)
      expect(streamed).toEqual(chat)
    }))

  it.effect("an error step fails chat and stream with that error", () =>
    Effect.gen(function* () {
      const error = new LlmError.RateLimitError({ provider: "mock", model: "m", message: "slow down" })
      const layer = Testing.mockModel([error])
      expect(yield* Effect.flip(provide(LanguageModel.chat(Message.request("x")), layer))).toBe(error)
      expect(yield* Effect.flip(provide(Stream.runDrain(LanguageModel.stream(Message.request("x"))), layer))).toBe(error)
    }))

  it.effect("an events step streams exactly those events, then fails with failWith", () =>
    Effect.gen(function* () {
      const failWith = new LlmError.StreamError({ provider: "mock", model: "m", message: "cut", partial: true })
      const events: Array<Message.StreamEvent> = [{ _tag: "TextDelta", text: "par" }, { _tag: "TextDelta", text: "tial" }]
      const layer = Testing.mockModel([{ events, failWith }])
      const seen: Array<Message.StreamEvent> = []
      const error = yield* LanguageModel.stream(Message.request("x")).pipe(
        Stream.runForEach((e) => Effect.sync(() => seen.push(e))),
        Effect.flip,
        provide(layer)
      )
      expect(seen).toEqual(events)
      expect(error).toBe(failWith)
      expect(yield* Effect.flip(provide(LanguageModel.chat(Message.request("x")), layer))).toBe(failWith)
    }))

  it.effect("a function script sees each request and its number; requests are recorded", () =>
    Effect.gen(function* () {
      const mock = yield* Testing.makeMockModel({
        steps: (request, n) => `${n}:${Message.contentText(request.messages[0]!)}`
      })
      const a = yield* mock.service.chat(Message.request("a"))
      const b = yield* LanguageModel.collect(mock.service.stream(Message.request("b")))
      expect([a.text, b.text]).toEqual(["0:a", "1:b"])
      expect((yield* mock.requests).map((r) => Message.contentText(r.messages[0]!))).toEqual(["a", "b"])
      const events = Chunk.toArray(yield* Stream.runCollect(mock.service.stream(Message.request("c"))))
      expect(events.map((e) => e._tag)).toEqual(["TextDelta", "Finish"])
    }))
})

describe("mockModel scripts tool calls and JSON replies", () => {
  it.effect("tool calls by params (written as JSON, numbered per turn), an object as the reply text, and text in chunks", () =>
    Effect.gen(function* () {
      const mock = yield* Testing.makeMockModel({
        steps: [
          { toolCalls: [{ name: "f", params: { a: 1 } }, { id: "own", name: "g", arguments: "{}" }] },
          { object: { city: "Paris", tags: ["a"] }, chunks: 3 }
        ]
      })
      const first = yield* mock.service.chat(Message.request("x"))
      expect(first.toolCalls).toEqual([{ id: "call_1_1", name: "f", arguments: "{\"a\":1}" }, { id: "own", name: "g", arguments: "{}" }])
      expect(first.finishReason).toBe("tool_calls")
      const events = Chunk.toArray(yield* Stream.runCollect(mock.service.stream(Message.request("y"))))
      const deltas = events.filter((e) => e._tag === "TextDelta")
      expect(deltas).toHaveLength(3)
      expect(deltas.map((e) => (e._tag === "TextDelta" ? e.text : "")).join("")).toBe("{\"city\":\"Paris\",\"tags\":[\"a\"]}")
      expect(events.at(-1)).toMatchObject({ _tag: "Finish", finishReason: "stop" })
    }))
})

describe("FakeProvider.layerModel", () => {
  const cases = [
    { model: "gpt-4o-mini", provider: undefined, path: "/v1/chat/completions" },
    { model: "claude-sonnet-4-5", provider: undefined, path: "/v1/messages" },
    { model: "gemini-2.5-flash", provider: undefined, path: "/v1beta/models/gemini-2.5-flash:generateContent" },
    { model: "meta-llama/llama-3-70b", provider: undefined, path: "/api/v1/chat/completions" },
    { model: "llama3.2", provider: "ollama", path: "/api/chat" }
  ] as const
  for (const c of cases) {
    it.scoped(`${c.model}: forModel's stack for the model, answering in its API's format with no key`, () =>
      Effect.gen(function* () {
        const Model = Testing.FakeProvider.layerModel(c.model, { reply: { text: "keyless reply" }, ...(c.provider === undefined ? {} : { provider: c.provider }) })
        const { paths, reply } = yield* Effect.gen(function* () {
          const reply = yield* LanguageModel.chat({ system: "Be brief.", prompt: "hi" })
          const fake = yield* Testing.FakeProvider
          return { paths: (yield* fake.requests).map((r) => r.path), reply }
        }).pipe(Effect.provide(Model.pipe(Layer.provide(Transport.layerUndici))))
        expect(reply.text).toBe("keyless reply")
        expect(paths).toEqual([c.path])
      }).pipe(Effect.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map())))))
  }
})
describe("FakeProvider: media and prompt caching", () => {
  const stackOf = <A, E, R>(providerId: string, model: Layer.Layer<A, E, R>) =>
    model.pipe(Layer.provide(KeyPool.layer({ providerId, keys: ["k"] })), Layer.provide(RateLimiter.unlimited), Layer.provide(Transport.layerUndici))
  // past the providers' 1024-token minimum
  const rules = "Answer as a careful librarian. ".repeat(200)

  it.scoped("answers the images and files it is sent, on every API, and shows them to a responder", () =>
    Effect.gen(function* () {
      const seen: Array<ReadonlyArray<Testing.FakeMedia>> = []
      const fake = yield* Testing.FakeProvider.make({ respond: (_request, turn) => void seen.push(turn.media) })
      const request = Message.request([
        Message.user([Message.text("What are these?"), Message.image(png(2, 2)), Message.file(pdf(1), { filename: "report.pdf" })])
      ])
      const models = [
        stackOf("openai", OpenAiCompatible.layer({ model: "gpt-4o", baseUrl: fake.baseUrl })),
        stackOf("openai", OpenAiResponses.layer({ model: "gpt-4o", baseUrl: fake.baseUrl })),
        stackOf("anthropic", Anthropic.layer({ model: "claude-sonnet-4-5", baseUrl: fake.url })),
        stackOf("gemini", Gemini.layer({ model: "gemini-2.5-flash", baseUrl: `${fake.url}/v1beta` }))
      ]
      for (const model of models) {
        const response = yield* LanguageModel.chat(request).pipe(Effect.provide(model))
        // Gemini's wire has no file names
        expect(response.text).toMatch(/^Received 1 image \(image\/png, \d+ bytes\) and 1 file \((report\.pdf, )?application\/pdf, \d+ bytes\)\.$/)
      }
      expect(seen).toHaveLength(4)
      for (const media of seen) expect(media.map((m) => m.kind)).toEqual(["image", "file"])
      // a scripted text wins
      yield* fake.setReply({ text: "scripted" })
      expect((yield* LanguageModel.chat(request).pipe(Effect.provide(models[0]!))).text).toBe("scripted")
    }))

  it.scoped("Anthropic: a breakpoint writes the prefix, a repeated one reads it; usage says so in Anthropic's fields", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({ reply: { text: "ok" } })
      const model = stackOf("anthropic", Anthropic.layer({ model: "claude-sonnet-4-5", baseUrl: fake.url }))
      const ask = (question: string) => LanguageModel.chat(Message.request([Message.cached(Message.system(rules)), Message.user(question)])).pipe(Effect.provide(model))
      const first = (yield* ask("one?")).usage
      const second = (yield* ask("two?")).usage
      expect(first.cacheWriteTokens).toBeGreaterThan(1_024)
      expect(first.cachedInputTokens).toBe(0)
      expect(second.cachedInputTokens).toBe(first.cacheWriteTokens)
      expect(second.cacheWriteTokens).toBe(0)
      expect(second.inputTokens).toBeGreaterThan(second.cachedInputTokens!)
      const wire = (yield* fake.requests).length
      expect(wire).toBe(2)
      // no breakpoint: no caching on Anthropic
      const plain = yield* LanguageModel.chat(Message.request([Message.system(rules), Message.user("three?")])).pipe(Effect.provide(model))
      expect(plain.usage).toMatchObject({ cachedInputTokens: 0, cacheWriteTokens: 0 })
    }))

  it.scoped("OpenAI and Gemini cache a repeated long prefix on their own; a short one is not cached", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({ reply: { text: "ok" } })
      for (const model of [
        stackOf("openai", OpenAiCompatible.layer({ model: "gpt-4o", baseUrl: fake.baseUrl })),
        stackOf("gemini", Gemini.layer({ model: "gemini-2.5-flash", baseUrl: `${fake.url}/v1beta` }))
      ]) {
        const ask = (system: string, question: string) => LanguageModel.chat(Message.request([Message.system(system), Message.user(question)])).pipe(Effect.provide(model))
        expect((yield* ask(rules, "one?")).usage.cachedInputTokens ?? 0).toBe(0)
        expect((yield* ask(rules, "two?")).usage.cachedInputTokens).toBeGreaterThan(1_024)
        yield* ask("short", "one?")
        expect((yield* ask("short", "two?")).usage.cachedInputTokens ?? 0).toBe(0)
      }
    }))
})

