/**
 * The fake's wire details that official clients depend on (issue 18), checked with a plain
 * `fetch`: embeddings encodings and legacy routes, where a cut lands on every streaming route,
 * error and 404 bodies in each API's shape, faults that keep the scripted reply, and the
 * headers and usage fields the real APIs send.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { fakeVector } from "../../../src/internal/testing/embeddings.js"
import * as Testing from "../../../src/Testing.js"
import { readAll } from "../../support/readBody.js"

/** Test-only: loose JSON. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Loose = any

const send = (url: string, path: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(`${url}${path}`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(body) })

/** The JSON payloads of an SSE or NDJSON body. */
const payloads = (text: string): Array<Loose> =>
  text.split(/\r?\n/).map((l) => l.replace(/^data: /, "")).filter((l) => l.startsWith("{")).map((l) => JSON.parse(l))

const withFake = (options: Testing.FakeProviderOptions, body: (fake: Testing.FakeProviderService) => Promise<void>) =>
  Effect.flatMap(Testing.FakeProvider.make(options), (fake) => Effect.promise(() => body(fake)))

const chat = { model: "gpt-test", messages: [{ role: "user", content: "hi" }] }

/** Each streaming chat route: path and a streaming body. */
const streams = [
  { name: "Chat Completions", path: "/v1/chat/completions", body: { ...chat, stream: true } },
  { name: "Responses", path: "/v1/responses", body: { model: "gpt-test", input: "hi", stream: true } },
  { name: "Anthropic", path: "/v1/messages", body: { ...chat, max_tokens: 10, stream: true } },
  { name: "Gemini", path: "/v1beta/models/gemini-x:streamGenerateContent?alt=sse", body: { contents: [{ role: "user", parts: [{ text: "hi" }] }] } },
  { name: "Ollama", path: "/api/chat", body: { model: "llama", messages: [{ role: "user", content: "hi" }] } }
] as const

describe("OpenAI embeddings", () => {
  it.scoped("encoding_format base64 (the openai SDK's default) is little-endian float32, in base64", () =>
    withFake({}, async (fake) => {
      const floats = (await (await send(fake.url, "/v1/embeddings", { model: "e", input: ["a", "b"] })).json()) as Loose
      const encoded = (await (await send(fake.url, "/v1/embeddings", { model: "e", input: ["a", "b"], encoding_format: "base64" })).json()) as Loose
      expect(encoded.data).toHaveLength(2)
      for (const [i, item] of (encoded.data as Array<Loose>).entries()) {
        expect(typeof item.embedding).toBe("string")
        const bytes = Buffer.from(item.embedding as string, "base64")
        const decoded = Array.from({ length: bytes.length / 4 }, (_, j) => bytes.readFloatLE(j * 4))
        expect(decoded).toHaveLength(8)
        decoded.forEach((x, j) => expect(x).toBeCloseTo(floats.data[i].embedding[j], 6))
      }
    }))

  it.scoped("token-array input: one vector per token array, or one for a single array", () =>
    withFake({}, async (fake) => {
      const many = await send(fake.url, "/v1/embeddings", { model: "e", input: [[1, 2, 3], [4, 5]] })
      expect(many.status).toBe(200)
      const body = (await many.json()) as Loose
      expect(body.data.map((d: Loose) => d.embedding.length)).toEqual([8, 8])
      expect(body.data[0].embedding).not.toEqual(body.data[1].embedding)
      const one = (await (await send(fake.url, "/v1/embeddings", { model: "e", input: [1, 2, 3] })).json()) as Loose
      expect(one.data).toHaveLength(1)
      expect(one.data[0].embedding).toEqual(body.data[0].embedding)
    }))
})

describe("other embeddings routes", () => {
  it.scoped("Ollama's legacy /api/embeddings answers { embedding }", () =>
    withFake({}, async (fake) => {
      const response = await send(fake.url, "/api/embeddings", { model: "nomic", prompt: "hello" })
      expect(response.status).toBe(200)
      const body = (await response.json()) as Loose
      expect(Object.keys(body)).toEqual(["embedding"])
      expect(body.embedding).toEqual(fakeVector("hello", 8))
    }))

  it.scoped("Gemini :embedContent answers { embedding: { values } }", () =>
    withFake({}, async (fake) => {
      const response = await send(fake.url, "/v1beta/models/text-embedding-004:embedContent", {
        content: { parts: [{ text: "hello" }] },
        outputDimensionality: 4
      })
      expect(response.status).toBe(200)
      expect(await response.json()).toEqual({ embedding: { values: fakeVector("hello", 4) } })
    }))
})

describe("CutStream means one thing on every route", () => {
  it.scoped.each(streams)("$name: headers and N frames arrive, then the socket dies", ({ body, path }) =>
    withFake({ reply: { text: "abcdefghijkl", chunks: 8 } }, async (fake) => {
      await Effect.runPromise(fake.inject({ _tag: "CutStream", afterChunks: 3 }))
      const response = await send(fake.url, path, body)
      expect(response.status).toBe(200)
      const { failed, text } = await readAll(response)
      expect(failed).toBe(true)
      expect(payloads(text)).toHaveLength(3)
    }))

  it.scoped.each([
    { name: "OpenAI", path: "/v1/embeddings", body: { model: "e", input: ["a"] } },
    { name: "Gemini", path: "/v1beta/models/e:batchEmbedContents", body: { requests: [{ content: { parts: [{ text: "a" }] } }] } },
    { name: "Ollama", path: "/api/embed", body: { model: "e", input: ["a"] } }
  ])("$name embeddings: the headers and half the body arrive, then the socket dies", ({ body, path }) =>
    withFake({}, async (fake) => {
      await Effect.runPromise(fake.inject({ _tag: "CutStream", afterChunks: 0 }))
      const response = await send(fake.url, path, body)
      expect(response.status).toBe(200)
      const { failed, text } = await readAll(response)
      expect(failed).toBe(true)
      expect(text.length).toBeGreaterThan(0)
    }))
})

describe("error bodies in each API's shape", () => {
  it.scoped("the Responses stream's error event is nested, as the API sends it, then response.failed", () =>
    withFake({}, async (fake) => {
      await Effect.runPromise(fake.inject({ _tag: "StreamErrorEvent", afterChunks: 2 }))
      const { text } = await readAll(await send(fake.url, "/v1/responses", { model: "m", input: "hi", stream: true }))
      const events = payloads(text)
      expect(events.map((e) => e.type)).toEqual(["response.created", "response.in_progress", "error", "response.failed"])
      const error = events[2]
      expect(Object.keys(error).sort()).toEqual(["error", "sequence_number", "type"])
      expect(Object.keys(error.error).sort()).toEqual(["code", "message", "param", "type"])
      expect(events.map((e) => e.sequence_number)).toEqual([0, 1, 2, 3])
    }))

  it.scoped("an unknown path gets the 404 body of the API it belongs to", () =>
    withFake({}, async (fake) => {
      const openai = await send(fake.url, "/v1/nothing", {})
      expect(openai.status).toBe(404)
      expect(((await openai.json()) as Loose).error.type).toBe("invalid_request_error")
      const anthropic = await send(fake.url, "/v1/messages/nothing", {}, { "anthropic-version": "2023-06-01", "x-api-key": "k" })
      expect(anthropic.status).toBe(404)
      expect(await anthropic.json()).toMatchObject({ type: "error", error: { type: "not_found_error" } })
      const gemini = await send(fake.url, "/v1beta/models/g:nothing", {})
      expect(gemini.status).toBe(404)
      expect(await gemini.json()).toMatchObject({ error: { code: 404, status: "NOT_FOUND" } })
      const ollama = await send(fake.url, "/api/nothing", {})
      expect(ollama.status).toBe(404)
      expect(typeof ((await ollama.json()) as Loose).error).toBe("string")
    }))
})

describe("faults keep the scripted reply", () => {
  const streamBody = { ...chat, stream: true }
  const contentOf = (text: string) => payloads(text).map((p) => p.choices?.[0]?.delta?.content ?? "").join("")

  it.scoped("a responder's reply is what SlowFirstByte, CutStream, MalformedJson and StreamErrorEvent send", () =>
    withFake({ respond: () => ({ text: "scripted!", chunks: 3 }) }, async (fake) => {
      await Effect.runPromise(fake.inject(
        { _tag: "SlowFirstByte", delayMs: 5 },
        { _tag: "CutStream", afterChunks: 3 },
        { _tag: "MalformedJson", afterChunks: 3 },
        { _tag: "StreamErrorEvent", afterChunks: 3 }
      ))
      const slow = (await (await send(fake.url, "/v1/chat/completions", chat)).json()) as Loose
      expect(slow.choices[0].message.content).toBe("scripted!")
      const cut = await readAll(await send(fake.url, "/v1/chat/completions", streamBody))
      expect(contentOf(cut.text)).toBe("scripted!".slice(0, 6))
      const malformed = await readAll(await send(fake.url, "/v1/chat/completions", streamBody))
      expect(malformed.text).toContain(`"content":"scr`)
      const errored = await readAll(await send(fake.url, "/v1/chat/completions", streamBody))
      expect(contentOf(errored.text)).toBe("scripted!".slice(0, 6))
    }))

  it.scoped("so are the replies by turn", () =>
    withFake({ replies: [{ text: "turn zero" }, { text: "turn one" }] }, async (fake) => {
      await Effect.runPromise(fake.inject({ _tag: "SlowFirstByte", delayMs: 5 }))
      const slow = (await (await send(fake.url, "/v1/chat/completions", chat)).json()) as Loose
      expect(slow.choices[0].message.content).toBe("turn zero")
      // the fault took no turn: the retry gets turn zero's reply again
      const next = (await (await send(fake.url, "/v1/chat/completions", chat)).json()) as Loose
      expect(next.choices[0].message.content).toBe("turn zero")
    }))
})

describe("details the real APIs send", () => {
  it.scoped("Chat chunks carry usage: null under include_usage, then a usage chunk with no choices", () =>
    withFake({}, async (fake) => {
      const withUsage = payloads((await readAll(await send(fake.url, "/v1/chat/completions", { ...chat, stream: true, stream_options: { include_usage: true } }))).text)
      const last = withUsage.at(-1)
      expect(last.choices).toEqual([])
      expect(last.usage.total_tokens).toBeGreaterThan(0)
      for (const chunk of withUsage.slice(0, -1)) expect(chunk).toHaveProperty("usage", null)
      const without = payloads((await readAll(await send(fake.url, "/v1/chat/completions", { ...chat, stream: true }))).text)
      for (const chunk of without) expect(chunk).not.toHaveProperty("usage")
    }))

  it.scoped("x-request-id on OpenAI replies and errors, request-id on Anthropic's", () =>
    withFake({}, async (fake) => {
      await Effect.runPromise(fake.inject({ _tag: "RateLimit", retryAfterSeconds: 1 }, { _tag: "Status", status: 500 }))
      const limited = await send(fake.url, "/v1/chat/completions", chat)
      expect(limited.headers.get("x-request-id")).toMatch(/^req_/)
      const anthropicError = await send(fake.url, "/v1/messages", { ...chat, max_tokens: 5 }, { "anthropic-version": "2023-06-01" })
      expect(anthropicError.status).toBe(500)
      expect(anthropicError.headers.get("request-id")).toMatch(/^req_/)
      for (const path of ["/v1/chat/completions", "/v1/responses", "/v1/embeddings"]) {
        const ok = await send(fake.url, path, { ...chat, input: "hi" })
        expect(ok.headers.get("x-request-id"), path).toMatch(/^req_/)
      }
      expect((await send(fake.url, "/v1/messages", { ...chat, max_tokens: 5 })).headers.get("request-id")).toMatch(/^req_/)
    }))

  it.scoped("Anthropic usage has the cache token counts, 0", () =>
    withFake({}, async (fake) => {
      const json = (await (await send(fake.url, "/v1/messages", { ...chat, max_tokens: 5 })).json()) as Loose
      expect(json.usage).toMatchObject({ cache_creation_input_tokens: 0, cache_read_input_tokens: 0 })
      const events = payloads((await readAll(await send(fake.url, "/v1/messages", { ...chat, max_tokens: 5, stream: true }))).text)
      expect(events[0].message.usage).toMatchObject({ cache_creation_input_tokens: 0, cache_read_input_tokens: 0 })
    }))

  it.scoped("Gemini stream chunks' usageMetadata grows to the final count", () =>
    withFake({ reply: { text: "a longer reply, in several pieces", chunks: 4 } }, async (fake) => {
      const events = payloads((await readAll(await send(fake.url, streams[3].path, streams[3].body))).text)
      const counts = events.map((e) => e.usageMetadata.candidatesTokenCount as number)
      expect(counts.length).toBeGreaterThan(2)
      expect(counts[0]).toBeLessThan(counts.at(-1)!)
      for (let i = 1; i < counts.length; i++) expect(counts[i]).toBeGreaterThanOrEqual(counts[i - 1]!)
      const json = (await (await send(fake.url, "/v1beta/models/gemini-x:generateContent", streams[3].body)).json()) as Loose
      expect(counts.at(-1)).toBe(json.usageMetadata.candidatesTokenCount)
    }))

  it.scoped("a failure of the fake itself is a 500 with the API's error body, saying so, not a bodiless 500", () =>
    withFake({ respond: () => { throw new Error("responder bug") } }, async (fake) => {
      const anthropic = await send(fake.url, "/v1/messages", { ...chat, max_tokens: 5 })
      expect(anthropic.status).toBe(500)
      expect(await anthropic.json()).toMatchObject({ type: "error", error: { type: "api_error", message: "the fake provider failed: responder bug" } })
      const openai = await send(fake.url, "/v1/chat/completions", chat)
      expect(((await openai.json()) as Loose).error.message).toBe("the fake provider failed: responder bug")
    }))

  it.scoped("an Anthropic tool call with invalid JSON arguments: streamed as given; in JSON, input {}", () =>
    withFake({ reply: { text: "", toolCalls: [{ name: "f", arguments: "{\"a\": tru" }] } }, async (fake) => {
      const json = await send(fake.url, "/v1/messages", { ...chat, max_tokens: 5 })
      expect(json.status).toBe(200)
      expect(((await json.json()) as Loose).content[0]).toMatchObject({ type: "tool_use", name: "f", input: {} })
      const stream = await send(fake.url, "/v1/messages", { ...chat, max_tokens: 5, stream: true })
      expect(stream.status).toBe(200)
      const events = payloads((await readAll(stream)).text)
      const partial = events.filter((e) => e.delta?.type === "input_json_delta").map((e) => e.delta.partial_json).join("")
      expect(partial).toBe("{\"a\": tru")
    }))
})
