import { describe, expect, it } from "@effect/vitest"
import { EventParser } from "../../../../src/internal/providers/anthropic/stream.js"
import { maxStreamIndex } from "../../../../src/internal/providers/streamIndex.js"
import { Message } from "../../../../src/index.js"
import { runParser } from "../../../support/parserRun.js"

const parser = () => new EventParser("anthropic", "claude-x", Message.request("weather?"))
const start = { type: "message_start", message: { id: "msg_1", model: "claude-x", usage: { input_tokens: 5, output_tokens: 1 } } }
const toolStart = (index: unknown, id = "toolu_1", name = "get_weather") => ({
  type: "content_block_start",
  index,
  content_block: { type: "tool_use", id, name, input: {} }
})
const inputDelta = (index: unknown, partial_json: string) => ({ type: "content_block_delta", index, delta: { type: "input_json_delta", partial_json } })
const stop = (index: unknown) => ({ type: "content_block_stop", index })
const end = [{ type: "message_delta", delta: { stop_reason: "tool_use" }, usage: { output_tokens: 9 } }, { type: "message_stop" }]

describe("Anthropic stream: content blocks keyed by index", () => {
  it("a block index no honest server sends is a MalformedResponseError naming it, never a dropped block", () => {
    for (const index of [-1, 1.5, 4294967294, 4294967295, maxStreamIndex + 1, 1e300, "0", null]) {
      const run = runParser(parser(), [start, toolStart(index), inputDelta(index, "{\"city\":\"Paris\"}"), stop(index), ...end])
      expect(run.error?._tag, `index ${JSON.stringify(index)}`).toBe("MalformedResponseError")
      expect(run.error?.message).toContain("index")
      expect(run.finish).toBeUndefined()
    }
  })

  it("a start without an index is malformed: its tool call would be lost", () => {
    const { index: _, ...noIndex } = toolStart(0)
    const run = runParser(parser(), [start, noIndex, ...end])
    expect(run.error?._tag).toBe("MalformedResponseError")
  })

  it("a delta or stop for a block that never started is malformed: its input would be lost", () => {
    const delta = runParser(parser(), [start, toolStart(0), inputDelta(1, "{\"city\":\"Paris\"}"), stop(0), ...end])
    expect(delta.error?._tag).toBe("MalformedResponseError")
    expect(delta.error?.message).toContain("never started")
    const stopped = runParser(parser(), [start, toolStart(0), stop(3), ...end])
    expect(stopped.error?._tag).toBe("MalformedResponseError")
  })

  it("a block index started twice is malformed: the first block would be lost", () => {
    const run = runParser(parser(), [start, toolStart(0), toolStart(0, "toolu_2", "time"), ...end])
    expect(run.error?._tag).toBe("MalformedResponseError")
    expect(run.error?.message).toContain("started twice")
  })

  it("sparse indices up to the bound assemble, in the order the blocks closed", () => {
    const run = runParser(parser(), [
      start,
      toolStart(maxStreamIndex, "toolu_b", "time"),
      toolStart(2, "toolu_a", "get_weather"),
      inputDelta(2, "{\"city\":"),
      inputDelta(maxStreamIndex, "{}"),
      inputDelta(2, "\"Oslo\"}"),
      stop(2),
      stop(maxStreamIndex),
      ...end
    ])
    expect(run.error).toBeUndefined()
    expect(run.calls.map((c) => [c.id, c.name, c.arguments])).toEqual([
      ["toolu_a", "get_weather", "{\"city\":\"Oslo\"}"],
      ["toolu_b", "time", "{}"]
    ])
    expect(run.finish?.finishReason).toBe("tool_calls")
  })
})
