/**
 * Conformance on recorded multi-turn traffic (fixtures/multi-turn, pydantic-ai cassettes): the
 * recorded reply is decoded (or its stream parsed), the next turn is built from the transcript
 * with `Message.fromResponse`, and the parts that make the next turn valid are compared with
 * the request that was recorded: thinking blocks and signatures, thought signatures, reasoning
 * items, tool calls and results, and the native output format fields.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Stream } from "effect"
import { join } from "node:path"
import { parse } from "yaml"
import * as anthropicRequest from "../../src/internal/providers/anthropic/request.js"
import * as anthropicResponse from "../../src/internal/providers/anthropic/response.js"
import * as geminiRequest from "../../src/internal/providers/gemini/request.js"
import * as geminiResponse from "../../src/internal/providers/gemini/response.js"
import { ChunkParser } from "../../src/internal/providers/gemini/stream.js"
import * as chatRequest from "../../src/internal/providers/openaiChat/request.js"
import * as chatResponse from "../../src/internal/providers/openaiChat/response.js"
import * as responsesRequest from "../../src/internal/providers/openaiResponses/request.js"
import * as responsesResponse from "../../src/internal/providers/openaiResponses/response.js"
import { EventParser as ResponsesParser } from "../../src/internal/providers/openaiResponses/stream.js"
import { LanguageModel, LlmError, Message } from "../../src/index.js"
import type { StreamParser } from "../../src/Provider.js"
import { hasFixtures, readFixture } from "../support/fixtures.js"

type Json = Record<string, any>
interface Interaction {
  readonly request: { readonly parsed_body: Json }
  readonly response: { readonly parsed_body?: Json; readonly body?: { readonly string?: string } }
}

const cassette = (dir: string, file: string): Array<Interaction> =>
  (parse(readFixture(join("multi-turn", dir, file))) as { interactions: Array<Interaction> }).interactions

const replyBody = (interaction: Interaction): string => JSON.stringify(interaction.response.parsed_body)

const ok = <A>(value: A): Exclude<A, LlmError.LlmError> => {
  if (LlmError.isLlmError(value)) throw new Error(`${value._tag}: ${value.message}`)
  return value as Exclude<A, LlmError.LlmError>
}

/** A recorded SSE body through a parser, collected as `stream` + `collect` would. */
const parseStream = (parser: StreamParser, body: string): Promise<Message.ChatResponse> => {
  const out: Array<Message.StreamEvent> = []
  for (const block of body.split(/\r?\n\r?\n/)) {
    let event: string | undefined
    const data: Array<string> = []
    for (const line of block.split(/\r?\n/)) {
      if (line.startsWith("event:")) event = line.slice(6).trim()
      else if (line.startsWith("data:")) data.push(line.slice(5).trimStart())
    }
    if (data.length === 0) continue
    const error = parser.onData(data.join("\n"), event, out)
    if (error !== undefined) throw new Error(error.message)
  }
  const end = parser.onEnd(out)
  if (end !== undefined) throw new Error(end.message)
  return Effect.runPromise(LanguageModel.collect(Stream.fromIterable(out)))
}

/** Signatures are bytes: the google-genai SDK re-encodes them URL-safe, the JSON API takes either. */
const base64 = (s: string) => s.replace(/-/g, "+").replace(/_/g, "/")

describe.skipIf(!hasFixtures)("multi-turn: the next turn sends back what the API needs", () => {
  it("Anthropic: thinking with its signature, then text, then tool_use, before the tool_result (claude-sonnet-4-0)", () => {
    const [first, second] = cassette("anthropic", "test_anthropic_tool_with_thinking.yaml")
    const recorded = first!.request.parsed_body
    const tool = recorded.tools[0]
    const request = Message.request(recorded.messages[0].content[0].text, {
      tools: [{ name: tool.name, description: tool.description, parameters: tool.input_schema }],
      reasoningEffort: "low"
    })
    const response = ok(anthropicResponse.fromWireResponse("anthropic", "m", request, replyBody(first!)))
    expect(response.reasoningState).toEqual([{ api: "anthropic", item: first!.response.parsed_body!.content[0] }])
    const next = Message.request([...request.messages, Message.fromResponse(response), Message.tool(response.toolCalls[0]!.id, "Mexico")], {
      tools: request.tools!,
      reasoningEffort: "low"
    })
    const body = ok(anthropicRequest.toWireRequest(next, "claude-sonnet-4-0", false)) as Json
    const expected = second!.request.parsed_body.messages
    // the assistant turn goes back unchanged, in order: thinking + signature, text, tool_use
    expect(body.messages[1]).toEqual(expected[1])
    const { is_error: _, ...result } = expected[2].content[0]
    expect(body.messages[2]).toEqual({ role: "user", content: [result] })
    expect(body.tools).toEqual(recorded.tools)
  })

  it("Anthropic: a tool_use carrying `caller` goes back without it, and a native-format text reply is the JSON text", () => {
    const [first, second] = cassette("anthropic", "test_strict_true_tool_native_output.yaml")
    const recorded = first!.request.parsed_body
    const tool = recorded.tools[0]
    const request = Message.request(recorded.messages[0].content[0].text, {
      tools: [{ name: tool.name, description: tool.description, parameters: tool.input_schema }]
    })
    const response = ok(anthropicResponse.fromWireResponse("anthropic", "m", request, replyBody(first!)))
    const next = Message.request([...request.messages, Message.fromResponse(response), Message.tool(response.toolCalls[0]!.id, "France")], {
      tools: request.tools!
    })
    const body = ok(anthropicRequest.toWireRequest(next, "claude-sonnet-4-5", false)) as Json
    expect(body.messages[1]).toEqual(second!.request.parsed_body.messages[1])
    expect(body.messages[2].content[0].tool_use_id).toBe(second!.request.parsed_body.messages[2].content[0].tool_use_id)
    // the reply through output_config.format is plain text, read as the JSON reply
    const format = recorded.output_config.format
    const withFormat = Message.request("x", { responseFormat: { type: "json_schema", name: "out", schema: format.schema }, reasoningEffort: "low" })
    const final = ok(anthropicResponse.fromWireResponse("anthropic", "m", withFormat, replyBody(second!)))
    expect(JSON.parse(final.text)).toEqual({ city: "Paris", country: "France", population: 2161000 })
    expect(final.finishReason).toBe("stop")
    // with thinking on, the format goes as output_config.format, as recorded
    expect((ok(anthropicRequest.toWireRequest(withFormat, "m", false)) as Json).output_config).toEqual({ format })
  })

  it("Gemini (stream): the function call's thought signature goes back on that call's part (gemini-3-pro-preview)", async () => {
    const [first, second] = cassette("gemini", "test_google_streaming_tool_call_thought_signature.yaml")
    const recorded = first!.request.parsed_body
    const fn = recorded.tools[0].functionDeclarations[0]
    const request = Message.request(recorded.contents[0].parts[0].text, {
      tools: [{ name: fn.name, description: fn.description, parameters: fn.parameters_json_schema }]
    })
    const response = await parseStream(new ChunkParser("gemini", "m", request), first!.response.body!.string!)
    expect(response.toolCalls.map((c) => c.name)).toEqual(["get_country"])
    const call = response.toolCalls[0]!
    const next = Message.request([...request.messages, Message.fromResponse(response), Message.tool(call.id, `{"return_value":"Mexico"}`)], {
      tools: request.tools!
    })
    const body = ok(geminiRequest.toWireRequest(next, "gemini-3-pro-preview")) as Json
    const expected = second!.request.parsed_body.contents
    const model = body.contents[1]
    expect(model.role).toBe("model")
    expect(model.parts).toHaveLength(1)
    expect(base64(model.parts[0].thoughtSignature)).toBe(base64(expected[1].parts[0].thoughtSignature))
    const { id: _, ...recordedCall } = expected[1].parts[0].functionCall
    expect(model.parts[0].functionCall).toMatchObject(recordedCall)
    const { id: __, ...recordedResult } = expected[2].parts[0].functionResponse
    expect(body.contents[2].parts[0].functionResponse).toMatchObject(recordedResult)
    // the ids pair: the call's id and its result's
    expect(body.contents[2].parts[0].functionResponse.id).toBe(model.parts[0].functionCall.id)
    expect(body.tools[0].functionDeclarations[0].parametersJsonSchema).toEqual(fn.parameters_json_schema)
  })

  it("Gemini: signature and Gemini's own call id go back; responseJsonSchema as recorded; a JSON text reply with its own signature (gemini-3-flash-preview)", () => {
    const [first, second] = cassette("gemini", "test_native_output_with_function_tools.yaml")
    const recorded = first!.request.parsed_body
    const fn = recorded.tools[0].functionDeclarations[0]
    const responseFormat = { type: "json_schema" as const, name: "CityLocation", schema: recorded.generationConfig.responseJsonSchema }
    const request = Message.request(recorded.contents[0].parts[0].text, {
      tools: [{ name: fn.name, description: fn.description, parameters: fn.parameters_json_schema }],
      responseFormat
    })
    const response = ok(geminiResponse.fromWireResponse("gemini", "m", request, replyBody(first!)))
    const call = response.toolCalls[0]!
    expect(call.id).toBe("w71i0cbt")
    const next = Message.request([...request.messages, Message.fromResponse(response), Message.tool(call.id, `{"return_value":"Mexico"}`)], {
      tools: request.tools!,
      responseFormat
    })
    const body = ok(geminiRequest.toWireRequest(next, "gemini-3-flash-preview")) as Json
    const expected = second!.request.parsed_body
    const part = body.contents[1].parts[0]
    expect(part.functionCall).toEqual(expected.contents[1].parts[0].functionCall)
    expect(base64(part.thoughtSignature)).toBe(base64(expected.contents[1].parts[0].thoughtSignature))
    expect(body.contents[2]).toEqual(expected.contents[2])
    expect(body.generationConfig.responseMimeType).toBe("application/json")
    expect(body.generationConfig.responseJsonSchema).toEqual(expected.generationConfig.responseJsonSchema)
    const final = ok(geminiResponse.fromWireResponse("gemini", "m", next, replyBody(second!)))
    expect(JSON.parse(final.text)).toEqual({ city: "Mexico City", country: "Mexico" })
    // a text part's signature is kept for the text
    expect(final.reasoningState).toEqual([{ api: "gemini", item: { thoughtSignature: second!.response.parsed_body!.candidates[0].content.parts[0].thoughtSignature } }])
  })

  it("Responses: the reasoning item with its encrypted content goes back before the call; include asks for it (gpt-5.5)", () => {
    const [first, second] = cassette("openai-responses", "test_openai_responses_phase_live.yaml")
    const recorded = first!.request.parsed_body
    const tool = recorded.tools[0]
    const request = Message.request([Message.system(recorded.instructions), Message.user(recorded.input[0].content)], {
      tools: [{ name: tool.name, parameters: tool.parameters, strict: true }],
      reasoningEffort: "medium"
    })
    const first1 = responsesRequest.toWireRequest(request, "gpt-5.5", false)
    expect(first1.include).toEqual(recorded.include)
    expect(first1.tools).toEqual([{ type: "function", name: tool.name, parameters: tool.parameters, strict: true }])
    const response = ok(responsesResponse.fromWireResponse("openai", "m", request, replyBody(first!)))
    const call = response.toolCalls[0]!
    const next = Message.request([...request.messages, Message.fromResponse(response), Message.tool(call.id, "Potato City")], {
      tools: request.tools!,
      reasoningEffort: "medium"
    })
    const input = responsesRequest.toWireRequest(next, "gpt-5.5", false).input as Array<Json>
    const expected = second!.request.parsed_body.input as Array<Json>
    expect(input[1]).toEqual(expected[1]) // the reasoning item: id, summary, encrypted_content
    const { id: _, ...recordedCall } = expected[3]!
    expect(input.find((i) => i.type === "function_call")).toEqual(recordedCall)
    expect(input[input.length - 1]).toEqual(expected[4])
    // the order: reasoning, then the turn's text, then its call
    expect(input.map((i) => i.type ?? i.role)).toEqual(["user", "reasoning", "assistant", "function_call", "function_call_output"])
  })

  it("Responses (stream): the reasoning item sent back is output_item.done's, with its encrypted content", async () => {
    const [first, second] = cassette("openai-responses", "test_openai_responses_phase_streamed_on_part_start.yaml")
    const recorded = first!.request.parsed_body
    const tool = recorded.tools[0]
    const request = Message.request([Message.system(recorded.instructions), Message.user(recorded.input[0].content)], {
      tools: [{ name: tool.name, parameters: tool.parameters, strict: true }],
      reasoningEffort: "medium"
    })
    const response = await parseStream(new ResponsesParser("openai", "m", request), first!.response.body!.string!)
    const call = response.toolCalls[0]!
    const next = Message.request([...request.messages, Message.fromResponse(response), Message.tool(call.id, "Potato City")], {
      tools: request.tools!,
      reasoningEffort: "medium"
    })
    const input = responsesRequest.toWireRequest(next, "gpt-5.5", true).input as Array<Json>
    const expected = second!.request.parsed_body.input as Array<Json>
    expect(input[1]).toEqual(expected.find((i) => i.type === "reasoning"))
    expect(input[input.length - 1]).toEqual(expected[expected.length - 1])
  })

  it("Responses: text.format json_schema strict, as recorded, and the JSON reply is the text (gpt-4o)", () => {
    const [first, second] = cassette("openai-responses", "test_native_output.yaml")
    const recorded = first!.request.parsed_body
    const format = recorded.text.format
    const tool = recorded.tools[0]
    const request = Message.request(recorded.input[0].content, {
      tools: [{ name: tool.name, description: tool.description, parameters: tool.parameters }],
      responseFormat: { type: "json_schema", name: format.name, schema: format.schema, strict: true }
    })
    const body = responsesRequest.toWireRequest(request, "gpt-4o", false)
    expect(body.text).toEqual(recorded.text)
    expect(body.tools).toEqual(recorded.tools)
    const response = ok(responsesResponse.fromWireResponse("openai", "m", request, replyBody(first!)))
    const next = Message.request([...request.messages, Message.fromResponse(response), Message.tool(response.toolCalls[0]!.id, "Mexico")], {
      tools: request.tools!,
      responseFormat: request.responseFormat!
    })
    const input = responsesRequest.toWireRequest(next, "gpt-4o", false).input as Array<Json>
    const expected = second!.request.parsed_body.input as Array<Json>
    // pydantic-ai's empty assistant message aside, the call and its output as recorded
    expect(input.filter((i) => i.type !== undefined)).toEqual(expected.filter((i) => i.type !== undefined))
    const final = ok(responsesResponse.fromWireResponse("openai", "m", next, replyBody(second!)))
    expect(JSON.parse(final.text)).toEqual({ city: "Mexico City", country: "Mexico" })
  })

  it("Chat Completions: two parallel calls go back in one assistant message, their results in order; strict tools as recorded (gpt-4o)", () => {
    const [first, second] = cassette("openai-chat", "test_temporal_agent_with_hitl_tool.yaml")
    const recorded = first!.request.parsed_body
    const request = Message.request(
      [Message.system(recorded.messages[0].content), Message.user(recorded.messages[1].content)],
      { tools: recorded.tools.map((t: Json) => ({ name: t.function.name, description: t.function.description, parameters: t.function.parameters, strict: true })), toolChoice: "auto" }
    )
    const body = chatRequest.toWireRequest(request, "gpt-4o", false)
    expect(body.tools).toEqual(recorded.tools)
    const response = ok(chatResponse.fromWireResponse("openai", "m", request, replyBody(first!)))
    expect(response.toolCalls).toHaveLength(2)
    const [a, b] = response.toolCalls
    const next = Message.request([...request.messages, Message.fromResponse(response), Message.tool(a!.id, "true"), Message.tool(b!.id, "Success")], {
      tools: request.tools!,
      toolChoice: "auto"
    })
    expect(chatRequest.toWireRequest(next, "gpt-4o", false).messages).toEqual(second!.request.parsed_body.messages)
  })

  it("Chat Completions: response_format json_schema with strict false as recorded, and the JSON reply (gpt-4o)", () => {
    const [first, second] = cassette("openai-chat", "test_openai_native_output.yaml")
    const recorded = first!.request.parsed_body
    const js = recorded.response_format.json_schema
    const request = Message.request(recorded.messages[0].content, {
      responseFormat: { type: "json_schema", name: js.name, schema: js.schema, strict: false }
    })
    expect(chatRequest.toWireRequest(request, "gpt-4o", false).response_format).toEqual(recorded.response_format)
    const final = ok(chatResponse.fromWireResponse("openai", "m", request, replyBody(second!)))
    expect(JSON.parse(final.text)).toEqual({ city: "Mexico City", country: "Mexico" })
  })

  it("Chat Completions (Groq): response_format json_schema strict true with a description, as recorded", () => {
    const [first] = cassette("openai-compatible", "test_groq_native_output.yaml")
    const recorded = first!.request.parsed_body
    const js = recorded.response_format.json_schema
    const request = Message.request(recorded.messages[0].content, {
      responseFormat: { type: "json_schema", name: js.name, description: js.description, schema: js.schema, strict: true }
    })
    expect(chatRequest.toWireRequest(request, "m", false).response_format).toEqual(recorded.response_format)
    const final = ok(chatResponse.fromWireResponse("groq", "m", request, replyBody(first!)))
    expect(JSON.parse(final.text)).toEqual({ city: "Mexico City", country: "Mexico" })
  })
})
