import { describe, expect, it } from "@effect/vitest"
import { toWireRequest } from "../../../../src/internal/providers/openaiChat/request.js"
import { Message } from "../../../../src/index.js"
import { expectedWire, full, weatherTool } from "../../../support/chatRequests.js"
import { assertValid } from "../../../support/openapi.js"

describe("toWireRequest", () => {
  it("maps every message kind and option", () => {
    const body = toWireRequest(full, "gpt-4o-mini", false, "max_completion_tokens")
    expect(body).toEqual(expectedWire)
    assertValid("CreateChatCompletionRequest", body)
  })

  it("asks for usage on streams", () => {
    const body = toWireRequest(full, "gpt-4o-mini", true, "max_completion_tokens")
    expect(body).toEqual({ ...expectedWire, stream: true, stream_options: { include_usage: true } })
    assertValid("CreateChatCompletionRequest", body)
  })

  it("maps the other tool choices and response formats", () => {
    for (const toolChoice of ["auto", "none", "required"] as const) {
      const body = toWireRequest({ ...Message.request("hi", { tools: [weatherTool] }), toolChoice }, "m", false)
      expect(body.tool_choice).toBe(toolChoice)
      assertValid("CreateChatCompletionRequest", body)
    }
    for (const type of ["text", "json_object"] as const) {
      const body = toWireRequest(Message.request("hi", { responseFormat: { type } }), "m", false)
      expect(body.response_format).toEqual({ type })
      assertValid("CreateChatCompletionRequest", body)
    }
  })

  it("leaves out what the request does not set, and uses max_tokens by default", () => {
    const body = toWireRequest(Message.request("hi", { maxTokens: 5 }), "m", false)
    expect(body).toEqual({ model: "m", messages: [{ role: "user", content: "hi" }], max_tokens: 5 })
  })

  it("merges extra last and verbatim, so it can override anything", () => {
    const body = toWireRequest(
      Message.request("hi", { temperature: 0.5, extra: { temperature: 1, provider: { order: ["a"] }, stream_options: null } }),
      "m",
      true
    )
    expect(body.temperature).toBe(1)
    expect(body.provider).toEqual({ order: ["a"] })
    expect(body.stream_options).toBeNull()
  })

  it("sends an assistant turn with text and tool calls, and a data-URL image", () => {
    const body = toWireRequest(
      Message.request([
        Message.user([Message.image("data:image/png;base64,iVBORw0KGgo=")]),
        Message.assistant("Let me look.", { toolCalls: [{ id: "c1", name: "weather", arguments: "{}" }] }),
        Message.tool("c1", "sunny")
      ], { tools: [weatherTool] }),
      "m",
      false
    )
    const messages = body.messages as Array<Record<string, unknown>>
    expect(messages[0]).toEqual({ role: "user", content: [{ type: "image_url", image_url: { url: "data:image/png;base64,iVBORw0KGgo=" } }] })
    expect(messages[1]!.content).toBe("Let me look.")
    assertValid("CreateChatCompletionRequest", body)
  })
})
