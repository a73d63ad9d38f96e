import { describe, expect, it } from "@effect/vitest"
import { ChunkParser } from "../../../../src/internal/providers/gemini/stream.js"
import { maxStreamIndex } from "../../../../src/internal/providers/streamIndex.js"
import { Message } from "../../../../src/index.js"
import { runParser } from "../../../support/parserRun.js"

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

describe("Gemini stream: streamed argument paths and names", () => {
  const parser = () => new ChunkParser("gemini", "m", Message.request("x"))
  const call = (functionCall: unknown, finishReason?: string) => ({
    candidates: [{ content: { parts: [{ functionCall }] }, ...(finishReason ? { finishReason } : {}) }],
    responseId: "r1"
  })
  /** A streamed call with one partial argument at `jsonPath`. */
  const streamed = (...partialArgs: ReadonlyArray<Record<string, unknown>>) => [
    call({ name: "book", willContinue: true }),
    call({ partialArgs, willContinue: true }),
    call({}, "STOP")
  ]

  it("an array index no honest server sends is a MalformedResponseError, never an array walked slot by slot", () => {
    for (const path of ["$.tags[4294967294]", "$.tags[20000000]", `$.tags[${maxStreamIndex + 1}]`, "$.tags[99999999999999999999]"]) {
      const run = runParser(parser(), streamed({ jsonPath: path, stringValue: "a" }))
      expect(run.error?._tag, path).toBe("MalformedResponseError")
      expect(run.finish).toBeUndefined()
    }
  })

  it("a path that cannot be read, a name on an array, an index into an object or a partial without a value is malformed, never dropped", () => {
    const cases: ReadonlyArray<ReadonlyArray<Record<string, unknown>>> = [
      [{ jsonPath: "$.tags[-1]", stringValue: "a" }],
      [{ jsonPath: "$.tags[1.5]", stringValue: "a" }],
      [{ jsonPath: "tags", stringValue: "a" }],
      [{ jsonPath: "$", stringValue: "a" }],
      [{ jsonPath: "$.tags[0]", stringValue: "a" }, { jsonPath: "$.tags.length", numberValue: 4294967295 }],
      [{ jsonPath: "$.trip.city", stringValue: "a" }, { jsonPath: "$.trip[0]", stringValue: "b" }],
      [{ jsonPath: "$.seats" }],
      [{ stringValue: "a" }]
    ]
    for (const partials of cases) {
      const run = runParser(parser(), streamed(...partials))
      expect(run.error?._tag, JSON.stringify(partials)).toBe("MalformedResponseError")
      expect(run.finish).toBeUndefined()
    }
  })

  it("a __proto__ key in a path is the arguments' own key, not a prototype (nothing outside the call changes)", () => {
    const run = runParser(parser(), streamed({ jsonPath: "$.__proto__.polluted", stringValue: "yes" }, { jsonPath: "$.constructor", stringValue: "c" }))
    expect(run.error).toBeUndefined()
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
    expect(run.calls.map((c) => c.arguments)).toEqual(["{\"__proto__\":{\"polluted\":\"yes\"},\"constructor\":\"c\"}"])
    // and so for whole args merged into a streamed call
    const merged = runParser(parser(), [
      call({ name: "book", willContinue: true }),
      call({ args: JSON.parse("{\"__proto__\":{\"x\":1}}"), willContinue: true }),
      call({}, "STOP")
    ])
    expect(merged.calls.map((c) => c.arguments)).toEqual(["{\"__proto__\":{\"x\":1}}"])
  })

  it("a name repeated in every chunk of a streamed call continues it, a different name starts the next", () => {
    const run = runParser(parser(), [
      call({ name: "book", willContinue: true }),
      call({ name: "book", partialArgs: [{ jsonPath: "$.city", stringValue: "Paris" }], willContinue: true }),
      call({ name: "book", partialArgs: [{ jsonPath: "$.seats", numberValue: 2 }], willContinue: true }),
      call({ name: "pay", willContinue: true }),
      call({ name: "pay", partialArgs: [{ jsonPath: "$.amount", numberValue: 5 }] }, "STOP")
    ])
    expect(run.error).toBeUndefined()
    expect(run.calls.map((c) => [c.index, c.name, JSON.parse(c.arguments)])).toEqual([
      [0, "book", { city: "Paris", seats: 2 }],
      [1, "pay", { amount: 5 }]
    ])
  })
})
