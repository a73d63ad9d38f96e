/** Embeddings conformance: the recorded OpenAI `/embeddings` body, served through FakeProvider. */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { Embeddings, KeyPool, OpenAiCompatible, RateLimiter, Transport } from "../../src/index.js"
import * as Testing from "../../src/Testing.js"
import { hasFixtures, readFixture } from "../support/fixtures.js"

if (!hasFixtures) console.warn("[conformance/embeddings] skipped: the recorded fixtures are absent")

const stackFor = (fake: Testing.FakeProviderService) =>
  OpenAiCompatible.layerEmbeddings({ model: "text-embedding-3-small", baseUrl: fake.baseUrl }).pipe(
    Layer.provide(Layer.mergeAll(KeyPool.layer({ providerId: "openai", keys: ["k"] }), RateLimiter.unlimited, Transport.layerUndici))
  )

describe.skipIf(!hasFixtures)("conformance: OpenAI embeddings", () => {
  it.scoped("decodes the recorded body: vectors in order and usage", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({})
      const body = readFixture("openai-embeddings/openai-embedding.json")
      const wire = JSON.parse(body)
      const expected = [...wire.data].sort((a: any, b: any) => a.index - b.index).map((d: any) => d.embedding)
      yield* fake.inject({ _tag: "Raw", contentType: "application/json", body })
      const result = yield* Embeddings.embed(["sunny day at the beach", "rainy day in the city"]).pipe(Effect.provide(stackFor(fake)))
      expect(result.embeddings).toEqual(expected)
      expect(result.embeddings[0]).toEqual([0.0057293195, -0.012727811, 0.020042092, -0.013437585, 0.022833068])
      expect(result.embeddings[1]![4]).toBe(-0.0035253682)
      expect(result.usage).toEqual({ inputTokens: 12, outputTokens: 0, totalTokens: 12, estimated: false })

      // the same body with its items reversed: order comes from `index`
      yield* fake.inject({ _tag: "Raw", contentType: "application/json", body: JSON.stringify({ ...wire, data: [...wire.data].reverse() }) })
      const reversed = yield* Embeddings.embed(["a", "b"]).pipe(Effect.provide(stackFor(fake)))
      expect(reversed.embeddings).toEqual(expected)
    }))

  it.scoped("base64: OpenAI is asked for it, and the recorded vectors sent as base64 float32 decode to the same numbers", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({})
      const wire = JSON.parse(readFixture("openai-embeddings/openai-embedding.json"))
      // the recorded reply as the API sends it under encoding_format "base64": little-endian float32 bytes
      const asBase64 = (vector: ReadonlyArray<number>) => Buffer.from(new Float32Array(vector).buffer).toString("base64")
      const body = JSON.stringify({ ...wire, data: wire.data.map((d: any) => ({ ...d, embedding: asBase64(d.embedding) })) })
      expect(body.length).toBeLessThan(JSON.stringify(wire).length)
      yield* fake.inject({ _tag: "Raw", contentType: "application/json", body })
      const result = yield* Embeddings.embed(["sunny day at the beach", "rainy day in the city"]).pipe(Effect.provide(stackFor(fake)))
      expect((yield* fake.requests)[0]!.body).toMatchObject({ encoding_format: "base64" })
      const expected = wire.data.map((d: any) => d.embedding.map(Math.fround))
      expect(result.embeddings).toEqual(expected)
      // float32 keeps the recorded values to their printed precision
      for (const [i, vector] of result.embeddings.entries()) {
        for (const [j, x] of vector.entries()) expect(x).toBeCloseTo(wire.data[i].embedding[j], 8)
      }
      // bytes that are not whole floats are a typed error
      yield* fake.inject({ _tag: "Raw", contentType: "application/json", body: JSON.stringify({ ...wire, data: [{ index: 0, embedding: "AAAA" }, { index: 1, embedding: "AAAAAAA=" }] }) })
      const broken = yield* Effect.flip(Embeddings.embed(["a", "b"]).pipe(Effect.provide(stackFor(fake))))
      expect(broken._tag).toBe("MalformedResponseError")
      expect(broken.message).toContain("not base64 of whole float32 values")
    }))
})
