import { describe, expect, it } from "@effect/vitest"
import { JSONSchema, Schema } from "effect"
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

describe("toWireRequest: tools and structured output from JSONSchema.make", () => {
  const Params = Schema.Struct({ city: Schema.String, unit: Schema.optional(Schema.Literal("c", "f")) }).annotations({ identifier: "Params" })

  it("a strict tool from JSONSchema.make (root $ref, $schema) goes in strict mode, valid for the OpenAPI document", () => {
    const body = toWireRequest(
      Message.request("hi", { tools: [{ name: "weather", description: "d", parameters: JSONSchema.make(Params), strict: true }] }),
      "m",
      false
    )
    const fn = (body.tools as Array<any>)[0].function
    expect(fn.strict).toBe(true)
    expect(fn.parameters.$schema).toBeUndefined()
    expect(fn.parameters.type).toBe("object")
    expect(fn.parameters.required).toEqual(["city", "unit"])
    // optional: required now, and nullable
    expect(fn.parameters.properties.unit).toEqual({ anyOf: [{ type: "string", enum: ["c", "f"] }, { type: "null" }] })
    expect(fn.parameters.additionalProperties).toBe(false)
    assertValid("CreateChatCompletionRequest", body)
  })

  it("a strict tool whose schema cannot be strict goes non-strict, never failing; strict absent keeps the schema", () => {
    const record = JSONSchema.make(Schema.Struct({ tags: Schema.Record({ key: Schema.String, value: Schema.String }) }))
    const body = toWireRequest(Message.request("hi", { tools: [{ name: "t", parameters: record, strict: true }] }), "m", false)
    const fn = (body.tools as Array<any>)[0].function
    expect(fn.strict).toBe(false)
    expect(fn.parameters.properties.tags.additionalProperties).toEqual({ type: "string" })
    assertValid("CreateChatCompletionRequest", body)
    const plain = toWireRequest(Message.request("hi", { tools: [{ name: "t", parameters: { type: "object", properties: {} } }] }), "m", false)
    expect((plain.tools as Array<any>)[0].function).toEqual({ name: "t", parameters: { type: "object", properties: {} } })
  })

  it("response_format json_schema: strict when the schema allows, with the name and description", () => {
    const body = toWireRequest(
      Message.request("hi", { responseFormat: { type: "json_schema", name: "params", description: "d", schema: JSONSchema.make(Params), strict: true } }),
      "m",
      false
    )
    const format = body.response_format as any
    expect(format.type).toBe("json_schema")
    expect(format.json_schema.name).toBe("params")
    expect(format.json_schema.description).toBe("d")
    expect(format.json_schema.strict).toBe(true)
    expect(format.json_schema.schema.required).toEqual(["city", "unit"])
    assertValid("CreateChatCompletionRequest", body)
  })
})
