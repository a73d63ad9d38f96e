import { describe, expect, it } from "@effect/vitest"
import { JSONSchema, Schema } from "effect"
import { outputToolDescription, toWireRequest } from "../../../../src/internal/providers/anthropic/request.js"
import { fromWireResponse } from "../../../../src/internal/providers/anthropic/response.js"
import { EventParser } from "../../../../src/internal/providers/anthropic/stream.js"
import { LlmError, Message } from "../../../../src/index.js"

type Json = Record<string, any>
const Person = Schema.Struct({ name: Schema.String, age: Schema.optional(Schema.Number) }).annotations({ identifier: "Person" })
const format = { type: "json_schema" as const, name: "person", schema: JSONSchema.make(Person) }

const body = (request: Message.ChatRequest): Json => {
  const out = toWireRequest(request, "claude", false)
  if (out instanceof LlmError.InvalidRequestError) throw new Error(out.message)
  return out
}
const error = (request: Message.ChatRequest): string => {
  const out = toWireRequest(request, "claude", false)
  expect(out).toBeInstanceOf(LlmError.InvalidRequestError)
  return (out as LlmError.InvalidRequestError).message
}

/** Feeds Messages events to the parser and returns what it emitted. */
const stream = (request: Message.ChatRequest, events: Array<Json>): Array<Message.StreamEvent> => {
  const parser = new EventParser("anthropic", "claude", request)
  const out: Array<Message.StreamEvent> = []
  for (const event of events) expect(parser.onData(JSON.stringify(event), event.type, out)).toBeUndefined()
  expect(parser.onEnd(out)).toBeUndefined()
  return out
}

describe("Anthropic requests: tools and structured output", () => {
  it("a tool result flagged as an error goes as is_error: true; other results carry no flag", () => {
    const call = { id: "t1", name: "who", arguments: "{}" }
    const messages = body(Message.request([
      Message.user("hi"),
      Message.assistant("", { toolCalls: [call, { ...call, id: "t2" }] }),
      Message.tool("t1", "{\"error\":\"no such person\"}", "who", { isError: true }),
      Message.tool("t2", "{}", "who")
    ])).messages
    expect(messages[2].content).toEqual([
      { type: "tool_result", tool_use_id: "t1", content: "{\"error\":\"no such person\"}", is_error: true },
      { type: "tool_result", tool_use_id: "t2", content: "{}" }
    ])
  })

  it("a tool's input_schema is an object schema: the JSONSchema.make root reference inlined, $schema dropped", () => {
    const tools = body(Message.request("hi", { tools: [{ name: "who", parameters: JSONSchema.make(Person), strict: true }] })).tools
    expect(tools[0].input_schema.type).toBe("object")
    expect(tools[0].input_schema.$schema).toBeUndefined()
    expect(tools[0].input_schema.properties.name).toEqual({ type: "string" })
    expect(tools[0].strict).toBeUndefined()
  })

  it("a json_schema format is a forced output tool", () => {
    const wire = body(Message.request("hi", { responseFormat: format }))
    expect(wire.tools).toEqual([{ name: "person", description: outputToolDescription, input_schema: expect.objectContaining({ type: "object" }) }])
    expect(wire.tool_choice).toEqual({ type: "tool", name: "person" })
    expect(wire.output_config).toBeUndefined()
  })

  it("with extended thinking, which refuses a forced tool, the format goes as output_config.format", () => {
    const wire = body(Message.request("hi", { responseFormat: format, reasoningEffort: "low" }))
    expect(wire.tools).toBeUndefined()
    expect(wire.tool_choice).toBeUndefined()
    expect(wire.output_config).toEqual({ format: { type: "json_schema", schema: expect.objectContaining({ type: "object" }) } })
  })

  it.each([
    ["json_object", Message.request("hi", { responseFormat: { type: "json_object" } }), "request.responseFormat"],
    ["a non-object format schema", Message.request("hi", { responseFormat: { ...format, schema: JSONSchema.make(Schema.Array(Schema.String)) } }), "request.responseFormat.schema"],
    ["a toolChoice beside a json_schema format", Message.request("hi", { responseFormat: format, toolChoice: "auto" }), "request.toolChoice"],
    ["a tool named as the format", Message.request("hi", { responseFormat: format, tools: [{ name: "person", parameters: { type: "object" } }] }), "request.responseFormat.name"],
    ["a forced tool with thinking", Message.request("hi", { tools: [{ name: "t", parameters: { type: "object" } }], toolChoice: "required", reasoningEffort: "low" }), "request.toolChoice"],
    ["a named tool with thinking", Message.request("hi", { tools: [{ name: "t", parameters: { type: "object" } }], toolChoice: { name: "t" }, reasoningEffort: "low" }), "request.toolChoice"]
  ])("%s is an InvalidRequestError naming the field", (_, request, field) => {
    expect(error(request)).toContain(field)
  })

  it("thinking and redacted thinking blocks go back first in the assistant turn; other APIs' state is ignored", () => {
    const thinking = { type: "thinking", thinking: "hmm", signature: "sig" }
    const redacted = { type: "redacted_thinking", data: "enc" }
    const wire = body(Message.request([
      Message.user("q"),
      Message.assistant("Let me check.", {
        toolCalls: [{ id: "t1", name: "f", arguments: "{}" }],
        reasoningState: [{ api: "anthropic", item: thinking }, { api: "gemini", item: { thoughtSignature: "x" } }, { api: "anthropic", item: redacted }]
      }),
      Message.tool("t1", "ok")
    ]))
    expect(wire.messages[1].content).toEqual([thinking, redacted, { type: "text", text: "Let me check." }, { type: "tool_use", id: "t1", name: "f", input: {} }])
  })
})

describe("Anthropic replies: the output tool is the text, thinking is reasoning state", () => {
  const request = Message.request("hi", { responseFormat: format })
  const reply = (content: Array<Json>, stop_reason = "tool_use") => JSON.stringify({ id: "msg", model: "claude", content, stop_reason, usage: { input_tokens: 1, output_tokens: 2 } })

  it("chat: the forced tool's input is the JSON text, finish stop, no tool call", () => {
    const response = fromWireResponse("anthropic", "claude", request, reply([{ type: "tool_use", id: "toolu_1", name: "person", input: { name: "Ada" } }])) as Message.ChatResponse
    expect(response.text).toBe(`{"name":"Ada"}`)
    expect(response.toolCalls).toEqual([])
    expect(response.finishReason).toBe("stop")
    // without the format, the same block is a tool call
    const plain = fromWireResponse("anthropic", "claude", Message.request("hi"), reply([{ type: "tool_use", id: "toolu_1", name: "person", input: {} }])) as Message.ChatResponse
    expect(plain.toolCalls).toHaveLength(1)
    expect(plain.finishReason).toBe("tool_calls")
  })

  it("stream: input_json_delta of the output tool streams as TextDeltas and collects to the same text", () => {
    const out = stream(request, [
      { type: "message_start", message: { id: "msg", model: "claude", usage: { input_tokens: 1 } } },
      { type: "content_block_start", index: 0, content_block: { type: "tool_use", id: "toolu_1", name: "person", input: {} } },
      { type: "content_block_delta", index: 0, delta: { type: "input_json_delta", partial_json: "{\"name\":" } },
      { type: "content_block_delta", index: 0, delta: { type: "input_json_delta", partial_json: "\"Ada\"}" } },
      { type: "content_block_stop", index: 0 },
      { type: "message_delta", delta: { stop_reason: "tool_use" }, usage: { output_tokens: 5 } },
      { type: "message_stop" }
    ])
    expect(out.filter((e) => e._tag === "TextDelta").map((e) => (e as Message.TextDelta).text).join("")).toBe(`{"name":"Ada"}`)
    expect(out.some((e) => e._tag === "ToolCall" || e._tag === "ToolCallDelta")).toBe(false)
    expect((out[out.length - 1] as Message.Finish).finishReason).toBe("stop")
  })

  it("chat and stream: thinking with its signature and redacted thinking become reasoning state, in order", () => {
    const thinking = { type: "thinking", thinking: "Let me think.", signature: "c2lnbmF0dXJl" }
    const redacted = { type: "redacted_thinking", data: "ZW5jcnlwdGVk" }
    const chat = fromWireResponse("anthropic", "claude", Message.request("q"), reply([thinking, redacted, { type: "text", text: "Hi" }], "end_turn")) as Message.ChatResponse
    const expected = [{ api: "anthropic", item: thinking }, { api: "anthropic", item: redacted }]
    expect(chat.reasoningState).toEqual(expected)
    const out = stream(Message.request("q"), [
      { type: "message_start", message: { id: "msg", model: "claude", usage: { input_tokens: 1 } } },
      { type: "content_block_start", index: 0, content_block: { type: "thinking", thinking: "", signature: "" } },
      { type: "content_block_delta", index: 0, delta: { type: "thinking_delta", thinking: "Let me " } },
      { type: "content_block_delta", index: 0, delta: { type: "thinking_delta", thinking: "think." } },
      { type: "content_block_delta", index: 0, delta: { type: "signature_delta", signature: "c2lnbmF0dXJl" } },
      { type: "content_block_stop", index: 0 },
      { type: "content_block_start", index: 1, content_block: redacted },
      { type: "content_block_stop", index: 1 },
      { type: "content_block_start", index: 2, content_block: { type: "text", text: "" } },
      { type: "content_block_delta", index: 2, delta: { type: "text_delta", text: "Hi" } },
      { type: "content_block_stop", index: 2 },
      { type: "message_delta", delta: { stop_reason: "end_turn" }, usage: { output_tokens: 5 } },
      { type: "message_stop" }
    ])
    expect((out[out.length - 1] as Message.Finish).reasoningState).toEqual(expected)
  })
})
