/**
 * The official `@anthropic-ai/sdk` client against the fake: Messages, JSON and streamed
 * (`finalMessage()`), tool calls, and each fault as the SDK's own error. Retries off, except
 * where a test shows that a cut mid-stream is not retried.
 */
import Anthropic, { AnthropicError, APIError, InternalServerError, NotFoundError, RateLimitError } from "@anthropic-ai/sdk"
import { describe, expect, it } from "@effect/vitest"
import { apiKey, drain, failure, inject, requestCount, weather, weatherCall, withFake } from "./support.js"

const client = (url: string, maxRetries = 0) => new Anthropic({ apiKey, baseURL: url, maxRetries })
const params = { model: "claude-sonnet-4-6", max_tokens: 100, messages: [{ role: "user" as const, content: "hi" }] }
const tools = [{ name: weather.name, description: weather.description, input_schema: weather.parameters }]

describe("@anthropic-ai/sdk: Messages", () => {
  it.scoped("text, with usage (cache counts included) and the request id", () =>
    withFake({ reply: { text: "Hello from Claude." } }, async (fake) => {
      const { data, request_id } = await client(fake.url).messages.create(params).withResponse()
      expect(data.content).toEqual([{ type: "text", text: "Hello from Claude." }])
      expect(data.stop_reason).toBe("end_turn")
      const { cache_creation_input_tokens, cache_read_input_tokens, input_tokens } = data.usage
      expect(input_tokens + (cache_creation_input_tokens ?? NaN) + (cache_read_input_tokens ?? NaN)).toBeGreaterThan(0)
      expect(request_id).toMatch(/^req_/)
    }))

  it.scoped("a stream: text events and finalMessage", () =>
    withFake({ reply: { text: "Hello, streamed.", chunks: 4 } }, async (fake) => {
      const stream = client(fake.url).messages.stream(params)
      const deltas: Array<string> = []
      stream.on("text", (text) => void deltas.push(text))
      const final = await stream.finalMessage()
      expect(deltas.join("")).toBe("Hello, streamed.")
      expect(final.content).toMatchObject([{ type: "text", text: "Hello, streamed." }])
      expect(final.usage.output_tokens).toBeGreaterThan(1)
      const { items } = await drain(() => client(fake.url).messages.create({ ...params, stream: true }))
      expect(items.map((e) => e.type)).toEqual([
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop"
      ])
    }))

  it.scoped("tool calls, JSON and streamed (finalMessage), and thinking", () =>
    withFake({ reply: { text: "", toolCalls: [weatherCall], reasoning: "Let me look." } }, async (fake) => {
      const json = await client(fake.url).messages.create({ ...params, tools })
      expect(json.stop_reason).toBe("tool_use")
      expect(json.content).toMatchObject([{ type: "thinking", thinking: "Let me look." }, { type: "tool_use", id: "call_w1", name: "get_weather", input: { city: "Paris" } }])
      const streamed = await client(fake.url).messages.stream({ ...params, tools }).finalMessage()
      expect(streamed.content).toMatchObject([
        { type: "thinking", thinking: "Let me look.", signature: "fake-signature" },
        { type: "tool_use", id: "call_w1", name: "get_weather", input: { city: "Paris" } }
      ])
    }))

  it.scoped("a tool call with invalid JSON arguments: no fake 500; the stream carries them as given", () =>
    withFake({ reply: { text: "", toolCalls: [{ name: "get_weather", arguments: "{\"city\": Par" }] } }, async (fake) => {
      const json = await client(fake.url).messages.create({ ...params, tools })
      expect(json.content).toMatchObject([{ type: "tool_use", input: {} }])
      const { items } = await drain(() => client(fake.url).messages.create({ ...params, tools, stream: true }))
      const partial = items.flatMap((e) => (e.type === "content_block_delta" && e.delta.type === "input_json_delta" ? [e.delta.partial_json] : []))
      expect(partial.join("")).toBe("{\"city\": Par")
      // the SDK's own accumulator rejects them, as it would the real API's
      expect(await failure(() => client(fake.url).messages.stream({ ...params, tools }).finalMessage())).toBeInstanceOf(Error)
    }))

  it.scoped("429 is a RateLimitError with retry-after; 5xx and 529 InternalServerErrors; a malformed body fails", () =>
    withFake({}, async (fake) => {
      await inject(fake, { _tag: "RateLimit", retryAfterSeconds: 9 }, { _tag: "Status", status: 500 }, { _tag: "Status", status: 529 }, { _tag: "MalformedJson" })
      const limited = await failure(() => client(fake.url).messages.create(params))
      expect(limited).toBeInstanceOf(RateLimitError)
      expect((limited as RateLimitError).headers.get("retry-after")).toBe("9")
      expect((limited as RateLimitError).error).toMatchObject({ type: "error", error: { type: "rate_limit_error" } })
      expect((limited as RateLimitError).requestID).toMatch(/^req_/)
      const server = await failure(() => client(fake.url).messages.create(params))
      expect(server).toBeInstanceOf(InternalServerError)
      expect((server as InternalServerError).error).toMatchObject({ error: { type: "api_error" } })
      const overloaded = await failure(() => client(fake.url).messages.create(params))
      expect(overloaded).toBeInstanceOf(InternalServerError)
      expect((overloaded as InternalServerError).status).toBe(529)
      expect(await failure(() => client(fake.url).messages.create(params))).toBeInstanceOf(SyntaxError)
    }))

  it.scoped("a cut mid-stream rejects finalMessage after the first text, and is not retried", () =>
    withFake({ reply: { text: "abcdefgh", chunks: 8 } }, async (fake) => {
      await inject(fake, { _tag: "CutStream", afterChunks: 5 })
      // retries on: a connection error would be retried silently, a mid-stream cut is not
      const stream = client(fake.url, 2).messages.stream(params)
      const deltas: Array<string> = []
      stream.on("text", (text) => void deltas.push(text))
      const error = await failure(() => stream.finalMessage())
      expect(deltas.join("")).toBe("ab")
      // the stream helper wraps the body's failure in its base error, not an APIError
      expect(error).toBeInstanceOf(AnthropicError)
      expect(error).not.toBeInstanceOf(APIError)
      expect((error as Error).message).toBe("terminated")
      expect(await requestCount(fake)).toBe(1)
    }))

  it.scoped("the stream's error event is the SDK's APIError", () =>
    withFake({ reply: { text: "abcdefgh", chunks: 8 } }, async (fake) => {
      await inject(fake, { _tag: "StreamErrorEvent", afterChunks: 4 }, { _tag: "StreamErrorEvent", afterChunks: 4 })
      const { error, items } = await drain(() => client(fake.url).messages.create({ ...params, stream: true }))
      expect(items.map((e) => e.type)).toEqual(["message_start", "content_block_start", "content_block_delta"])
      expect(error).toBeInstanceOf(APIError)
      expect((error as APIError).error).toMatchObject({ type: "error", error: { type: "overloaded_error" } })
      expect(await failure(() => client(fake.url).messages.stream(params).finalMessage())).toBeInstanceOf(APIError)
    }))

  it.scoped("an unknown path is the SDK's NotFoundError, with Anthropic's body", () =>
    withFake({}, async (fake) => {
      const missing = await failure(() => client(fake.url).messages.countTokens({ model: params.model, messages: params.messages }))
      expect(missing).toBeInstanceOf(NotFoundError)
      expect((missing as NotFoundError).error).toMatchObject({ type: "error", error: { type: "not_found_error" } })
    }))
})
