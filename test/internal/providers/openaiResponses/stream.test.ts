import { describe, expect, it } from "@effect/vitest"
import { EventParser } from "../../../../src/internal/providers/openaiResponses/stream.js"
import { maxStreamIndex } from "../../../../src/internal/providers/streamIndex.js"
import { Message } from "../../../../src/index.js"
import { runParser } from "../../../support/parserRun.js"

const parser = () => new EventParser("openai", "gpt-x", Message.request("weather?"))
const created = { type: "response.created", response: { id: "resp_1", model: "gpt-x" } }
const fnItem = (callId: string, name: string, args = "") => ({ type: "function_call", id: `fc_${callId}`, call_id: callId, name, arguments: args })
const added = (output_index: unknown, callId = "call_1", name = "get_weather") => ({
  type: "response.output_item.added",
  output_index,
  item: fnItem(callId, name)
})
const argsDelta = (output_index: unknown, delta: string) => ({ type: "response.function_call_arguments.delta", output_index, delta })
const itemDone = (output_index: unknown, callId: string, name: string, args: string) => ({
  type: "response.output_item.done",
  output_index,
  item: fnItem(callId, name, args)
})
const completed = { type: "response.completed", response: { id: "resp_1", status: "completed", usage: { input_tokens: 3, output_tokens: 4, total_tokens: 7 } } }

describe("Responses stream: items keyed by output_index", () => {
  it("an output_index no honest server sends is a MalformedResponseError naming it, never a dropped call", () => {
    for (const index of [-1, 1.5, 4294967294, 4294967295, maxStreamIndex + 1, 1e300, "0", true]) {
      const run = runParser(parser(), [
        created,
        added(index),
        argsDelta(index, "{\"city\":\"Paris\"}"),
        itemDone(index, "call_1", "get_weather", "{\"city\":\"Paris\"}"),
        completed
      ])
      expect(run.error?._tag, `output_index ${JSON.stringify(index)}`).toBe("MalformedResponseError")
      expect(run.error?.message).toContain("output_index")
      expect(run.finish).toBeUndefined()
    }
  })

  it("a content_index or summary_index no honest server sends is malformed too", () => {
    for (const field of ["content_index", "summary_index"]) {
      const run = runParser(parser(), [created, { type: "response.reasoning_summary_text.delta", output_index: 0, [field]: -3, delta: "hm" }, completed])
      expect(run.error?._tag, field).toBe("MalformedResponseError")
      expect(run.error?.message).toContain(field)
    }
  })

  it("arguments for an item that never started are malformed: they would be lost", () => {
    const run = runParser(parser(), [created, added(0), argsDelta(1, "{\"city\":\"Paris\"}"), completed])
    expect(run.error?._tag).toBe("MalformedResponseError")
    expect(run.error?.message).toContain("never started")
  })

  it("an output_index started twice is malformed: the first call would be lost", () => {
    const run = runParser(parser(), [created, added(0), added(0, "call_2", "time"), completed])
    expect(run.error?._tag).toBe("MalformedResponseError")
    expect(run.error?.message).toContain("started twice")
  })

  it("a function call whose output_item.added never came is taken from its output_item.done", () => {
    const run = runParser(parser(), [created, itemDone(0, "call_1", "get_weather", "{\"city\":\"Paris\"}"), completed])
    expect(run.error).toBeUndefined()
    expect(run.calls.map((c) => [c.index, c.id, c.name, c.arguments])).toEqual([[0, "call_1", "get_weather", "{\"city\":\"Paris\"}"]])
    expect(run.finish?.finishReason).toBe("tool_calls")
  })

  it("sparse output indices up to the bound assemble", () => {
    const run = runParser(parser(), [
      created,
      added(maxStreamIndex, "call_b", "time"),
      added(4, "call_a", "get_weather"),
      argsDelta(4, "{\"city\":"),
      argsDelta(maxStreamIndex, "{}"),
      argsDelta(4, "\"Oslo\"}"),
      completed
    ])
    expect(run.error).toBeUndefined()
    expect(run.calls.map((c) => [c.index, c.id, c.name, c.arguments])).toEqual([
      [0, "call_b", "time", "{}"],
      [1, "call_a", "get_weather", "{\"city\":\"Oslo\"}"]
    ])
  })
})
