/**
 * The official `ollama` client against the fake: chat, its NDJSON stream, tool calls, both
 * embeddings calls (`embed`, and the legacy `embeddings`), and each fault as the client
 * reports it (an Error named `ResponseError` with `status_code`; the class is not exported).
 * The client has no retries.
 */
import { describe, expect, it } from "@effect/vitest"
import { Ollama } from "ollama"
import { drain, failure, inject, weather, weatherCall, withFake } from "./support.js"

const client = (url: string) => new Ollama({ host: url })
const model = "llama3.2"
const messages = [{ role: "user", content: "hi" }]
const tools = [{ type: "function", function: weather }]

/** The client's HTTP error, as it throws it. */
const responseError = (error: unknown) => {
  expect(error).toBeInstanceOf(Error)
  expect((error as Error).name).toBe("ResponseError")
  return error as Error & { readonly status_code: number; readonly error: string }
}

describe("ollama: chat and embeddings", () => {
  it.scoped("text, with the eval counts", () =>
    withFake({ reply: { text: "Hello from Ollama." } }, async (fake) => {
      const response = await client(fake.url).chat({ model, messages })
      expect(response.message.content).toBe("Hello from Ollama.")
      expect(response.done).toBe(true)
      expect(response.done_reason).toBe("stop")
      expect(response.eval_count).toBeGreaterThan(0)
    }))

  it.scoped("a stream (NDJSON), ending with done", () =>
    withFake({ reply: { text: "Hello, streamed from Ollama.", chunks: 4 } }, async (fake) => {
      const { error, items } = await drain(() => client(fake.url).chat({ model, messages, stream: true }))
      expect(error).toBeUndefined()
      expect(items.map((p) => p.message.content).join("")).toBe("Hello, streamed from Ollama.")
      expect(items.at(-1)).toMatchObject({ done: true, done_reason: "stop" })
    }))

  it.scoped("tool calls, JSON and streamed", () =>
    withFake({ reply: { text: "", toolCalls: [weatherCall] } }, async (fake) => {
      const json = await client(fake.url).chat({ model, messages, tools })
      expect(json.message.tool_calls).toMatchObject([{ function: { name: "get_weather", arguments: { city: "Paris" } } }])
      const { items } = await drain(() => client(fake.url).chat({ model, messages, tools, stream: true }))
      expect(items.flatMap((p) => p.message.tool_calls ?? [])).toMatchObject([{ function: { name: "get_weather", arguments: { city: "Paris" } } }])
    }))

  it.scoped("embeddings: embed (/api/embed) and the legacy embeddings (/api/embeddings)", () =>
    withFake({}, async (fake) => {
      const batch = await client(fake.url).embed({ model: "nomic-embed-text", input: ["alpha", "beta"] })
      expect(batch.embeddings.map((v) => v.length)).toEqual([8, 8])
      const legacy = await client(fake.url).embeddings({ model: "nomic-embed-text", prompt: "alpha" })
      expect(legacy.embedding).toEqual(batch.embeddings[0])
    }))

  it.scoped("429, 5xx and a malformed body", () =>
    withFake({}, async (fake) => {
      await inject(fake, { _tag: "RateLimit", retryAfterSeconds: 5 }, { _tag: "Status", status: 500 }, { _tag: "MalformedJson" })
      const limited = responseError(await failure(() => client(fake.url).chat({ model, messages })))
      expect(limited.status_code).toBe(429)
      expect(limited.error).toBe("Rate limit reached for requests")
      expect(responseError(await failure(() => client(fake.url).chat({ model, messages }))).status_code).toBe(500)
      expect(await failure(() => client(fake.url).chat({ model, messages }))).toBeInstanceOf(SyntaxError)
    }))

  it.scoped("a cut mid-stream fails the iteration after the first lines", () =>
    withFake({ reply: { text: "abcdefgh", chunks: 8 } }, async (fake) => {
      await inject(fake, { _tag: "CutStream", afterChunks: 3 })
      const { error, items } = await drain(() => client(fake.url).chat({ model, messages, stream: true }))
      expect(items.map((p) => p.message.content).join("")).toBe("abc")
      // the body's own failure (undici's "terminated"), not an HTTP error
      expect(error).toBeInstanceOf(TypeError)
      expect((error as Error).message).toBe("terminated")
    }))

  it.scoped("the stream's error line is thrown with its message", () =>
    withFake({ reply: { text: "abcdefgh", chunks: 8 } }, async (fake) => {
      await inject(fake, { _tag: "StreamErrorEvent", afterChunks: 2 })
      const { error, items } = await drain(() => client(fake.url).chat({ model, messages, stream: true }))
      expect(items).toHaveLength(2)
      expect((error as Error).message).toContain("unexpected EOF")
    }))

  it.scoped("an unknown path is a 404 with Ollama's body", () =>
    withFake({}, async (fake) => {
      const missing = responseError(await failure(() => client(fake.url).show({ model })))
      expect(missing.status_code).toBe(404)
      expect(missing.error).toContain("no route for /api/show")
    }))
})
