import { describe, expect, it } from "@effect/vitest"
import { ChunkParser } from "../../../../src/internal/providers/openaiChat/stream.js"
import { maxStreamIndex } from "../../../../src/internal/providers/streamIndex.js"
import { Message } from "../../../../src/index.js"
import { runParser } from "../../../support/parserRun.js"

const parser = () => new ChunkParser("openai", "gpt-x", Message.request("weather?"))
const calls = (fragments: ReadonlyArray<Record<string, unknown>>, finish: string | null = null) => ({
  id: "chatcmpl-1",
  choices: [{ index: 0, delta: { tool_calls: fragments }, finish_reason: finish }]
})
const end = (reason = "tool_calls") => ({ id: "chatcmpl-1", choices: [{ index: 0, delta: {}, finish_reason: reason }] })

/** One call sent in three fragments at `index`. */
const oneCallAt = (index: unknown) => [
  calls([{ index, id: "call_1", type: "function", function: { name: "get_weather", arguments: "" } }]),
  calls([{ index, function: { arguments: "{\"city\":" } }]),
  calls([{ index, function: { arguments: "\"Paris\"}" } }]),
  end(),
  "[DONE]"
]

describe("Chat Completions stream: tool calls keyed by index", () => {
  it("an index no honest server sends is a MalformedResponseError naming it, never a dropped call", () => {
    for (const index of [-1, 1.5, 4294967295, 20_000_000, maxStreamIndex + 1, 1e300, "0", true, { n: 0 }]) {
      const run = runParser(parser(), oneCallAt(index))
      expect(run.error?._tag, `index ${JSON.stringify(index)}`).toBe("MalformedResponseError")
      expect(run.error?.message).toContain("tool_calls[].index")
      expect(run.finish).toBeUndefined()
    }
  })

  it("index 4294967294 (the largest array index) fails at once instead of walking four billion slots", () => {
    const run = runParser(parser(), oneCallAt(4294967294))
    expect(run.error?._tag).toBe("MalformedResponseError")
  })

  it("sparse indices, the largest accepted among them, come out in index order with their own indices", () => {
    const run = runParser(parser(), [
      calls([{ index: maxStreamIndex, id: "call_b", function: { name: "time", arguments: "{}" } }]),
      calls([{ index: 3, id: "call_a", function: { name: "get_weather", arguments: "{\"city\":\"Oslo\"}" } }]),
      end(),
      "[DONE]"
    ])
    expect(run.error).toBeUndefined()
    expect(run.calls.map((c) => [c.index, c.id, c.name, c.arguments])).toEqual([
      [3, "call_a", "get_weather", "{\"city\":\"Oslo\"}"],
      [maxStreamIndex, "call_b", "time", "{}"]
    ])
    expect(run.finish?.finishReason).toBe("tool_calls")
  })

  it("calls that all come at index 0, each with its own id, stay apart; later fragments follow the last id at that index", () => {
    const run = runParser(parser(), [
      calls([{ index: 0, id: "call_a", function: { name: "a", arguments: "{\"x\":" } }]),
      calls([{ index: 0, function: { arguments: "1}" } }]),
      calls([{ index: 0, id: "call_b", function: { name: "b", arguments: "{}" } }]),
      calls([{ index: 1, id: "call_c", function: { name: "c", arguments: "{\"y\"" } }]),
      calls([{ index: 1, function: { arguments: ":2}" } }]),
      calls([{ index: 0, id: "call_b", function: { arguments: "" } }]),
      end(),
      "[DONE]"
    ])
    expect(run.error).toBeUndefined()
    expect(run.calls.map((c) => [c.id, c.name, c.arguments])).toEqual([["call_a", "a", "{\"x\":1}"], ["call_b", "b", "{}"], ["call_c", "c", "{\"y\":2}"]])
    expect(new Set(run.calls.map((c) => c.index)).size).toBe(3)
  })

  it("a missing or null index continues the last call, and a new id starts the next one", () => {
    const run = runParser(parser(), [
      calls([{ id: "call_a", function: { name: "a", arguments: "{\"x\":" } }]),
      calls([{ index: null, function: { arguments: "1}" } }]),
      calls([{ id: "call_b", function: { name: "b", arguments: "{}" } }]),
      end(),
      "[DONE]"
    ])
    expect(run.error).toBeUndefined()
    expect(run.calls.map((c) => [c.index, c.id, c.name, c.arguments])).toEqual([[0, "call_a", "a", "{\"x\":1}"], [1, "call_b", "b", "{}"]])
  })
})

describe("Chat Completions stream: function names", () => {
  it("a name repeated whole in every delta is the name once (MiniMax through NVIDIA NIM does this)", () => {
    const run = runParser(parser(), [
      calls([{ index: 0, id: "call_1", function: { name: "get_weather", arguments: "" } }]),
      calls([{ index: 0, function: { name: "get_weather", arguments: "{\"city\":" } }]),
      calls([{ index: 0, function: { name: "get_weather", arguments: "\"Paris\"}" } }]),
      end(),
      "[DONE]"
    ])
    expect(run.error).toBeUndefined()
    expect(run.calls.map((c) => [c.name, c.arguments])).toEqual([["get_weather", "{\"city\":\"Paris\"}"]])
    // the deltas carry the name once, so a consumer joining them gets it right too
    const names = run.events.flatMap((e) => (e._tag === "ToolCallDelta" && e.name !== undefined ? [e.name] : []))
    expect(names).toEqual(["get_weather"])
  })

  it("a name streamed in pieces is still joined", () => {
    const run = runParser(parser(), [
      calls([{ index: 0, id: "call_1", function: { name: "get_", arguments: "" } }]),
      calls([{ index: 0, function: { name: "weather", arguments: "{}" } }]),
      end(),
      "[DONE]"
    ])
    expect(run.calls.map((c) => c.name)).toEqual(["get_weather"])
  })
})
