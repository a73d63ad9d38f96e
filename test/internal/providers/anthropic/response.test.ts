import { describe, expect, it } from "@effect/vitest"
import { fromWireResponse } from "../../../../src/internal/providers/anthropic/response.js"
import { Message } from "../../../../src/index.js"

describe("Anthropic replies", () => {
  it("decodes tolerantly: unknown blocks, fields and stop reasons; cache tokens count as input", () => {
    const body = JSON.stringify({
      id: "msg_1",
      model: "claude-x",
      content: [
        { type: "server_tool_use", id: "srv_1", name: "web_search", input: { q: "x" } },
        { type: "brand_new_block", payload: 1 },
        { type: "text", text: "hi", citations: [] }
      ],
      stop_reason: "a_new_reason",
      usage: { input_tokens: 10, cache_read_input_tokens: 90, cache_creation_input_tokens: 5, output_tokens: 3, brand_new: {} }
    })
    const response = fromWireResponse("anthropic", "m", Message.request("q"), body)
    expect(response).toMatchObject({
      text: "hi",
      toolCalls: [],
      finishReason: "other",
      usage: { inputTokens: 105, outputTokens: 3, totalTokens: 108, cachedInputTokens: 90, estimated: false }
    })
    const bad = fromWireResponse("anthropic", "m", Message.request("q"), JSON.stringify({ id: "x", content: "nope" }))
    expect(bad).toMatchObject({ _tag: "MalformedResponseError" })
    expect((bad as { message: string }).message).toContain("content")
  })
})
