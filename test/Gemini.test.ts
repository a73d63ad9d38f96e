import { describe, expect, it } from "@effect/vitest"
import { Chunk, Duration, Effect, Either, Layer, Stream } from "effect"
import { Embeddings, Gemini, KeyPool, LanguageModel, Message, RateLimiter, Transport } from "../src/index.js"
import { fakeVector } from "../src/internal/testing/embeddings.js"
import * as Testing from "../src/Testing.js"

const KEY = "gm-secret-key-0001"
const KEY2 = "gm-secret-key-0002"

const stackFor = (fake: Testing.FakeProviderService, keys: ReadonlyArray<string> = [KEY], model = "gemini-2.5-flash") =>
  Gemini.layer({ model, baseUrl: `${fake.url}/v1beta` }).pipe(
    Layer.provide(KeyPool.layer({ providerId: "gemini", keys })),
    Layer.provide(RateLimiter.unlimited),
    Layer.provide(Transport.layerUndici)
  )

const weather = { name: "weather", description: "Weather in a city", parameters: { type: "object", properties: { city: { type: "string" } } } }

describe("Gemini", () => {
  it.scoped("chat and stream assemble text, thoughts, parallel tool calls and usage", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({
        reply: {
          text: "Checking both cities.",
          reasoning: "The user wants two cities.",
          toolCalls: [
            { name: "weather", arguments: `{"city":"Paris"}` },
            { name: "weather", arguments: `{"city":"Tokyo"}` }
          ],
          chunks: 3
        }
      })
      const request = Message.request("Weather in Paris and Tokyo?", { tools: [weather] })
      const [chat, streamed, events] = yield* Effect.gen(function* () {
        const chat = yield* LanguageModel.chat(request)
        const streamed = yield* LanguageModel.collect(LanguageModel.stream(request))
        const events = yield* Stream.runCollect(LanguageModel.stream(request))
        return [chat, streamed, Chunk.toArray(events)] as const
      }).pipe(Effect.provide(stackFor(fake)))

      for (const response of [chat, streamed]) {
        expect(response.provider).toBe("gemini")
        expect(response.text).toBe("Checking both cities.")
        expect(response.reasoning).toBe("The user wants two cities.")
        expect(response.finishReason).toBe("tool_calls")
        expect(response.toolCalls.map((c) => [c.name, JSON.parse(c.arguments)])).toEqual([
          ["weather", { city: "Paris" }],
          ["weather", { city: "Tokyo" }]
        ])
        // synthetic ids: distinct within a response, derived from the response id
        expect(new Set(response.toolCalls.map((c) => c.id)).size).toBe(2)
        expect(response.toolCalls[0]!.id).toBe(`${response.id}-call-0`)
        expect(response.usage.estimated).toBe(false)
        expect(response.usage.reasoningTokens).toBeGreaterThan(0)
        expect(response.usage.totalTokens).toBe(response.usage.inputTokens + response.usage.outputTokens)
        // the first call's thought signature, tied to that call
        expect(response.reasoningState).toEqual([{ api: "gemini", item: { thoughtSignature: "fake-signature", toolCallId: response.toolCalls[0]!.id } }])
      }
      expect({ ...streamed, id: "", toolCalls: [], reasoningState: [] }).toEqual({ ...chat, id: "", toolCalls: [], reasoningState: [] })
      expect(events.filter((e) => e._tag === "ToolCall").map((e) => e.index)).toEqual([0, 1])
      expect(events[events.length - 1]!._tag).toBe("Finish")

      const recorded = yield* fake.requests
      expect(recorded[0]!.path).toBe("/v1beta/models/gemini-2.5-flash:generateContent")
      expect(recorded[1]!.path).toBe("/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse")
      expect(recorded[0]!.headers["x-goog-api-key"]).toBe(KEY)
      expect(recorded[0]!.headers["authorization"]).toBeUndefined()
    }))

  it.scoped("maps system prompts, images, tool history and options onto the wire", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({ reply: { text: "ok" } })
      const messages: Array<Message.Message> = [
        Message.system("Be brief."),
        Message.user([Message.text("What is this?"), Message.image("data:image/png;base64,iVBORw0KGgo=")]),
        Message.assistant("", {
          toolCalls: [
            { id: "a", name: "weather", arguments: `{"city":"Paris"}` },
            { id: "b", name: "time", arguments: `{"tz":"JST"}` }
          ]
        }),
        // the first result names its tool; the second is paired through the call id
        Message.tool("a", `{"temp":21}`, "weather"),
        Message.tool("b", "09:00"),
        Message.user("Thanks")
      ]
      yield* LanguageModel.chat(
        Message.request(messages, {
          tools: [weather],
          toolChoice: { name: "weather" },
          temperature: 0.2,
          maxTokens: 99,
          stop: ["END"],
          reasoningEffort: "low",
          responseFormat: { type: "json_schema", name: "out", schema: { type: "object" } }
        })
      ).pipe(Effect.provide(stackFor(fake)))
      const body = (yield* fake.requests)[0]!.body as Record<string, any>
      expect(body.systemInstruction).toEqual({ parts: [{ text: "Be brief." }] })
      expect(body.contents).toEqual([
        { role: "user", parts: [{ text: "What is this?" }, { inlineData: { mimeType: "image/png", data: "iVBORw0KGgo=" } }] },
        {
          role: "model",
          parts: [
            { functionCall: { id: "a", name: "weather", args: { city: "Paris" } } },
            { functionCall: { id: "b", name: "time", args: { tz: "JST" } } }
          ]
        },
        {
          role: "user",
          parts: [
            { functionResponse: { id: "a", name: "weather", response: { temp: 21 } } },
            { functionResponse: { id: "b", name: "time", response: { result: "09:00" } } }
          ]
        },
        { role: "user", parts: [{ text: "Thanks" }] }
      ])
      expect(body.tools).toEqual([{ functionDeclarations: [{ name: "weather", description: "Weather in a city", parametersJsonSchema: weather.parameters }] }])
      expect(body.toolConfig).toEqual({ functionCallingConfig: { mode: "ANY", allowedFunctionNames: ["weather"] } })
      expect(body.generationConfig).toEqual({
        temperature: 0.2,
        maxOutputTokens: 99,
        stopSequences: ["END"],
        thinkingConfig: { includeThoughts: true, thinkingBudget: 1024 },
        responseMimeType: "application/json",
        responseJsonSchema: { type: "object" }
      })
    }))

  it.scoped("a tool result whose function cannot be found is a typed error naming the message, sent nowhere", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({})
      const request = Message.request([Message.user("hi"), Message.tool("missing", "42")])
      const [chat, stream] = yield* Effect.gen(function* () {
        return [
          yield* Effect.either(LanguageModel.chat(request)),
          yield* Effect.either(Stream.runDrain(LanguageModel.stream(request)))
        ] as const
      }).pipe(Effect.provide(stackFor(fake)))
      for (const result of [Either.map(chat, () => "ok"), Either.map(stream, () => "ok")]) {
        expect(Either.isLeft(result)).toBe(true)
        const error = Either.flip(result).pipe(Either.getOrThrow)
        expect(error._tag).toBe("InvalidRequestError")
        expect(error.message).toContain("messages[1]")
        expect(error.message).toContain(`"missing"`)
      }
      expect((yield* fake.requests).length).toBe(0)
    }))

  it.scoped("HTTP errors map to typed errors in Google's error shape; a 429 moves to another key", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({ reply: { text: "second key" } })
      yield* fake.inject({ _tag: "RateLimit" })
      const ok = yield* LanguageModel.chat(Message.request("hi")).pipe(Effect.provide(stackFor(fake, [KEY, KEY2])))
      expect(ok.text).toBe("second key")
      const keysUsed = (yield* fake.requests).map((r) => r.headers["x-goog-api-key"])
      expect(new Set(keysUsed)).toEqual(new Set([KEY, KEY2]))

      yield* fake.clear
      yield* fake.inject(
        { _tag: "Status", status: 429, body: JSON.stringify({ error: { code: 429, message: "slow down", status: "RESOURCE_EXHAUSTED", details: [{ "@type": "type.googleapis.com/google.rpc.RetryInfo", retryDelay: "7s" }] } }) },
        { _tag: "Status", status: 401 },
        { _tag: "Status", status: 503 },
        { _tag: "Status", status: 400 }
      )
      // a fresh pool for each, since a 429 cools the only key down
      const errors: Array<any> = []
      for (let i = 0; i < 4; i++) {
        errors.push(yield* Effect.flip(LanguageModel.chat(Message.request("hi"))).pipe(Effect.provide(stackFor(fake))))
      }
      expect(errors.map((e) => e._tag)).toEqual(["RateLimitError", "AuthenticationError", "ServerError", "InvalidRequestError"])
      expect(Duration.toMillis(errors[0].retryAfter)).toBe(7000)
      expect(errors[0].retryable).toBe(true)
      expect(errors[1].retryable).toBe(false)
      expect(errors[2].message).toContain("UNAVAILABLE")
      for (const error of errors) expect(JSON.stringify(error) + String(error)).not.toContain(KEY)
    }))

  it.scoped("stream faults: a cut stream, an error event and malformed JSON end with typed errors", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({ reply: { text: "abcdefgh", chunks: 4 } })
      yield* fake.inject(
        { _tag: "CutStream", afterChunks: 2, mode: "end" },
        { _tag: "StreamErrorEvent", afterChunks: 1 },
        { _tag: "MalformedJson", afterChunks: 0 },
        { _tag: "CutStream", afterChunks: 1 }
      )
      const results = yield* Effect.gen(function* () {
        const out: Array<any> = []
        for (let i = 0; i < 4; i++) out.push(yield* Effect.flip(LanguageModel.collect(LanguageModel.stream(Message.request("hi")))))
        return out
      }).pipe(Effect.provide(stackFor(fake)))
      expect(results[0]._tag).toBe("StreamError")
      expect(results[0].partial).toBe(true)
      expect(results[0].partialText).toBe("abcd")
      expect(results[1]._tag).toBe("StreamError")
      expect(results[1].message).toContain("overloaded")
      expect(results[1].partialText).toBe("ab")
      expect(results[2]._tag).toBe("MalformedResponseError")
      // the cut comes after a frame with text, flushed: mid-stream, not a reset
      expect(results[3]._tag).toBe("StreamError")
      expect(results[3].partial).toBe(true)
    }))
})

const base = (keys: ReadonlyArray<string>) => Layer.mergeAll(KeyPool.layer({ providerId: "gemini", keys }), RateLimiter.unlimited, Transport.layerUndici)

const texts = (n: number) => Array.from({ length: n }, (_, i) => `text number ${i}`)

describe("Gemini embeddings", () => {
  it.scoped("Gemini batchEmbedContents: 100 per call by default, x-goog-api-key, outputDimensionality, estimated usage", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({ reply: { maxEmbeddingInputs: 100 } })
      const input = texts(250)
      const stack = Gemini.layerEmbeddings({ model: "gemini-embedding-001", baseUrl: `${fake.url}/v1beta`, taskType: "RETRIEVAL_DOCUMENT" }).pipe(
        Layer.provide(base(["g-key"]))
      )
      const result = yield* Embeddings.embed(input, { dimensions: 4 }).pipe(Effect.provide(stack))
      expect(result.embeddings).toEqual(input.map((t) => fakeVector(t, 4)))
      expect(result.usage.estimated).toBe(true)
      expect(result.usage.inputTokens).toBe(input.reduce((n, t) => n + Math.ceil(t.length / 4), 0))
      const recorded = yield* fake.requests
      expect(recorded.length).toBe(3)
      expect(recorded[0]!.path).toBe("/v1beta/models/gemini-embedding-001:batchEmbedContents")
      expect(recorded[0]!.headers["x-goog-api-key"]).toBe("g-key")
      const first = (recorded[0]!.body as { requests: Array<Record<string, unknown>> }).requests[0]
      expect(first).toEqual({
        model: "models/gemini-embedding-001",
        content: { parts: [{ text: expect.any(String) }] },
        outputDimensionality: 4,
        taskType: "RETRIEVAL_DOCUMENT"
      })
      yield* fake.inject({ _tag: "RateLimit", retryAfterMs: 1500 })
      const error = yield* Effect.flip(Embeddings.embed(["a"])).pipe(Effect.provide(stack))
      expect(error._tag).toBe("RateLimitError")
    }))
})
