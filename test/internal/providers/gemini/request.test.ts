import { describe, expect, it } from "@effect/vitest"
import { JSONSchema, Schema } from "effect"
import { toWireRequest } from "../../../../src/internal/providers/gemini/request.js"
import { fromWireResponse } from "../../../../src/internal/providers/gemini/response.js"
import { ChunkParser } from "../../../../src/internal/providers/gemini/stream.js"
import { LlmError, Message } from "../../../../src/index.js"

type Json = Record<string, any>
const body = (request: Message.ChatRequest): Json => {
  const out = toWireRequest(request, "gemini-3-flash")
  if (out instanceof LlmError.InvalidRequestError) throw new Error(out.message)
  return out
}
const Person = Schema.Struct({ name: Schema.String, pair: Schema.Tuple(Schema.String, Schema.Number) }).annotations({ identifier: "Person" })

describe("Gemini requests: schemas and thought signatures", () => {
  it("tool parameters and the response schema go in Gemini's JSON Schema subset", () => {
    const wire = body(Message.request("hi", {
      tools: [{ name: "who", parameters: JSONSchema.make(Person), strict: true }],
      responseFormat: { type: "json_schema", name: "person", schema: JSONSchema.make(Person) }
    }))
    const params = wire.tools[0].functionDeclarations[0].parametersJsonSchema
    expect(params.$schema).toBeUndefined()
    expect(params.$ref).toBeUndefined()
    expect(params.type).toBe("object")
    expect(params.properties.pair.prefixItems).toHaveLength(2)
    expect(wire.generationConfig.responseMimeType).toBe("application/json")
    expect(wire.generationConfig.responseJsonSchema).toEqual(params)
    expect(body(Message.request("hi", { responseFormat: { type: "json_object" } })).generationConfig).toEqual({ responseMimeType: "application/json" })
  })

  it("each signature goes back on its part: a call's by id, the text's on the text; other APIs' state is ignored", () => {
    const wire = body(Message.request([
      Message.user("q"),
      Message.assistant("Checking.", {
        toolCalls: [{ id: "c1", name: "f", arguments: "{}" }, { id: "c2", name: "g", arguments: "{}" }],
        reasoningState: [
          { api: "gemini", item: { thoughtSignature: "U0lHMg==", toolCallId: "c2" } },
          { api: "anthropic", item: { type: "thinking", thinking: "x", signature: "y" } },
          { api: "gemini", item: { thoughtSignature: "VEVYVA==" } }
        ]
      }),
      Message.tool("c1", "1"),
      Message.tool("c2", "2")
    ]))
    expect(wire.contents[1].parts).toEqual([
      { text: "Checking.", thoughtSignature: "VEVYVA==" },
      { functionCall: { id: "c1", name: "f", args: {} } },
      { functionCall: { id: "c2", name: "g", args: {} }, thoughtSignature: "U0lHMg==" }
    ])
  })
})

describe("Gemini replies: thought signatures as reasoning state", () => {
  const parts = [
    { functionCall: { name: "f", args: {} }, thoughtSignature: "U0lHMQ==" },
    { functionCall: { name: "g", args: { a: 1 } } }
  ]
  const expected = [{ api: "gemini", item: { thoughtSignature: "U0lHMQ==", toolCallId: "r1-call-0" } }]

  it("chat: the first parallel call's signature, tied to that call", () => {
    const response = fromWireResponse("gemini", "m", Message.request("q"), JSON.stringify({
      responseId: "r1",
      candidates: [{ content: { parts }, finishReason: "STOP" }]
    })) as Message.ChatResponse
    expect(response.reasoningState).toEqual(expected)
  })

  it("stream: the same, and a text signature on a closing empty part is kept for the text", () => {
    const parser = new ChunkParser("gemini", "m", Message.request("q"))
    const out: Array<Message.StreamEvent> = []
    const feed = (chunk: unknown) => expect(parser.onData(JSON.stringify(chunk), undefined, out)).toBeUndefined()
    feed({ responseId: "r1", candidates: [{ content: { parts: [{ text: "Hi" }] } }] })
    feed({ responseId: "r1", candidates: [{ content: { parts } }] })
    feed({ responseId: "r1", candidates: [{ content: { parts: [{ text: "", thoughtSignature: "VEVYVA==" }] }, finishReason: "STOP" }] })
    expect(parser.onEnd(out)).toBeUndefined()
    expect((out[out.length - 1] as Message.Finish).reasoningState).toEqual([...expected, { api: "gemini", item: { thoughtSignature: "VEVYVA==" } }])
  })
})
