import { Effect, JSONSchema, Schema, Stream } from "effect"
import { describe, expect, it } from "vitest"
import { LanguageModel, Message } from "../src/index.js"

const Person = Schema.Struct({ name: Schema.String, age: Schema.Number })

describe("Message", () => {
  it("takes JSONSchema.make output as a tool's parameters and a response format's schema, without a cast", () => {
    // typechecked by `npm test`: these assignments fail to compile if JsonSchema7Root is refused
    const schema = JSONSchema.make(Person)
    const request = Message.request("hi", {
      tools: [{ name: "person", parameters: schema }],
      responseFormat: { type: "json_schema", name: "person", schema }
    })
    expect(Schema.decodeUnknownSync(Message.ChatRequest)(request)).toEqual(request)
    expect(() => Schema.decodeUnknownSync(Message.ToolDefinition)({ name: "x", parameters: [] })).toThrow(/\["parameters"\][\s\S]*Expected JsonSchema/)
  })

  it("fromResponse carries text, tool calls, reasoning and reasoning state into the next turn", async () => {
    const response: Message.ChatResponse = {
      id: "r1",
      model: "m",
      provider: "p",
      text: "",
      reasoning: "thinking",
      reasoningState: [{ api: "anthropic", item: { type: "thinking", thinking: "thinking", signature: "sig" } }],
      toolCalls: [{ id: "c1", name: "get", arguments: "{}" }],
      finishReason: "tool_calls",
      usage: { inputTokens: 1, outputTokens: 1, totalTokens: 2, estimated: false }
    }
    expect(Message.fromResponse(response)).toEqual({
      role: "assistant",
      content: "",
      toolCalls: response.toolCalls,
      reasoning: "thinking",
      reasoningState: response.reasoningState
    })
    expect(Message.fromResponse({ ...response, reasoning: undefined, reasoningState: [], toolCalls: [] })).toEqual({
      role: "assistant",
      content: ""
    })
    // a stream of the response folds back to it, reasoning state included
    const back = await Effect.runPromise(LanguageModel.collect(Stream.fromIterable(LanguageModel.responseToEvents(response))))
    expect(back).toEqual(response)
  })
})
