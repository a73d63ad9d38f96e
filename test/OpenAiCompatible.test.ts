import { describe, expect, it } from "@effect/vitest"
import { Chunk, ConfigProvider, Deferred, Effect, Fiber, Layer, Stream, TestClock } from "effect"
import { KeyPool, LanguageModel, Message, OpenAiCompatible, RateLimiter, Transport } from "../src/index.js"
import * as Testing from "../src/Testing.js"
import { expectedWire, full } from "./support/chatRequests.js"
import { fakeProvider, stack } from "./support/openaiStack.js"

// ---------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------

describe("requests on the wire", () => {
  it.scoped("chat and stream send the mapped body, the bearer key and the stream headers", () =>
    Effect.gen(function* () {
      const fake = yield* fakeProvider({ reply: { text: "{\"text\":\"ok\"}" } })
      yield* Effect.gen(function* () {
        yield* LanguageModel.chat(full)
        yield* Stream.runDrain(LanguageModel.stream(full))
      }).pipe(Effect.provide(stack(fake.baseUrl, { keys: ["sk-wire"] })))
      const [chat, streamed] = yield* fake.requests
      expect(chat!.path).toBe("/v1/chat/completions")
      expect(chat!.body).toEqual(expectedWire)
      expect(chat!.headers.authorization).toBe("Bearer sk-wire")
      expect(chat!.headers["content-type"]).toBe("application/json")
      expect(streamed!.body).toEqual({ ...expectedWire, stream: true, stream_options: { include_usage: true } })
      expect(streamed!.headers.accept).toBe("text/event-stream")
    }))

  it.scoped("a request's model overrides the layer's; non-OpenAI providers get max_tokens", () =>
    Effect.gen(function* () {
      const fake = yield* fakeProvider()
      const response = yield* LanguageModel.chat(Message.request("hi", { model: "other-model", maxTokens: 9 })).pipe(
        Effect.provide(stack(fake.baseUrl, { provider: "groq" }))
      )
      expect(response.model).toBe("other-model")
      expect(response.provider).toBe("groq")
      const [recorded] = yield* fake.requests
      expect(recorded!.body).toMatchObject({ model: "other-model", max_tokens: 9 })
      expect(recorded!.body).not.toHaveProperty("max_completion_tokens")
    }))

  it.scoped("a trailing slash on baseUrl is tolerated; custom headers are sent", () =>
    Effect.gen(function* () {
      const fake = yield* fakeProvider()
      const layer = OpenAiCompatible.layer({ model: "m", baseUrl: fake.baseUrl + "/", headers: { "x-title": "effect-llm" } }).pipe(
        Layer.provide(KeyPool.layer({ providerId: "openai", keys: ["k"] })),
        Layer.provide(RateLimiter.unlimited),
        Layer.provide(Transport.layerUndici)
      )
      yield* LanguageModel.chat(Message.request("hi")).pipe(Effect.provide(layer))
      const [recorded] = yield* fake.requests
      expect(recorded!.path).toBe("/v1/chat/completions")
      expect(recorded!.headers["x-title"]).toBe("effect-llm")
    }))
})

// ---------------------------------------------------------------------------
// Streams
// ---------------------------------------------------------------------------

const toolReply: Testing.Reply = {
  text: "Checking both.",
  reasoning: "Two cities, so two calls.",
  toolCalls: [
    { id: "call_paris", name: "weather", arguments: "{\"city\":\"Paris\",\"unit\":\"celsius\"}" },
    { id: "call_oslo", name: "weather", arguments: "{\"city\":\"Oslo\",\"unit\":\"celsius\"}" }
  ],
  chunks: 5
}

const streamEvents = (fake: Testing.FakeProviderService, request: Message.ChatRequest = Message.request("weather?")) =>
  Stream.runCollect(LanguageModel.stream(request)).pipe(Effect.map(Chunk.toArray), Effect.provide(stack(fake.baseUrl)))

describe("streams", () => {
  it.scoped("assemble text, reasoning and parallel tool calls; collect equals chat", () =>
    Effect.gen(function* () {
      const fake = yield* fakeProvider({ reply: toolReply })
      const events = yield* streamEvents(fake)
      const deltas = events.filter((e) => e._tag === "ToolCallDelta")
      expect(new Set(deltas.map((d) => d.index))).toEqual(new Set([0, 1]))
      expect(deltas.filter((d) => d.id !== undefined).map((d) => [d.index, d.id, d.name])).toEqual([
        [0, "call_paris", "weather"],
        [1, "call_oslo", "weather"]
      ])
      const calls = events.filter((e) => e._tag === "ToolCall")
      expect(calls).toEqual([
        { _tag: "ToolCall", index: 0, id: "call_paris", name: "weather", arguments: toolReply.toolCalls![0]!.arguments },
        { _tag: "ToolCall", index: 1, id: "call_oslo", name: "weather", arguments: toolReply.toolCalls![1]!.arguments }
      ])
      // each ToolCall comes after the last fragment of its call, and before Finish
      const lastDelta = (index: number) =>
        events.reduce((last, e, i) => (e._tag === "ToolCallDelta" && e.index === index ? i : last), -1)
      expect(events.findIndex((e) => e._tag === "ToolCall" && e.index === 0)).toBeGreaterThan(lastDelta(0))
      expect(events.findIndex((e) => e._tag === "ToolCall" && e.index === 1)).toBeGreaterThan(lastDelta(1))
      expect(events.at(-1)?._tag).toBe("Finish")
      expect(events.filter((e) => e._tag === "Finish")).toHaveLength(1)
      const collected = yield* LanguageModel.collect(Stream.fromIterable(events))
      const chat = yield* LanguageModel.chat(Message.request("weather?")).pipe(Effect.provide(stack(fake.baseUrl)))
      expect({ ...collected, id: "" }).toEqual({ ...chat, id: "" })
      expect(collected.text).toBe("Checking both.")
      expect(collected.reasoning).toBe("Two cities, so two calls.")
      expect(collected.finishReason).toBe("tool_calls")
      expect(collected.usage.estimated).toBe(false)
    }))

  it.scoped("interleaved fragments of parallel calls are assembled per index", () =>
    Effect.gen(function* () {
      const fake = yield* fakeProvider()
      const frame = (calls: Array<Record<string, unknown>>, finish: string | null = null) =>
        `data: ${JSON.stringify({ id: "s", model: "m", choices: [{ index: 0, delta: { tool_calls: calls }, finish_reason: finish }] })}\n\n`
      const body = [
        frame([{ index: 0, id: "call_a", type: "function", function: { name: "lookup", arguments: "" } }]),
        frame([{ index: 1, id: "call_b", type: "function", function: { name: "fetch", arguments: "{\"u" } }]),
        frame([{ index: 0, function: { arguments: "{\"q\":" } }]),
        frame([{ index: 1, function: { arguments: "rl\":\"x\"}" } }, { index: 0, function: { arguments: "\"cats\"}" } }]),
        frame([], "tool_calls"),
        "data: [DONE]\n\n"
      ]
      yield* fake.inject({ _tag: "Raw", body })
      const events = yield* streamEvents(fake)
      expect(events.filter((e) => e._tag === "ToolCall")).toEqual([
        { _tag: "ToolCall", index: 0, id: "call_a", name: "lookup", arguments: "{\"q\":\"cats\"}" },
        { _tag: "ToolCall", index: 1, id: "call_b", name: "fetch", arguments: "{\"url\":\"x\"}" }
      ])
      const finish = events.at(-1)
      expect(finish?._tag === "Finish" && finish.finishReason).toBe("tool_calls")
    }))

  it.scoped("a last chunk that carries both the final argument fragments and finish_reason loses neither", () =>
    Effect.gen(function* () {
      const fake = yield* fakeProvider()
      const chunk = (choice: Record<string, unknown>) =>
        `data: ${JSON.stringify({ id: "s", object: "chat.completion.chunk", created: 1, model: "m", choices: [{ index: 0, ...choice }] })}\n\n`
      const calls = (fragments: Array<Record<string, unknown>>) => ({ delta: { tool_calls: fragments }, finish_reason: null })
      // as some servers send it: the finish rides on the chunk with the last fragments, and
      // usage follows in a chunk of its own
      const body = [
        chunk(calls([{ index: 0, id: "call_a", type: "function", function: { name: "lookup", arguments: "{\"q\":" } }])),
        chunk(calls([{ index: 1, id: "call_b", type: "function", function: { name: "fetch", arguments: "{\"url\":" } }])),
        chunk({
          delta: { tool_calls: [{ index: 0, function: { arguments: "\"cats\"}" } }, { index: 1, function: { arguments: "\"x\"}" } }] },
          finish_reason: "tool_calls"
        }),
        `data: ${JSON.stringify({ id: "s", object: "chat.completion.chunk", created: 1, model: "m", choices: [], usage: { prompt_tokens: 5, completion_tokens: 7, total_tokens: 12 } })}\n\n`,
        "data: [DONE]\n\n"
      ]
      const expected = [
        { _tag: "ToolCall", index: 0, id: "call_a", name: "lookup", arguments: "{\"q\":\"cats\"}" },
        { _tag: "ToolCall", index: 1, id: "call_b", name: "fetch", arguments: "{\"url\":\"x\"}" }
      ]
      // in one network read, and split at every frame: the order within the chunk is what matters
      for (const pieces of [[body.join("")], body]) {
        yield* fake.inject({ _tag: "Raw", body: pieces })
        const events = yield* streamEvents(fake)
        expect(events.filter((e) => e._tag === "ToolCall"), "a ToolCall was emitted before the last fragment of its arguments").toEqual(expected)
        // the deltas themselves carry every fragment, and each ToolCall follows its last one
        const argumentsOf = (index: number) =>
          events.filter((e) => e._tag === "ToolCallDelta" && e.index === index).map((e) => (e as Message.ToolCallDelta).argumentsDelta).join("")
        expect([argumentsOf(0), argumentsOf(1)]).toEqual(["{\"q\":\"cats\"}", "{\"url\":\"x\"}"])
        const lastDelta = events.reduce((last, e, i) => (e._tag === "ToolCallDelta" ? i : last), -1)
        expect(events.findIndex((e) => e._tag === "ToolCall")).toBeGreaterThan(lastDelta)
        const response = yield* LanguageModel.collect(Stream.fromIterable(events))
        expect(response.toolCalls).toEqual([
          { id: "call_a", name: "lookup", arguments: "{\"q\":\"cats\"}" },
          { id: "call_b", name: "fetch", arguments: "{\"url\":\"x\"}" }
        ])
        expect(response.finishReason).toBe("tool_calls")
        expect(response.usage).toMatchObject({ inputTokens: 5, outputTokens: 7, estimated: false })
      }
    }))

  it.scoped("fragments without index: a new id starts the next call", () =>
    Effect.gen(function* () {
      const fake = yield* fakeProvider()
      const frame = (call: Record<string, unknown>) =>
        `data: ${JSON.stringify({ choices: [{ delta: { tool_calls: [call] } }] })}\n\n`
      yield* fake.inject({
        _tag: "Raw",
        body: [
          frame({ id: "g1", function: { name: "a", arguments: "{\"x\":" } }),
          frame({ function: { arguments: "1}" } }),
          frame({ id: "g2", function: { name: "b", arguments: "{}" } }),
          `data: ${JSON.stringify({ choices: [{ delta: {}, finish_reason: "stop" }] })}\n\n`
        ].join("")
      })
      const response = yield* LanguageModel.collect(LanguageModel.stream(Message.request("x"))).pipe(Effect.provide(stack(fake.baseUrl)))
      expect(response.toolCalls).toEqual([{ id: "g1", name: "a", arguments: "{\"x\":1}" }, { id: "g2", name: "b", arguments: "{}" }])
      expect(response.finishReason).toBe("tool_calls")
    }))

  it.scoped("usage is estimated, and says so, when the provider sent none", () =>
    Effect.gen(function* () {
      const fake = yield* fakeProvider({ reply: { text: "abcdefgh", usage: false } })
      const request = Message.request("1234")
      const events = yield* streamEvents(fake, request)
      const finish = events.at(-1)
      if (finish?._tag !== "Finish") return expect.fail("no Finish")
      expect(finish.usage).toEqual({ inputTokens: 1, outputTokens: 2, totalTokens: 3, estimated: true })
      const chat = yield* LanguageModel.chat(request).pipe(Effect.provide(stack(fake.baseUrl)))
      expect(chat.usage).toEqual(finish.usage)
    }))

  it.scoped("text deltas of one network read are merged, never reordered against other kinds", () =>
    Effect.gen(function* () {
      const fake = yield* fakeProvider()
      const frame = (delta: Record<string, unknown>) => `data: ${JSON.stringify({ choices: [{ delta }] })}\n\n`
      yield* fake.inject({
        _tag: "Raw",
        body: [
          frame({ reasoning_content: "a" }) + frame({ reasoning_content: "b" }) + frame({ content: "c" }) + frame({ content: "d" }) +
          frame({ reasoning_content: "e" }) + `data: ${JSON.stringify({ choices: [{ delta: {}, finish_reason: "stop" }] })}\n\n`
        ]
      })
      const events = yield* streamEvents(fake)
      expect(events.slice(0, 3)).toEqual([
        { _tag: "ReasoningDelta", text: "ab" },
        { _tag: "TextDelta", text: "cd" },
        { _tag: "ReasoningDelta", text: "e" }
      ])
    }))
})

// ---------------------------------------------------------------------------
// Leases, interruption and timeouts
// ---------------------------------------------------------------------------

describe("leases", () => {
  it.scoped("interrupting a stream mid-way releases the key lease", () =>
    Effect.gen(function* () {
      const fake = yield* fakeProvider({ reply: { text: "x".repeat(400), chunks: 200, chunkDelayMs: 20 } })
      yield* Effect.gen(function* () {
        const pool = yield* KeyPool.KeyPool
        const firstEvent = yield* Deferred.make<void>()
        const fiber = yield* LanguageModel.stream(Message.request("long")).pipe(
          Stream.tap(() => Deferred.succeed(firstEvent, undefined)),
          Stream.runDrain,
          Effect.fork
        )
        yield* Deferred.await(firstEvent)
        expect((yield* pool.status).map((k) => k.inFlight)).toEqual([1])
        yield* Fiber.interrupt(fiber)
        expect((yield* pool.status).map((k) => k.inFlight)).toEqual([0])
        // taking a prefix ends the stream early too
        const two = yield* Stream.runCollect(Stream.take(LanguageModel.stream(Message.request("long")), 2))
        expect(two.length).toBe(2)
        expect((yield* pool.status).map((k) => k.inFlight)).toEqual([0])
      }).pipe(Effect.provide(stack(fake.baseUrl)))
    }))

  it.scoped("finished, failed and cut streams release their lease", () =>
    Effect.gen(function* () {
      const fake = yield* fakeProvider({ reply: { text: "hello", chunks: 3 } })
      yield* Effect.gen(function* () {
        const pool = yield* KeyPool.KeyPool
        yield* Stream.runDrain(LanguageModel.stream(Message.request("a")))
        yield* fake.inject({ _tag: "CutStream", afterChunks: 2 }, { _tag: "Status", status: 500 })
        const cut = yield* Effect.flip(Stream.runDrain(LanguageModel.stream(Message.request("b"))))
        // the cut came after a text delta: a partial stream error, not a retryable network error
        expect(cut._tag).toBe("StreamError")
        if (cut._tag === "StreamError") expect(cut.partial).toBe(true)
        yield* Effect.flip(Stream.runDrain(LanguageModel.stream(Message.request("c"))))
        const [key] = yield* pool.status
        expect(key!.inFlight).toBe(0)
        expect(key!.successes).toBe(1)
        expect(key!.failures).toBe(2)
      }).pipe(Effect.provide(stack(fake.baseUrl)))
    }))

  it.scoped("a 429 on one key is retried at once on another", () =>
    Effect.gen(function* () {
      const fake = yield* fakeProvider({ reply: { text: "second key" } })
      yield* fake.inject({ _tag: "RateLimit", retryAfterMs: 60_000 })
      const response = yield* LanguageModel.chat(Message.request("x")).pipe(Effect.provide(stack(fake.baseUrl, { keys: ["sk-a", "sk-b"] })))
      expect(response.text).toBe("second key")
      const auth = (yield* fake.requests).map((r) => r.headers.authorization)
      expect(auth).toHaveLength(2)
      expect(new Set(auth).size).toBe(2)
    }))
})

describe("timeout", () => {
  it.scoped("bounds the whole stream, body included", () =>
    Effect.gen(function* () {
      const fake = yield* fakeProvider({ reply: { text: "y".repeat(100), chunks: 100, chunkDelayMs: 1000 } })
      yield* Effect.gen(function* () {
        const firstEvent = yield* Deferred.make<void>()
        const fiber = yield* LanguageModel.stream(Message.request("slow")).pipe(
          Stream.tap(() => Deferred.succeed(firstEvent, undefined)),
          Stream.runDrain,
          Effect.flip,
          Effect.fork
        )
        yield* Deferred.await(firstEvent)
        yield* TestClock.adjust("5 seconds")
        const error = yield* Fiber.join(fiber)
        // output had begun: the timeout names its phase and is not retryable, since a
        // transparent re-try would repeat the events already delivered
        expect(error).toMatchObject({ _tag: "TimeoutError", phase: "request", retryable: false })
        expect(error.message).toContain("after output began")
        const [key] = yield* KeyPool.status
        expect(key!.inFlight).toBe(0)
      }).pipe(Effect.provide(stack(fake.baseUrl, { timeout: "5 seconds" })))
    }))

  it.scoped("bounds a chat that waits for its headers", () =>
    Effect.gen(function* () {
      const fake = yield* fakeProvider()
      yield* fake.inject({ _tag: "SlowFirstByte", delayMs: 5_000 })
      const fiber = yield* LanguageModel.chat(Message.request("slow")).pipe(
        Effect.provide(stack(fake.baseUrl, { timeout: "2 seconds" })),
        Effect.flip,
        Effect.fork
      )
      // wait, in real time, until the fake holds the request
      while ((yield* fake.requests).length === 0) yield* Effect.promise(() => new Promise((r) => setTimeout(r, 5)))
      yield* TestClock.adjust("2 seconds")
      const error = yield* Fiber.join(fiber)
      expect(error._tag).toBe("TimeoutError")
    }))
})

// ---------------------------------------------------------------------------
// Presets
// ---------------------------------------------------------------------------

describe("presets", () => {
  it("name each vendor's documented base URL and env var", () => {
    const table = Object.fromEntries(Object.entries(OpenAiCompatible.presets).map(([name, p]) => [name, [p.baseUrl, p.envVar]]))
    expect(table).toEqual({
      openai: ["https://api.openai.com/v1", "OPENAI_API_KEY"],
      openrouter: ["https://openrouter.ai/api/v1", "OPENROUTER_API_KEY"],
      deepseek: ["https://api.deepseek.com/v1", "DEEPSEEK_API_KEY"],
      groq: ["https://api.groq.com/openai/v1", "GROQ_API_KEY"],
      together: ["https://api.together.xyz/v1", "TOGETHER_API_KEY"],
      vllm: ["http://localhost:8000/v1", "VLLM_API_KEY"],
      ollama: ["http://localhost:11434/v1", "OLLAMA_API_KEY"],
      zhipu: ["https://open.bigmodel.cn/api/paas/v4", "ZHIPU_API_KEY"],
      dashscope: ["https://dashscope.aliyuncs.com/compatible-mode/v1", "DASHSCOPE_API_KEY"],
      ark: ["https://ark.cn-beijing.volces.com/api/v3", "ARK_API_KEY"]
    })
  })

  const viaPreset = (name: OpenAiCompatible.PresetName, baseUrl: string, env: Record<string, string>) =>
    LanguageModel.chat(Message.request("hi", { maxTokens: 3 })).pipe(
      Effect.provide(
        OpenAiCompatible.layerPreset(name, { model: "some-model", baseUrl }).pipe(
          Layer.provide(RateLimiter.unlimited),
          Layer.provide(Transport.layerUndici)
        )
      ),
      Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))
    )

  it.scoped("layerPreset reads a comma-separated key list from the preset's env var", () =>
    Effect.gen(function* () {
      const fake = yield* fakeProvider()
      const env = { DEEPSEEK_API_KEY: "sk-ds-1, sk-ds-2" }
      const first = yield* viaPreset("deepseek", fake.baseUrl, env)
      expect(first.provider).toBe("deepseek")
      const [recorded] = yield* fake.requests
      expect(recorded!.headers.authorization).toBe("Bearer sk-ds-1")
      expect(recorded!.body).toMatchObject({ max_tokens: 3 })
    }))

  it.scoped("layerPreset for OpenAI sends max_completion_tokens and fails clearly without a key", () =>
    Effect.gen(function* () {
      const fake = yield* fakeProvider()
      yield* viaPreset("openai", fake.baseUrl, { OPENAI_API_KEY: "sk-oa" })
      const [recorded] = yield* fake.requests
      expect(recorded!.body).toMatchObject({ max_completion_tokens: 3 })
      const missing = yield* Effect.flip(viaPreset("openai", fake.baseUrl, {}))
      expect(String(missing)).toContain("OPENAI_API_KEY")
    }))

  it.scoped("local presets (ollama, vllm) need no key", () =>
    Effect.gen(function* () {
      const fake = yield* fakeProvider()
      const response = yield* viaPreset("ollama", fake.baseUrl, {})
      expect(response.provider).toBe("ollama")
      yield* viaPreset("vllm", fake.baseUrl, {})
      const requests = yield* fake.requests
      expect(requests.map((r) => r.headers.authorization)).toEqual([undefined, undefined])
    }))
})
