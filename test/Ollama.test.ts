import { describe, expect, it } from "@effect/vitest"
import { ConfigError, Effect, Layer } from "effect"
import { Embeddings, KeyPool, LanguageModel, Message, Ollama, RateLimiter, Transport } from "../src/index.js"
import { fakeVector } from "../src/internal/testing/embeddings.js"
import * as Testing from "../src/Testing.js"

const stackFor = (fake: Testing.FakeProviderService, pool: Layer.Layer<KeyPool.KeyPool, ConfigError.ConfigError> = KeyPool.layerKeyless("ollama")) =>
  Ollama.layer({ model: "llama3.2", baseUrl: fake.url, keepAlive: "10m" }).pipe(
    Layer.provide(pool),
    Layer.provide(RateLimiter.unlimited),
    Layer.provide(Transport.layerUndici)
  )

const lookup = { name: "lookup", parameters: { type: "object", properties: { q: { type: "string" } } } }

describe("Ollama", () => {
  it.scoped("chat and NDJSON stream assemble text, thinking, tool calls and eval counts, with no key", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({
        reply: {
          text: "Let me look that up.",
          reasoning: "Need the lookup tool.",
          toolCalls: [{ name: "lookup", arguments: `{"q":"a"}` }, { name: "lookup", arguments: `{"q":"b"}` }],
          chunks: 4
        }
      })
      const request = Message.request("find a and b", { tools: [lookup] })
      const [chat, streamed] = yield* Effect.gen(function* () {
        return [yield* LanguageModel.chat(request), yield* LanguageModel.collect(LanguageModel.stream(request))] as const
      }).pipe(Effect.provide(stackFor(fake)))
      for (const response of [chat, streamed]) {
        expect(response.provider).toBe("ollama")
        expect(response.text).toBe("Let me look that up.")
        expect(response.reasoning).toBe("Need the lookup tool.")
        expect(response.finishReason).toBe("tool_calls")
        expect(response.toolCalls).toEqual([
          { id: "call_0", name: "lookup", arguments: `{"q":"a"}` },
          { id: "call_1", name: "lookup", arguments: `{"q":"b"}` }
        ])
        expect(response.usage.estimated).toBe(false)
        expect(response.usage.inputTokens).toBeGreaterThan(0)
        expect(response.usage.totalTokens).toBe(response.usage.inputTokens + response.usage.outputTokens)
      }
      expect({ ...streamed, id: "" }).toEqual({ ...chat, id: "" })
      const recorded = yield* fake.requests
      expect(recorded.map((r) => r.path)).toEqual(["/api/chat", "/api/chat"])
      expect(recorded.map((r) => (r.body as { stream: boolean }).stream)).toEqual([false, true])
      expect(recorded[0]!.headers["authorization"]).toBeUndefined()
    }))

  it.scoped("maps messages, tool results, images and options onto the wire", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({ reply: { text: "ok" } })
      const messages: Array<Message.Message> = [
        Message.system("sys"),
        Message.user([Message.text("see "), Message.image("data:image/jpeg;base64,/9j/4AAQ")]),
        Message.assistant("", { toolCalls: [{ id: "c1", name: "lookup", arguments: `{"q":"x"}` }] }),
        Message.tool("c1", "found")
      ]
      yield* LanguageModel.chat(
        Message.request(messages, { tools: [lookup], temperature: 0.1, maxTokens: 50, seed: 7, reasoningEffort: "high", responseFormat: { type: "json_object" } })
      ).pipe(Effect.provide(stackFor(fake)))
      const body = (yield* fake.requests)[0]!.body as Record<string, unknown>
      expect(body).toEqual({
        model: "llama3.2",
        stream: false,
        messages: [
          { role: "system", content: "sys" },
          { role: "user", content: "see ", images: ["/9j/4AAQ"] },
          { role: "assistant", content: "", tool_calls: [{ function: { name: "lookup", arguments: { q: "x" } } }] },
          { role: "tool", content: "found", tool_name: "lookup" }
        ],
        tools: [{ type: "function", function: { name: "lookup", parameters: lookup.parameters } }],
        think: "high",
        format: "json",
        options: { temperature: 0.1, num_predict: 50, seed: 7 },
        keep_alive: "10m"
      })
    }))

  it.scoped("bad input is a typed error naming the field; nothing is sent", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({})
      const error = yield* Effect.flip(
        LanguageModel.chat(Message.request([Message.user([Message.image("https://example.com/cat.png")])]))
      ).pipe(Effect.provide(stackFor(fake)))
      expect(error._tag).toBe("InvalidRequestError")
      expect(error.message).toContain("messages[0].content[0]: Ollama takes images as data: URLs only")
      const badArgs = yield* Effect.flip(
        LanguageModel.chat(Message.request([Message.assistant("", { toolCalls: [{ id: "1", name: "f", arguments: "[1" }] })]))
      ).pipe(Effect.provide(stackFor(fake)))
      expect(badArgs.message).toContain("messages[0].toolCalls[0].arguments")
      expect((yield* fake.requests).length).toBe(0)
    }))

  it.scoped("errors: Ollama's error body, an error line mid-stream, a cut stream, malformed lines", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({ reply: { text: "abcdefgh", chunks: 4 } })
      yield* fake.inject(
        { _tag: "Status", status: 404 },
        { _tag: "Status", status: 500, body: JSON.stringify({ error: "model 'llama9' not found" }) },
        { _tag: "StreamErrorEvent", afterChunks: 2 },
        { _tag: "CutStream", afterChunks: 3, mode: "end" },
        { _tag: "MalformedJson", afterChunks: 0 }
      )
      const stack = stackFor(fake)
      const notFound = yield* Effect.flip(LanguageModel.chat(Message.request("hi"))).pipe(Effect.provide(stack))
      expect(notFound._tag).toBe("InvalidRequestError")
      expect(notFound.message).toContain("fake 404")
      const server = yield* Effect.flip(LanguageModel.chat(Message.request("hi"))).pipe(Effect.provide(stack))
      expect(server._tag).toBe("ServerError")
      expect(server.message).toContain("model 'llama9' not found")
      const collect = LanguageModel.collect(LanguageModel.stream(Message.request("hi")))
      const midStream = yield* Effect.flip(collect).pipe(Effect.provide(stack))
      expect(midStream).toMatchObject({ _tag: "StreamError", partial: true, partialText: "abcd" })
      expect(midStream.message).toContain("unexpected EOF")
      const cut = yield* Effect.flip(collect).pipe(Effect.provide(stack))
      expect(cut).toMatchObject({ _tag: "StreamError", partial: true, partialText: "abcdef" })
      const bad = yield* Effect.flip(collect).pipe(Effect.provide(stack))
      expect(bad._tag).toBe("MalformedResponseError")
    }))

  it.scoped("a key in the pool is sent as a bearer token and never shows in errors", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({})
      yield* fake.inject({ _tag: "Status", status: 401 })
      const error = yield* Effect.flip(LanguageModel.chat(Message.request("hi"))).pipe(
        Effect.provide(stackFor(fake, KeyPool.layer({ providerId: "ollama", keys: ["ol-secret-1"] })))
      )
      expect(error._tag).toBe("AuthenticationError")
      expect(JSON.stringify(error) + String(error)).not.toContain("ol-secret-1")
      expect((yield* fake.requests)[0]!.headers["authorization"]).toBe("Bearer ol-secret-1")
    }))
})

describe("Ollama embeddings", () => {
  it.scoped("Ollama /api/embed: keyless, usage from prompt_eval_count", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({})
      const stack = Ollama.layerEmbeddings({ model: "nomic-embed-text", baseUrl: fake.url }).pipe(
        Layer.provide(Layer.mergeAll(KeyPool.layerKeyless("ollama"), RateLimiter.unlimited, Transport.layerUndici))
      )
      const result = yield* Embeddings.embed(["alpha", "beta"]).pipe(Effect.provide(stack))
      expect(result).toMatchObject({ provider: "ollama", model: "nomic-embed-text" })
      expect(result.embeddings).toEqual([fakeVector("alpha", 8), fakeVector("beta", 8)])
      expect(result.usage).toEqual({ inputTokens: 3, outputTokens: 0, totalTokens: 3, estimated: false })
      const recorded = (yield* fake.requests)[0]!
      expect(recorded.path).toBe("/api/embed")
      expect(recorded.body).toEqual({ model: "nomic-embed-text", input: ["alpha", "beta"] })
      expect(recorded.headers["authorization"]).toBeUndefined()
      yield* fake.inject({ _tag: "Status", status: 404 })
      const error = yield* Effect.flip(Embeddings.embed(["a"])).pipe(Effect.provide(stack))
      expect(error._tag).toBe("InvalidRequestError")
      expect(error.message).toContain("fake 404")
    }))
})
