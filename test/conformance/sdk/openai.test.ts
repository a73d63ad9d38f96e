/**
 * The official `openai` client against the fake: Chat Completions, Responses and embeddings,
 * with the SDK's defaults (embeddings in base64), its helpers, and its error classes for
 * each fault. Retries off, so that each fault is seen as it is.
 */
import { describe, expect, it } from "@effect/vitest"
import OpenAI, { APIError, InternalServerError, OpenAIError, RateLimitError } from "openai"
import { apiKey, drain, failure, inject, requestCount, weather, weatherCall, withFake } from "./support.js"

const client = (url: string, maxRetries = 0) => new OpenAI({ apiKey, baseURL: `${url}/v1`, maxRetries })
const messages = [{ role: "user" as const, content: "hi" }]
const tools = [{ type: "function" as const, function: weather }]

describe("openai: Chat Completions", () => {
  it.scoped("text, with usage and the request id", () =>
    withFake({ reply: { text: "Hello there." } }, async (fake) => {
      const { data, request_id } = await client(fake.url).chat.completions.create({ model: "gpt-4o", messages }).withResponse()
      expect(data.choices[0]!.message.content).toBe("Hello there.")
      expect(data.choices[0]!.finish_reason).toBe("stop")
      expect(data.usage!.total_tokens).toBeGreaterThan(0)
      expect(request_id).toMatch(/^req_/)
    }))

  it.scoped("a stream, with the usage chunk under include_usage", () =>
    withFake({ reply: { text: "Hello there, streamed.", chunks: 4 } }, async (fake) => {
      const { items } = await drain(() =>
        client(fake.url).chat.completions.create({ model: "gpt-4o", messages, stream: true, stream_options: { include_usage: true } })
      )
      expect(items.map((c) => c.choices[0]?.delta.content ?? "").join("")).toBe("Hello there, streamed.")
      expect(items.at(-1)!.choices).toEqual([])
      expect(items.at(-1)!.usage!.total_tokens).toBeGreaterThan(0)
      const final = await client(fake.url).chat.completions.stream({ model: "gpt-4o", messages }).finalChatCompletion()
      expect(final.choices[0]!.message.content).toBe("Hello there, streamed.")
    }))

  it.scoped("tool calls, JSON and streamed (finalChatCompletion)", () =>
    withFake({ reply: { text: "", toolCalls: [weatherCall] } }, async (fake) => {
      const json = await client(fake.url).chat.completions.create({ model: "gpt-4o", messages, tools })
      expect(json.choices[0]!.finish_reason).toBe("tool_calls")
      expect(json.choices[0]!.message.tool_calls).toMatchObject([{ id: "call_w1", type: "function", function: { name: "get_weather", arguments: weatherCall.arguments } }])
      const streamed = await client(fake.url).chat.completions.stream({ model: "gpt-4o", messages, tools }).finalChatCompletion()
      expect(streamed.choices[0]!.message.tool_calls).toMatchObject([{ id: "call_w1", function: { name: "get_weather", arguments: weatherCall.arguments } }])
      // the SDK's own parsing helper reads the arguments
      const parsed = await client(fake.url).chat.completions.parse({
        model: "gpt-4o",
        messages,
        tools: [{ type: "function", function: { ...weather, strict: true, parameters: { ...weather.parameters, additionalProperties: false } } }]
      })
      expect(parsed.choices[0]!.message.tool_calls?.[0]).toMatchObject({ function: { parsed_arguments: { city: "Paris" } } })
    }))

  it.scoped("429 is a RateLimitError with retry-after; 5xx an InternalServerError; a malformed body fails to parse", () =>
    withFake({}, async (fake) => {
      await inject(fake, { _tag: "RateLimit", retryAfterSeconds: 7 }, { _tag: "Status", status: 503 }, { _tag: "MalformedJson" })
      const limited = await failure(() => client(fake.url).chat.completions.create({ model: "gpt-4o", messages }))
      expect(limited).toBeInstanceOf(RateLimitError)
      expect((limited as RateLimitError).headers.get("retry-after")).toBe("7")
      expect((limited as RateLimitError).code).toBe("rate_limit_exceeded")
      expect((limited as RateLimitError).requestID).toMatch(/^req_/)
      const server = await failure(() => client(fake.url).chat.completions.create({ model: "gpt-4o", messages }))
      expect(server).toBeInstanceOf(InternalServerError)
      expect((server as InternalServerError).status).toBe(503)
      const malformed = await failure(() => client(fake.url).chat.completions.create({ model: "gpt-4o", messages }))
      expect(malformed).toBeInstanceOf(SyntaxError)
    }))

  it.scoped("a cut mid-stream fails the iteration after the first deltas, and is not retried", () =>
    withFake({ reply: { text: "abcdefgh", chunks: 8 } }, async (fake) => {
      await inject(fake, { _tag: "CutStream", afterChunks: 4 })
      const { error, items } = await drain(() => client(fake.url, 2).chat.completions.create({ model: "gpt-4o", messages, stream: true }))
      expect(items.map((c) => c.choices[0]?.delta.content ?? "").join("")).toBe("abc")
      // the body's own failure (undici's "terminated"), not a connection error the SDK would retry
      expect(error).toBeInstanceOf(TypeError)
      expect((error as Error).message).toBe("terminated")
      expect(await requestCount(fake)).toBe(1)
    }))

  it.scoped("the stream's error event is an APIError", () =>
    withFake({ reply: { text: "abcdefgh", chunks: 8 } }, async (fake) => {
      await inject(fake, { _tag: "StreamErrorEvent", afterChunks: 3 })
      const { error, items } = await drain(() => client(fake.url).chat.completions.create({ model: "gpt-4o", messages, stream: true }))
      expect(items.length).toBe(3)
      expect(error).toBeInstanceOf(APIError)
      expect((error as APIError).message).toContain("The server had an error")
    }))
})

describe("openai: Responses", () => {
  it.scoped("text, and a stream through finalResponse", () =>
    withFake({ reply: { text: "Hello from Responses.", chunks: 4 } }, async (fake) => {
      const json = await client(fake.url).responses.create({ model: "gpt-5", input: "hi" })
      expect(json.output_text).toBe("Hello from Responses.")
      expect(json.usage!.total_tokens).toBeGreaterThan(0)
      const stream = client(fake.url).responses.stream({ model: "gpt-5", input: "hi" })
      const deltas: Array<string> = []
      stream.on("response.output_text.delta", (event) => void deltas.push(event.delta))
      const final = await stream.finalResponse()
      expect(deltas.join("")).toBe("Hello from Responses.")
      // finalResponse adds no output_text without a parsed format: the message item holds it
      expect(final.output).toMatchObject([{ type: "message", content: [{ type: "output_text", text: "Hello from Responses." }] }])
      expect(final.status).toBe("completed")
    }))

  it.scoped("tool calls, JSON and streamed", () =>
    withFake({ reply: { text: "", toolCalls: [weatherCall] } }, async (fake) => {
      const rtools = [{ type: "function" as const, ...weather, strict: false }]
      const json = await client(fake.url).responses.create({ model: "gpt-5", input: "hi", tools: rtools })
      expect(json.output).toMatchObject([{ type: "function_call", call_id: "call_w1", name: "get_weather", arguments: weatherCall.arguments }])
      const streamed = await client(fake.url).responses.stream({ model: "gpt-5", input: "hi", tools: rtools }).finalResponse()
      expect(streamed.output).toMatchObject([{ type: "function_call", call_id: "call_w1", name: "get_weather", arguments: weatherCall.arguments }])
    }))

  it.scoped("429, 5xx and a malformed body as the SDK's errors", () =>
    withFake({}, async (fake) => {
      await inject(fake, { _tag: "RateLimit", retryAfterSeconds: 3 }, { _tag: "Status", status: 500 }, { _tag: "MalformedJson" })
      const limited = await failure(() => client(fake.url).responses.create({ model: "gpt-5", input: "hi" }))
      expect(limited).toBeInstanceOf(RateLimitError)
      expect((limited as RateLimitError).headers.get("retry-after")).toBe("3")
      expect(await failure(() => client(fake.url).responses.create({ model: "gpt-5", input: "hi" }))).toBeInstanceOf(InternalServerError)
      expect(await failure(() => client(fake.url).responses.create({ model: "gpt-5", input: "hi" }))).toBeInstanceOf(SyntaxError)
    }))

  it.scoped("a cut mid-stream rejects finalResponse after the first deltas, and is not retried", () =>
    withFake({ reply: { text: "abcdefgh", chunks: 8 } }, async (fake) => {
      await inject(fake, { _tag: "CutStream", afterChunks: 6 })
      const stream = client(fake.url, 2).responses.stream({ model: "gpt-5", input: "hi" })
      const deltas: Array<string> = []
      stream.on("response.output_text.delta", (event) => void deltas.push(event.delta))
      const error = await failure(() => stream.finalResponse())
      expect(deltas.join("")).toBe("ab")
      // the stream helper wraps the body's failure in its base error, not an APIError
      expect(error).toBeInstanceOf(OpenAIError)
      expect(error).not.toBeInstanceOf(APIError)
      expect((error as Error).message).toBe("terminated")
      expect(await requestCount(fake)).toBe(1)
    }))

  it.scoped("the error event is an APIError, from iteration and from finalResponse", () =>
    withFake({ reply: { text: "abcdefgh", chunks: 8 } }, async (fake) => {
      await inject(fake, { _tag: "StreamErrorEvent", afterChunks: 5 }, { _tag: "StreamErrorEvent", afterChunks: 5 })
      const { error, items } = await drain(() => client(fake.url).responses.create({ model: "gpt-5", input: "hi", stream: true }))
      expect(items.map((e) => e.type)).toEqual([
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta"
      ])
      expect(error).toBeInstanceOf(APIError)
      expect((error as APIError).message).toContain("The server had an error")
      const final = await failure(() => client(fake.url).responses.stream({ model: "gpt-5", input: "hi" }).finalResponse())
      expect(final).toBeInstanceOf(APIError)
    }))
})

describe("openai: embeddings", () => {
  it.scoped("the SDK's default (base64) decodes to the fake's vectors; floats on request", () =>
    withFake({}, async (fake) => {
      const byDefault = await client(fake.url).embeddings.create({ model: "text-embedding-3-small", input: ["alpha", "beta"] })
      expect(byDefault.data.map((d) => d.embedding.length)).toEqual([8, 8])
      const floats = await client(fake.url).embeddings.create({ model: "text-embedding-3-small", input: ["alpha", "beta"], encoding_format: "float" })
      byDefault.data.forEach((d, i) => d.embedding.forEach((x, j) => expect(x).toBeCloseTo(floats.data[i]!.embedding[j]!, 6)))
      const sized = await client(fake.url).embeddings.create({ model: "text-embedding-3-small", input: "gamma", dimensions: 3 })
      expect(sized.data[0]!.embedding).toHaveLength(3)
      const tokens = await client(fake.url).embeddings.create({ model: "text-embedding-3-small", input: [[1, 2, 3]] })
      expect(tokens.data).toHaveLength(1)
      expect(tokens.usage.prompt_tokens).toBeGreaterThan(0)
    }))

  it.scoped("429 and 5xx as the SDK's errors", () =>
    withFake({}, async (fake) => {
      await inject(fake, { _tag: "RateLimit", retryAfterSeconds: 2 }, { _tag: "Status", status: 502 }, { _tag: "MalformedJson" })
      const limited = await failure(() => client(fake.url).embeddings.create({ model: "e", input: "x" }))
      expect(limited).toBeInstanceOf(RateLimitError)
      expect((limited as RateLimitError).headers.get("retry-after")).toBe("2")
      expect(await failure(() => client(fake.url).embeddings.create({ model: "e", input: "x" }))).toBeInstanceOf(InternalServerError)
      expect(await failure(() => client(fake.url).embeddings.create({ model: "e", input: "x" }))).toBeInstanceOf(SyntaxError)
    }))
})

