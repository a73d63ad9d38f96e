import { describe, expect, it } from "@effect/vitest"
import { fromWireResponse } from "../../../../src/internal/providers/gemini/response.js"
import { Message } from "../../../../src/index.js"

describe("Gemini replies", () => {
  it("decodes unknown fields and new enum values without failing", () => {
    const body = JSON.stringify({
      candidates: [{ content: { parts: [{ text: "hi", brandNewField: 1 }], role: "model" }, finishReason: "SOME_NEW_REASON", extra: {} }],
      usageMetadata: { promptTokenCount: 3, candidatesTokenCount: 1, totalTokenCount: 4, newCount: 9 },
      responseId: "x",
      surprise: true
    })
    const response = fromWireResponse("gemini", "m", Message.request("x"), body)
    expect(response).toMatchObject({ text: "hi", finishReason: "other", usage: { inputTokens: 3, outputTokens: 1, totalTokens: 4 } })
    const blocked = fromWireResponse("gemini", "m", Message.request("x"), JSON.stringify({ promptFeedback: { blockReason: "SAFETY" } }))
    expect((blocked as { _tag: string })._tag).toBe("ContentFilterError")
  })
})
