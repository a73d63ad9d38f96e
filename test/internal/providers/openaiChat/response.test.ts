import { describe, expect, it } from "@effect/vitest"
import { finishReasonOf, fromWireResponse } from "../../../../src/internal/providers/openaiChat/response.js"
import { LlmError, Message } from "../../../../src/index.js"

const decode = (body: unknown, request: Message.ChatRequest = Message.request("hello there")) =>
  fromWireResponse("openai", "gpt-x", request, typeof body === "string" ? body : JSON.stringify(body))

const completion = (message: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
  id: "chatcmpl-1",
  object: "chat.completion",
  created: 1,
  model: "gpt-x-2025",
  choices: [{ index: 0, message: { role: "assistant", ...message }, logprobs: null, finish_reason: "stop" }],
  usage: { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 },
  ...extra
})

const ok = (result: Message.ChatResponse | LlmError.LlmError): Message.ChatResponse => {
  if (LlmError.isLlmError(result)) throw new Error(`expected a response, got ${result._tag}: ${result.message}`)
  return result
}

describe("fromWireResponse", () => {
  it("reads text, id, model and usage with cached and reasoning tokens", () => {
    const response = ok(decode(completion({ content: "Hi!" }, {
      usage: {
        prompt_tokens: 10,
        completion_tokens: 5,
        total_tokens: 15,
        prompt_tokens_details: { cached_tokens: 4, audio_tokens: 0 },
        completion_tokens_details: { reasoning_tokens: 2, audio_tokens: 0 }
      }
    })))
    expect(response).toEqual({
      id: "chatcmpl-1",
      model: "gpt-x-2025",
      provider: "openai",
      text: "Hi!",
      toolCalls: [],
      finishReason: "stop",
      usage: { inputTokens: 10, outputTokens: 5, totalTokens: 15, cachedInputTokens: 4, reasoningTokens: 2, estimated: false }
    })
  })

  it("reads DeepSeek's reasoning_content and OpenRouter's reasoning", () => {
    expect(ok(decode(completion({ content: "4", reasoning_content: "2+2 is 4" }))).reasoning).toBe("2+2 is 4")
    expect(ok(decode(completion({ content: "4", reasoning: "2+2 is 4" }))).reasoning).toBe("2+2 is 4")
    expect(ok(decode(completion({ content: "4", reasoning_content: "" })))).not.toHaveProperty("reasoning")
  })

  it("reads tool calls and their finish reason", () => {
    const body = completion({
      content: null,
      tool_calls: [
        { id: "call_1", type: "function", function: { name: "weather", arguments: "{\"city\":\"Paris\"}" } },
        { id: "call_2", type: "function", function: { name: "time", arguments: "{}" } }
      ]
    })
    body.choices[0]!.finish_reason = "tool_calls"
    const response = ok(decode(body))
    expect(response.text).toBe("")
    expect(response.finishReason).toBe("tool_calls")
    expect(response.toolCalls).toEqual([
      { id: "call_1", name: "weather", arguments: "{\"city\":\"Paris\"}" },
      { id: "call_2", name: "time", arguments: "{}" }
    ])
  })

  it("maps finish reasons, and new values to other", () => {
    const reasons: Record<string, Message.FinishReason> = {
      stop: "stop",
      length: "length",
      tool_calls: "tool_calls",
      function_call: "tool_calls",
      content_filter: "content_filter",
      insufficient_system_resource: "other",
      "a-brand-new-reason": "other"
    }
    for (const [wire, unified] of Object.entries(reasons)) {
      const body = completion({ content: "x" })
      body.choices[0]!.finish_reason = wire
      expect(ok(decode(body)).finishReason).toBe(unified)
    }
    expect(finishReasonOf(null, false)).toBe("stop")
    expect(finishReasonOf("stop", true)).toBe("tool_calls")
  })

  it("ignores unknown fields and new kinds of things", () => {
    const body = {
      ...completion({
        content: "Hi",
        annotations: [{ type: "url_citation" }],
        audio: null,
        a_future_field: { nested: true },
        tool_calls: [
          { id: "c1", type: "custom", custom: { name: "grammar", input: "SELECT 1" } },
          { id: "c2", type: "a_future_kind", a_future_kind: {} },
          { type: "function", function: { name: "no_id", arguments: { city: "Oslo" } } }
        ]
      }),
      service_tier: "priority-ultra",
      system_fingerprint: null,
      choices_extra: 1
    }
    body.choices[0] = { ...body.choices[0]!, finish_reason: "tool_calls", ...{ stop_reason: 42 } }
    const response = ok(decode({ ...body, usage: { ...body.usage, a_new_counter: 3, prompt_tokens_details: null } }))
    expect(response.text).toBe("Hi")
    expect(response.toolCalls).toEqual([
      { id: "c1", name: "grammar", arguments: "SELECT 1" },
      { id: "call_1", name: "no_id", arguments: "{\"city\":\"Oslo\"}" }
    ])
    expect(response.usage).toEqual({ inputTokens: 10, outputTokens: 5, totalTokens: 15, estimated: false })
  })

  it("reads content sent as text parts", () => {
    expect(ok(decode(completion({ content: [{ type: "text", text: "Hel" }, { type: "text", text: "lo" }] }))).text).toBe("Hello")
  })

  it("estimates usage when the provider sent none, and says so", () => {
    const request = Message.request("12345678") // 8 characters: 2 tokens at ~4 a token
    const none = ok(decode({ ...completion({ content: "abcdefghijkl" }), usage: undefined }, request))
    expect(none.usage).toEqual({ inputTokens: 2, outputTokens: 3, totalTokens: 5, estimated: true })
    const empty = ok(decode({ ...completion({ content: "abcdefghijkl" }), usage: {} }, request))
    expect(empty.usage).toEqual(none.usage)
    const nulls = ok(decode({ ...completion({ content: "abcdefghijkl" }), usage: null }, request))
    expect(nulls.usage.estimated).toBe(true)
  })

  it("fails with ContentFilterError when a filter withheld the reply", () => {
    const body = completion({ content: null })
    body.choices[0]!.finish_reason = "content_filter"
    const error = decode(body)
    expect(LlmError.isLlmError(error) && error._tag).toBe("ContentFilterError")
  })

  it("fails with MalformedResponseError, naming the problem, when the shape is wrong", () => {
    const notJson = decode("<html>oops</html>")
    expect(LlmError.isLlmError(notJson) && notJson._tag).toBe("MalformedResponseError")
    if (notJson instanceof LlmError.MalformedResponseError) expect(notJson.excerpt).toBe("<html>oops</html>")
    const noChoices = decode({ id: "x", choices: [] })
    expect(noChoices).toBeInstanceOf(LlmError.MalformedResponseError)
    if (noChoices instanceof LlmError.MalformedResponseError) expect(noChoices.message).toContain("choices")
  })
})
