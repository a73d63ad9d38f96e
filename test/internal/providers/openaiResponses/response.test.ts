import { describe, expect, it } from "@effect/vitest"
import { fromWireResponse } from "../../../../src/internal/providers/openaiResponses/response.js"
import { Message } from "../../../../src/index.js"

describe("Responses replies", () => {
  it("decodes tolerantly: unknown items, fields and statuses", () => {
    const body = JSON.stringify({
      id: "resp_1",
      model: "gpt-x",
      status: "completed",
      brand_new: { x: 1 },
      output: [
        { type: "web_search_call", id: "ws_1", status: "completed", action: { query: "x" } },
        { type: "reasoning", id: "rs", summary: [{ type: "summary_text", text: "A" }, { type: "summary_text", text: "B" }] },
        { type: "message", role: "assistant", content: [{ type: "output_text", text: "Hel", annotations: [{ type: "new" }] }, { type: "output_text", text: "lo" }] },
        { type: "custom_tool_call", call_id: "c1", name: "sql", input: "SELECT 1" }
      ],
      usage: { input_tokens: 5, output_tokens: 7, total_tokens: 12, output_tokens_details: { reasoning_tokens: 4 } }
    })
    expect(fromWireResponse("openai", "m", Message.request("q"), body)).toEqual({
      id: "resp_1",
      model: "gpt-x",
      provider: "openai",
      text: "Hello",
      reasoning: "A\n\nB",
      toolCalls: [{ id: "c1", name: "sql", arguments: "SELECT 1" }],
      finishReason: "tool_calls",
      usage: { inputTokens: 5, outputTokens: 7, totalTokens: 12, reasoningTokens: 4, estimated: false },
      // the reasoning item, to send back on the next turn
      reasoningState: [{
        api: "openai-responses",
        item: { type: "reasoning", id: "rs", summary: [{ type: "summary_text", text: "A" }, { type: "summary_text", text: "B" }] }
      }]
    })
    const failed = fromWireResponse(
      "openai",
      "m",
      Message.request("q"),
      JSON.stringify({ status: "failed", output: [], error: { code: "insufficient_quota", message: "pay up" } })
    )
    expect(failed).toMatchObject({ _tag: "QuotaExceededError" })
    const bad = fromWireResponse("openai", "m", Message.request("q"), JSON.stringify({ id: "x", output: {} }))
    expect(bad).toMatchObject({ _tag: "MalformedResponseError" })
    expect((bad as { message: string }).message).toContain("output")
  })
})
