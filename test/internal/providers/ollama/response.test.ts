import { describe, expect, it } from "@effect/vitest"
import { fromWireResponse } from "../../../../src/internal/providers/ollama/response.js"
import { Message } from "../../../../src/index.js"

describe("Ollama replies", () => {
  it("decodes tolerantly: unknown fields, string arguments, new done reasons", () => {
    const body = JSON.stringify({
      model: "m",
      message: { role: "assistant", content: "", tool_calls: [{ function: { name: "f", arguments: `{"a":1}`, index: 0 }, novel: 1 }] },
      done_reason: "unload",
      done: true,
      eval_count: 3,
      whatever: {}
    })
    const response = fromWireResponse("ollama", "m", Message.request("x"), body)
    expect(response).toMatchObject({ finishReason: "other", toolCalls: [{ id: "call_0", name: "f", arguments: `{"a":1}` }] })
    expect(response).toMatchObject({ usage: { inputTokens: 0, outputTokens: 3, estimated: false } })
  })
})
