/**
 * The official `@google/genai` client against the fake: generateContent, its stream, function
 * calls, embeddings, and each fault as the SDK's `ApiError`. Retries off.
 */
import { describe, expect, it } from "@effect/vitest"
import { ApiError, GoogleGenAI } from "@google/genai"
import { apiKey, drain, failure, inject, requestCount, weather, weatherCall, withFake } from "./support.js"

const client = (url: string) => new GoogleGenAI({ apiKey, httpOptions: { baseUrl: url, retryOptions: { attempts: 1 } } })
const model = "gemini-2.5-flash"
const contents = "hi"
const config = { tools: [{ functionDeclarations: [{ name: weather.name, description: weather.description, parametersJsonSchema: weather.parameters }] }] }

describe("@google/genai: models", () => {
  it.scoped("text, with usage", () =>
    withFake({ reply: { text: "Hello from Gemini." } }, async (fake) => {
      const response = await client(fake.url).models.generateContent({ model, contents })
      expect(response.text).toBe("Hello from Gemini.")
      expect(response.candidates![0]!.finishReason).toBe("STOP")
      expect(response.usageMetadata!.totalTokenCount).toBeGreaterThan(0)
      expect(await requestCount(fake)).toBe(1)
    }))

  it.scoped("a stream, whose usage grows to the final count", () =>
    withFake({ reply: { text: "Hello, streamed from Gemini.", chunks: 4 } }, async (fake) => {
      const { error, items } = await drain(() => client(fake.url).models.generateContentStream({ model, contents }))
      expect(error).toBeUndefined()
      expect(items.map((c) => c.text ?? "").join("")).toBe("Hello, streamed from Gemini.")
      const counts = items.map((c) => c.usageMetadata?.candidatesTokenCount ?? 0)
      expect(counts[0]).toBeLessThan(counts.at(-1)!)
      expect(items.at(-1)!.candidates![0]!.finishReason).toBe("STOP")
    }))

  it.scoped("function calls, JSON and streamed", () =>
    withFake({ reply: { text: "", toolCalls: [weatherCall] } }, async (fake) => {
      const json = await client(fake.url).models.generateContent({ model, contents, config })
      expect(json.functionCalls).toMatchObject([{ name: "get_weather", args: { city: "Paris" } }])
      const { items } = await drain(() => client(fake.url).models.generateContentStream({ model, contents, config }))
      expect(items.flatMap((c) => c.functionCalls ?? [])).toMatchObject([{ name: "get_weather", args: { city: "Paris" } }])
    }))

  // on the Gemini API the SDK sends even one content to :batchEmbedContents (:embedContent is Vertex's)
  it.scoped("embeddings: one content and several", () =>
    withFake({}, async (fake) => {
      const one = await client(fake.url).models.embedContent({ model: "text-embedding-004", contents: "alpha" })
      expect(one.embeddings).toHaveLength(1)
      expect(one.embeddings![0]!.values).toHaveLength(8)
      const many = await client(fake.url).models.embedContent({ model: "text-embedding-004", contents: ["alpha", "beta"], config: { outputDimensionality: 4 } })
      expect(many.embeddings!.map((e) => e.values!.length)).toEqual([4, 4])
      expect(many.embeddings![0]!.values).not.toEqual(many.embeddings![1]!.values)
    }))

  it.scoped("429 (with RetryInfo), 5xx and a malformed body", () =>
    withFake({}, async (fake) => {
      await inject(fake, { _tag: "RateLimit", retryAfterSeconds: 4 }, { _tag: "Status", status: 503 }, { _tag: "MalformedJson" })
      const limited = await failure(() => client(fake.url).models.generateContent({ model, contents }))
      expect(limited).toBeInstanceOf(ApiError)
      expect((limited as ApiError).status).toBe(429)
      expect(JSON.parse((limited as ApiError).message)).toMatchObject({
        error: { code: 429, status: "RESOURCE_EXHAUSTED", details: [{ "@type": "type.googleapis.com/google.rpc.RetryInfo", retryDelay: "4s" }] }
      })
      const server = await failure(() => client(fake.url).models.generateContent({ model, contents }))
      expect(server).toBeInstanceOf(ApiError)
      expect((server as ApiError).status).toBe(503)
      expect(await failure(() => client(fake.url).models.generateContent({ model, contents }))).toBeInstanceOf(SyntaxError)
    }))

  it.scoped("a cut mid-stream fails the iteration after the first chunks", () =>
    withFake({ reply: { text: "abcdefgh", chunks: 8 } }, async (fake) => {
      await inject(fake, { _tag: "CutStream", afterChunks: 3 })
      const { error, items } = await drain(() => client(fake.url).models.generateContentStream({ model, contents }))
      expect(items.map((c) => c.text).join("")).toBe("abc")
      // the body's own failure (undici's "terminated"), not an HTTP error
      expect(error).toBeInstanceOf(TypeError)
      expect((error as Error).message).toBe("terminated")
    }))

  it.scoped("the stream's error object is an ApiError", () =>
    withFake({ reply: { text: "abcdefgh", chunks: 8 } }, async (fake) => {
      await inject(fake, { _tag: "StreamErrorEvent", afterChunks: 2 })
      const { error, items } = await drain(() => client(fake.url).models.generateContentStream({ model, contents }))
      expect(items).toHaveLength(2)
      expect(error).toBeInstanceOf(ApiError)
      expect((error as ApiError).status).toBe(503)
    }))

  it.scoped("an unknown method is an ApiError 404 with Google's body", () =>
    withFake({}, async (fake) => {
      const missing = await failure(() => client(fake.url).models.countTokens({ model, contents }))
      expect(missing).toBeInstanceOf(ApiError)
      expect((missing as ApiError).status).toBe(404)
      expect(JSON.parse((missing as ApiError).message)).toMatchObject({ error: { code: 404, status: "NOT_FOUND" } })
    }))
})
