import { describe, expect, it } from "@effect/vitest"
import { ConfigError, Duration, Effect, Layer } from "effect"
import { Embeddings, KeyPool, OpenAiCompatible, RateLimiter, Transport } from "../src/index.js"
import * as Testing from "../src/Testing.js"
import { fakeVector } from "../src/internal/testing/embeddings.js"
import { assertValid } from "./support/openapi.js"

const base = (keys: ReadonlyArray<string>, limiter: Layer.Layer<RateLimiter.RateLimiter, ConfigError.ConfigError> = RateLimiter.unlimited) =>
  Layer.mergeAll(KeyPool.layer({ providerId: "p", keys }), limiter, Transport.layerUndici)

const openAi = (fake: Testing.FakeProviderService, options: Partial<OpenAiCompatible.EmbeddingsOptions> = {}, keys = ["e-key-1"]) =>
  OpenAiCompatible.layerEmbeddings({ model: "text-embedding-3-small", baseUrl: fake.baseUrl, ...options }).pipe(Layer.provide(base(keys)))

const texts = (n: number) => Array.from({ length: n }, (_, i) => `text number ${i}`)

/**
 * The Embeddings service: batching, order, usage, checks, the pool and the limiter, over
 * OpenAI-compatible `/embeddings`. Gemini's and Ollama's wire formats are tested in
 * Gemini.test.ts and Ollama.test.ts; an embeddings provider of one's own in Provider.test.ts.
 */
describe("Embeddings", () => {
  it.scoped("OpenAI-compatible: splits long input under the per-call limit and keeps order and usage", () =>
    Effect.gen(function* () {
      // the fake, like OpenAI, refuses more than 2048 inputs in one call
      const fake = yield* Testing.FakeProvider.make({ reply: { maxEmbeddingInputs: 2048, embeddingDimensions: 2 } })
      const input = texts(4200)
      const result = yield* Embeddings.embed(input, { dimensions: 16 }).pipe(Effect.provide(openAi(fake)))
      expect(result.embeddings.length).toBe(4200)
      for (const i of [0, 2047, 2048, 4095, 4096, 4199]) expect(result.embeddings[i]).toEqual(fakeVector(input[i]!, 16))
      const recorded = yield* fake.requests
      const sizes = recorded.map((r) => (r.body as { input: Array<string> }).input.length)
      expect(sizes.sort((a, b) => b - a)).toEqual([2048, 2048, 104])
      for (const r of recorded) {
        expect(r.path).toBe("/v1/embeddings")
        expect((r.body as { dimensions: number }).dimensions).toBe(16)
        assertValid("CreateEmbeddingRequest", r.body)
      }
      const expectedTokens = input.reduce((n, t) => n + Math.ceil(t.length / 4), 0)
      expect(result.usage).toEqual({ inputTokens: expectedTokens, outputTokens: 0, totalTokens: expectedTokens, estimated: false })
    }))

  it.scoped("a configurable batch size, and one call for a short list", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({})
      const input = texts(10)
      const small = yield* Embeddings.embed(input).pipe(Effect.provide(openAi(fake, { maxBatchSize: 3, concurrency: 2 })))
      expect(small.embeddings).toEqual(input.map((t) => fakeVector(t, 8)))
      expect((yield* fake.requests).length).toBe(4)
      yield* fake.clear
      yield* Embeddings.embed(input).pipe(Effect.provide(openAi(fake)))
      expect((yield* fake.requests).length).toBe(1)
    }))

  it.scoped("vectors are placed by their index, not by position in the body", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({})
      yield* fake.inject({
        _tag: "Raw",
        contentType: "application/json",
        body: JSON.stringify({
          data: [{ index: 1, embedding: [1, 1] }, { index: 0, embedding: [0, 0] }],
          model: "m",
          usage: { prompt_tokens: 4, total_tokens: 4 },
          newField: true
        })
      })
      const result = yield* Embeddings.embed(["a", "b"]).pipe(Effect.provide(openAi(fake)))
      expect(result.embeddings).toEqual([[0, 0], [1, 1]])
      expect(result.usage.inputTokens).toBe(4)
    }))

  it.scoped("bad input and bad answers are typed errors that say where", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({})
      const stack = openAi(fake)
      const empty = yield* Effect.flip(Embeddings.embed(["ok", ""])).pipe(Effect.provide(stack))
      expect(empty._tag).toBe("InvalidRequestError")
      expect(empty.message).toContain("texts[1] is empty")
      const dims = yield* Effect.flip(Embeddings.embed(["ok"], { dimensions: 0 })).pipe(Effect.provide(stack))
      expect(dims.message).toContain("dimensions")
      expect((yield* fake.requests).length).toBe(0)
      const none = yield* Embeddings.embed([]).pipe(Effect.provide(stack))
      expect(none.embeddings).toEqual([])

      yield* fake.inject(
        { _tag: "Raw", contentType: "application/json", body: JSON.stringify({ data: [{ index: 0, embedding: [1] }], usage: { prompt_tokens: 1 } }) },
        { _tag: "MalformedJson" }
      )
      const short = yield* Effect.flip(Embeddings.embed(["a", "b"])).pipe(Effect.provide(stack))
      expect(short._tag).toBe("MalformedResponseError")
      expect(short.message).toContain("1 embeddings for 2 inputs")
      const malformed = yield* Effect.flip(Embeddings.embed(["a"])).pipe(Effect.provide(stack))
      expect(malformed._tag).toBe("MalformedResponseError")
      expect(malformed.retryable).toBe(true)
    }))

  it.scoped("calls go through the key pool and the rate limiter; errors are typed and retryable where they should be", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({})
      yield* fake.inject({ _tag: "RateLimit", retryAfterSeconds: 3 })
      const limiter = RateLimiter.layer({ requestsPerMinute: 60 })
      const stack = OpenAiCompatible.layerEmbeddings({ model: "m", baseUrl: fake.baseUrl, maxBatchSize: 2 }).pipe(
        Layer.provideMerge(base(["e-key-1", "e-key-2"], limiter))
      )
      const [result, status, pool] = yield* Effect.gen(function* () {
        const result = yield* Embeddings.embed(texts(4))
        return [result, yield* RateLimiter.status, yield* KeyPool.status] as const
      }).pipe(Effect.provide(stack))
      expect(result.embeddings.length).toBe(4)
      // three calls: the 429, its re-try on the other key, and the second batch
      expect((yield* fake.requests).length).toBe(3)
      expect(status.requests!.capacity - status.requests!.available).toBeGreaterThanOrEqual(2.9)
      expect(pool.filter((k) => k.cooldownUntil !== undefined).length).toBe(1)
      const authHeaders = new Set((yield* fake.requests).map((r) => r.headers["authorization"]))
      expect(authHeaders).toEqual(new Set(["Bearer e-key-1", "Bearer e-key-2"]))

      yield* fake.inject({ _tag: "RateLimit", retryAfterSeconds: 3 }, { _tag: "Status", status: 500 })
      const limited = yield* Effect.flip(Embeddings.embed(["a"])).pipe(Effect.provide(openAi(fake)))
      expect(limited._tag).toBe("RateLimitError")
      expect(limited.retryable).toBe(true)
      expect(Duration.toMillis((limited as { retryAfter: Duration.Duration }).retryAfter)).toBe(3000)
      const server = yield* Effect.flip(Embeddings.embed(["a"])).pipe(Effect.provide(openAi(fake)))
      expect(server._tag).toBe("ServerError")
      expect(JSON.stringify([limited, server])).not.toContain("e-key-1")
    }))

  it.scoped("base64 on the wire for OpenAI (a quarter of the bytes), floats for compatible servers; the same vectors", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({})
      const input = texts(3)
      const openai = yield* Embeddings.embed(input).pipe(Effect.provide(openAi(fake, { provider: "openai" })))
      const together = yield* Embeddings.embed(input).pipe(Effect.provide(openAi(fake, { provider: "together" })))
      const [first, second] = yield* fake.requests
      expect(first!.body).toMatchObject({ encoding_format: "base64" })
      expect(second!.body).toMatchObject({ encoding_format: "float" })
      expect(openai.embeddings).toEqual(input.map((t) => fakeVector(t, 8)))
      expect(together.embeddings).toEqual(openai.embeddings)
    }))
})

