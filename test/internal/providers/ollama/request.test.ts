import { describe, expect, it } from "@effect/vitest"
import { JSONSchema, Schema } from "effect"
import { toWireRequest } from "../../../../src/internal/providers/ollama/request.js"
import { LlmError, Message } from "../../../../src/index.js"

const tool = { name: "t", parameters: JSONSchema.make(Schema.Struct({ a: Schema.String }).annotations({ identifier: "A" })) }

describe("Ollama requests: tools and structured output", () => {
  it("a forced or named tool choice is an InvalidRequestError naming the field: Ollama has no tool choice", () => {
    for (const toolChoice of ["required", { name: "t" }] as const) {
      const out = toWireRequest(Message.request("hi", { tools: [tool], toolChoice }), "llama", false)
      expect(out).toBeInstanceOf(LlmError.InvalidRequestError)
      expect((out as LlmError.InvalidRequestError).message).toContain("request.toolChoice")
    }
  })

  it("\"none\" offers no tools, \"auto\" is the default; schemas go with their root inlined", () => {
    expect((toWireRequest(Message.request("hi", { tools: [tool], toolChoice: "none" }), "llama", false) as Record<string, unknown>).tools).toBeUndefined()
    const body = toWireRequest(Message.request("hi", {
      tools: [tool],
      toolChoice: "auto",
      responseFormat: { type: "json_schema", name: "a", schema: tool.parameters }
    }), "llama", false) as Record<string, any>
    expect(body.tools[0].function.parameters).toMatchObject({ type: "object", properties: { a: { type: "string" } } })
    expect(body.tools[0].function.parameters.$schema).toBeUndefined()
    expect(body.format).toEqual(body.tools[0].function.parameters)
    expect((toWireRequest(Message.request("hi", { responseFormat: { type: "json_object" } }), "llama", false) as Record<string, any>).format).toBe("json")
  })
})
