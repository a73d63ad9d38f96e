import { describe, expect, it } from "@effect/vitest"
import { ChunkParser } from "../../../../src/internal/providers/gemini/stream.js"
import { Message } from "../../../../src/index.js"

describe("Gemini stream chunks", () => {
  it("assembles Vertex partialArgs at nested paths, numbers, and strings in pieces", () => {
    const parser = new ChunkParser("gemini", "m", Message.request("x"))
    const out: Array<Message.StreamEvent> = []
    const feed = (chunk: unknown) => expect(parser.onData(JSON.stringify(chunk), undefined, out)).toBeUndefined()
    const call = (functionCall: unknown, finishReason?: string) => ({
      candidates: [{ content: { parts: [{ functionCall }] }, ...(finishReason ? { finishReason } : {}) }],
      responseId: "r1"
    })
    feed(call({ name: "book", willContinue: true }))
    feed(call({ partialArgs: [{ jsonPath: "$.trip.city", stringValue: "New ", willContinue: true }], willContinue: true }))
    feed(call({ partialArgs: [{ jsonPath: "$.trip.city", stringValue: "York" }, { jsonPath: "$.seats", numberValue: 2 }], willContinue: true }))
    feed(call({ partialArgs: [{ jsonPath: "$.tags[1]", stringValue: "b" }, { jsonPath: "$.tags[0]", stringValue: "a" }, { jsonPath: "$.vip", boolValue: true }], willContinue: true }))
    feed(call({}))
    feed(call({ name: "pay", args: { amount: 5 } }, "STOP"))
    expect(parser.onEnd(out)).toBeUndefined()
    const calls = out.filter((e): e is Message.ToolCallComplete => e._tag === "ToolCall")
    expect(calls.map((c) => [c.id, c.name, JSON.parse(c.arguments)])).toEqual([
      ["r1-call-0", "book", { trip: { city: "New York" }, seats: 2, tags: ["a", "b"], vip: true }],
      ["r1-call-1", "pay", { amount: 5 }]
    ])
    // the deltas of each call concatenate to its arguments
    for (const c of calls) {
      const text = out.filter((e): e is Message.ToolCallDelta => e._tag === "ToolCallDelta" && e.index === c.index).map((e) => e.argumentsDelta).join("")
      expect(text).toBe(c.arguments)
    }
    const finish = out[out.length - 1] as Message.Finish
    expect(finish.finishReason).toBe("tool_calls")
    expect(finish.usage.estimated).toBe(true)
  })
})
