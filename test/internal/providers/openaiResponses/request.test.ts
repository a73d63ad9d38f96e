import { describe, expect, it } from "@effect/vitest"
import { JSONSchema, Schema } from "effect"
import { toWireRequest } from "../../../../src/internal/providers/openaiResponses/request.js"
import { EventParser } from "../../../../src/internal/providers/openaiResponses/stream.js"
import { Message } from "../../../../src/index.js"

const Person = Schema.Struct({ name: Schema.String, age: Schema.optional(Schema.Number) }).annotations({ identifier: "Person" })

describe("Responses requests: tools, text.format and reasoning items", () => {
  it("strict tools and text.format in strict mode when the schema allows; json_object as its own format", () => {
    const body = toWireRequest(Message.request("hi", {
      tools: [{ name: "who", parameters: JSONSchema.make(Person), strict: true }, { name: "any", parameters: { type: "object" } }],
      responseFormat: { type: "json_schema", name: "person", schema: JSONSchema.make(Person), strict: true }
    }), "m", false) as Record<string, any>
    expect(body.tools[0].strict).toBe(true)
    expect(body.tools[0].parameters.required).toEqual(["name", "age"])
    // Responses makes functions strict unless told: a tool without strict goes strict: false, as before
    expect(body.tools[1]).toEqual({ type: "function", name: "any", parameters: { type: "object" }, strict: false })
    expect(body.text.format).toMatchObject({ type: "json_schema", name: "person", strict: true })
    expect(body.text.format.schema.properties.age).toEqual({ type: ["number", "null"] })
    expect(toWireRequest(Message.request("hi", { responseFormat: { type: "json_object" } }), "m", false).text).toEqual({ format: { type: "json_object" } })
  })

  it("a reasoning effort asks for encrypted reasoning content; none does not", () => {
    expect(toWireRequest(Message.request("hi", { reasoningEffort: "low" }), "m", false).include).toEqual(["reasoning.encrypted_content"])
    expect(toWireRequest(Message.request("hi", { reasoningEffort: "none" }), "m", false).include).toBeUndefined()
    expect(toWireRequest(Message.request("hi"), "m", false).include).toBeUndefined()
    // store: false without an effort: the model may still reason, and nothing is kept server-side
    expect(toWireRequest(Message.request("hi", { extra: { store: false } }), "m", false).include).toEqual(["reasoning.encrypted_content"])
  })

  it("reasoning items go back before the turn's text and calls; other APIs' state is ignored", () => {
    const item = { type: "reasoning", id: "rs_1", summary: [], encrypted_content: "enc" }
    const body = toWireRequest(Message.request([
      Message.user("q"),
      Message.assistant("Checking.", {
        toolCalls: [{ id: "c1", name: "f", arguments: "{}" }],
        reasoningState: [{ api: "anthropic", item: { type: "thinking" } }, { api: "openai-responses", item }]
      }),
      Message.tool("c1", "ok")
    ]), "m", false)
    expect(body.input).toEqual([
      { role: "user", content: "q" },
      item,
      { role: "assistant", content: "Checking." },
      { type: "function_call", call_id: "c1", name: "f", arguments: "{}" },
      { type: "function_call_output", call_id: "c1", output: "ok" }
    ])
  })

  it("stream: reasoning items of output_item.done, in output order, on the Finish", () => {
    const parser = new EventParser("openai", "m", Message.request("q"))
    const out: Array<Message.StreamEvent> = []
    const feed = (event: Record<string, unknown>) => expect(parser.onData(JSON.stringify(event), event.type as string, out)).toBeUndefined()
    feed({ type: "response.output_item.added", output_index: 0, item: { type: "reasoning", id: "rs_1", summary: [] } })
    feed({ type: "response.output_item.done", output_index: 0, item: { type: "reasoning", id: "rs_1", summary: [], encrypted_content: "final", status: "completed" } })
    feed({ type: "response.completed", response: { id: "r", status: "completed", usage: { input_tokens: 1, output_tokens: 1 } } })
    expect((out[out.length - 1] as Message.Finish).reasoningState).toEqual([
      { api: "openai-responses", item: { type: "reasoning", id: "rs_1", summary: [], encrypted_content: "final" } }
    ])
  })
})
