/**
 * Every wire format's stream assembler against hostile index fields and names: arbitrary
 * integers, floats, huge values and non-numbers where an index goes, and names repeated
 * within a call and across calls. Each run ends with a Finish carrying exactly the calls
 * sent, or with a MalformedResponseError when an index is one no honest server sends;
 * never a throw, a hang or a call dropped in silence.
 */
import { describe, expect, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import { EventParser as AnthropicParser } from "../../../src/internal/providers/anthropic/stream.js"
import { ChunkParser as GeminiParser } from "../../../src/internal/providers/gemini/stream.js"
import { ChunkParser as OllamaParser } from "../../../src/internal/providers/ollama/stream.js"
import { ChunkParser as ChatParser } from "../../../src/internal/providers/openaiChat/stream.js"
import { EventParser as ResponsesParser } from "../../../src/internal/providers/openaiResponses/stream.js"
import { maxStreamIndex } from "../../../src/internal/providers/streamIndex.js"
import { Message } from "../../../src/index.js"
import { type ParserRun, runParser } from "../../support/parserRun.js"

/** What the specification allows, written out here rather than taken from the parsers. */
const honest = (index: unknown): boolean => typeof index === "number" && Number.isInteger(index) && index >= 0 && index <= maxStreamIndex

/** Index fields as hostile servers fill them. JSON has no NaN or Infinity, so neither is sent. */
const anyIndex: fc.Arbitrary<unknown> = fc.oneof(
  { arbitrary: fc.nat({ max: 8 }), weight: 4 },
  { arbitrary: fc.integer({ min: 0, max: maxStreamIndex }), weight: 1 },
  { arbitrary: fc.integer({ min: -1_000_000, max: -1 }), weight: 1 },
  { arbitrary: fc.double({ noNaN: true, noDefaultInfinity: true }), weight: 2 },
  { arbitrary: fc.constantFrom(4294967294, 4294967295, 20_000_000, maxStreamIndex + 1, Number.MAX_SAFE_INTEGER, 2 ** 53 + 2, 1e300, -0, 0.5), weight: 2 },
  { arbitrary: fc.constantFrom<unknown>("0", "1", true, [0], { i: 0 }), weight: 1 }
)

/** Names drawn from a small pool, so that several calls of one reply often share one. */
const name = fc.oneof(fc.constantFrom("get_weather", "search", "a", "lookup_order"), fc.stringMatching(/^[a-z][a-z_]{0,11}$/))
const args = fc.dictionary(fc.stringMatching(/^[a-z]{1,5}$/), fc.oneof(fc.string({ maxLength: 8 }), fc.integer(), fc.boolean()), { maxKeys: 3 })

interface Call {
  readonly index: unknown
  readonly id: string
  readonly name: string
  /** How the name travels in a format that streams it: in the first fragment, in every one, or in pieces. */
  readonly naming: "once" | "every" | "pieces"
  readonly args: Record<string, unknown>
  /** The arguments' JSON text, cut into fragments. */
  readonly fragments: ReadonlyArray<string>
}

const cut = (text: string, cuts: ReadonlyArray<number>): Array<string> => {
  const points = [...new Set(cuts.map((c) => c % (text.length + 1)))].sort((a, b) => a - b)
  const out: Array<string> = []
  let from = 0
  for (const p of points) {
    out.push(text.slice(from, p))
    from = p
  }
  out.push(text.slice(from))
  return out
}

const calls = (indexField: fc.Arbitrary<unknown>) =>
  fc.uniqueArray(
    fc.record({ index: indexField, name, naming: fc.constantFrom("once", "every", "pieces"), args, cuts: fc.array(fc.nat(), { maxLength: 3 }) }),
    { minLength: 1, maxLength: 4, selector: (c) => JSON.stringify(c.index) }
  ).map((drawn) =>
    drawn.map((c, i): Call => ({
      index: c.index,
      id: `call_${i}`,
      name: c.name,
      naming: c.naming as Call["naming"],
      args: c.args,
      fragments: cut(JSON.stringify(c.args), c.cuts)
    }))
  )

/** The fragments of every call, taken in turn: calls of one reply stream in parallel. */
const interleaved = <A>(perCall: ReadonlyArray<ReadonlyArray<A>>): Array<A> => {
  const out: Array<A> = []
  for (let i = 0; perCall.some((frames) => i < frames.length); i++) for (const frames of perCall) if (i < frames.length) out.push(frames[i]!)
  return out
}

/** The name's pieces: two, neither equal to the name so far (which would read as a repeat). */
const namePieces = (full: string): Array<string> => {
  const half = Math.ceil(full.length / 2)
  const pieces = [full.slice(0, half), full.slice(half)].filter((p) => p.length > 0)
  return pieces.length === 2 && pieces[1] === pieces[0] ? [full] : pieces
}

const expectOutcome = (run: ParserRun, sent: ReadonlyArray<Call>, allHonest: boolean, order: ReadonlyArray<Call>) => {
  if (!allHonest) {
    expect(run.error?._tag).toBe("MalformedResponseError")
    expect(run.finish).toBeUndefined()
    return
  }
  expect(run.error).toBeUndefined()
  expect(run.finish?.finishReason).toBe("tool_calls")
  expect(run.calls.map((c) => ({ id: c.id, name: c.name, args: JSON.parse(c.arguments) }))).toEqual(
    order.map((c) => ({ id: c.id, name: c.name, args: c.args }))
  )
  expect(run.calls).toHaveLength(sent.length)
}

const request = Message.request("go")

describe("stream assemblers against hostile indices and names (property)", () => {
  it("Chat Completions: tool_calls[].index", () =>
    fc.assert(
      fc.property(calls(anyIndex), (sent) => {
        const frames = interleaved(sent.map((call) => {
          const pieces = namePieces(call.name)
          return call.fragments.map((fragment, j) => {
            const fn: Record<string, unknown> = { arguments: fragment }
            if (call.naming === "every" || j === 0) fn.name = call.name
            if (call.naming === "pieces") {
              if (j < pieces.length) fn.name = pieces[j]
              else delete fn.name
            }
            const piece: Record<string, unknown> = { index: call.index, function: fn }
            if (j === 0) piece.id = call.id
            return { id: "chatcmpl-1", choices: [{ index: 0, delta: { tool_calls: [piece] }, finish_reason: null }] }
          }).concat(
            // a name in more pieces than the arguments have fragments
            call.naming === "pieces" && pieces.length > call.fragments.length
              ? [{ id: "chatcmpl-1", choices: [{ index: 0, delta: { tool_calls: [{ index: call.index, function: { name: pieces[1] } }] }, finish_reason: null }] }]
              : []
          )
        }))
        const run = runParser(new ChatParser("openai", "m", request), [
          ...frames,
          { id: "chatcmpl-1", choices: [{ index: 0, delta: {}, finish_reason: "tool_calls" }] },
          "[DONE]"
        ])
        const allHonest = sent.every((c) => honest(JSON.parse(JSON.stringify(c.index))))
        expectOutcome(run, sent, allHonest, allHonest ? [...sent].sort((a, b) => (a.index as number) - (b.index as number)) : sent)
        if (allHonest) expect(run.calls.map((c) => c.index)).toEqual(run.calls.map((c) => c.index).sort((a, b) => a - b))
      }),
      { numRuns: 300 }
    ))

  it("Anthropic: content block index", () =>
    fc.assert(
      fc.property(calls(anyIndex), (sent) => {
        const starts = sent.map((call) => ({
          type: "content_block_start",
          index: call.index,
          content_block: { type: "tool_use", id: call.id, name: call.name, input: {} }
        }))
        const deltas = interleaved(sent.map((call) =>
          call.fragments.map((partial_json) => ({ type: "content_block_delta", index: call.index, delta: { type: "input_json_delta", partial_json } }))
        ))
        const run = runParser(new AnthropicParser("anthropic", "m", request), [
          { type: "message_start", message: { id: "msg_1", model: "m", usage: { input_tokens: 1, output_tokens: 1 } } },
          ...starts,
          ...deltas,
          ...sent.map((call) => ({ type: "content_block_stop", index: call.index })),
          { type: "message_delta", delta: { stop_reason: "tool_use" }, usage: { output_tokens: 5 } },
          { type: "message_stop" }
        ])
        expectOutcome(run, sent, sent.every((c) => honest(JSON.parse(JSON.stringify(c.index)))), sent)
      }),
      { numRuns: 300 }
    ))

  it("Responses: output_index, and content_index on text", () =>
    fc.assert(
      fc.property(calls(anyIndex), anyIndex, (sent, contentIndex) => {
        const item = (call: Call, args: string) => ({ type: "function_call", id: `fc_${call.id}`, call_id: call.id, name: call.name, arguments: args })
        const deltas = interleaved(sent.map((call) =>
          call.fragments.map((delta) => ({ type: "response.function_call_arguments.delta", output_index: call.index, delta }))
        ))
        const run = runParser(new ResponsesParser("openai", "m", request), [
          { type: "response.created", response: { id: "resp_1", model: "m" } },
          { type: "response.output_text.delta", output_index: 0, content_index: contentIndex, delta: "hi" },
          ...sent.map((call) => ({ type: "response.output_item.added", output_index: call.index, item: item(call, "") })),
          ...deltas,
          ...sent.map((call) => ({ type: "response.output_item.done", output_index: call.index, item: item(call, JSON.stringify(call.args)) })),
          { type: "response.completed", response: { id: "resp_1", status: "completed", usage: { input_tokens: 1, output_tokens: 2, total_tokens: 3 } } }
        ])
        const allHonest = honest(JSON.parse(JSON.stringify(contentIndex))) && sent.every((c) => honest(JSON.parse(JSON.stringify(c.index))))
        expectOutcome(run, sent, allHonest, sent)
      }),
      { numRuns: 300 }
    ))

  it("Gemini: array indices in streamed argument paths, and the candidate index", () =>
    fc.assert(
      fc.property(calls(anyIndex), anyIndex, (sent, candidateIndex) => {
        const chunk = (functionCall: Record<string, unknown>, finishReason?: string) => ({
          candidates: [{ index: candidateIndex, content: { parts: [{ functionCall }] }, ...(finishReason === undefined ? {} : { finishReason }) }],
          responseId: "r1"
        })
        // each call streams: its name and whole args first, one element of `_items` at the hostile index, then its close
        const frames = sent.flatMap((call) => {
          const named = (c: Record<string, unknown>) => (call.naming === "every" ? { name: call.name, ...c } : c)
          return [
            chunk({ name: call.name, args: call.args, willContinue: true }),
            chunk(named({ partialArgs: [{ jsonPath: `$._items[${String(call.index)}]`, stringValue: call.id }], willContinue: true })),
            chunk(named({}))
          ]
        })
        const run = runParser(new GeminiParser("gemini", "m", request), [...frames, chunk({}, "STOP")])
        const pathIndex = (index: unknown) => /^\d+$/.test(String(index)) && Number(String(index)) <= maxStreamIndex
        if (!sent.every((c) => pathIndex(c.index))) {
          expect(run.error?._tag).toBe("MalformedResponseError")
          return
        }
        expect(run.error).toBeUndefined()
        expect(run.finish?.finishReason).toBe("tool_calls")
        expect(run.calls.map((c) => c.name)).toEqual(sent.map((c) => c.name))
        run.calls.forEach((c, i) => {
          const parsed = JSON.parse(c.arguments) as { _items: Array<unknown> }
          expect(parsed._items).toHaveLength(Number(String(sent[i]!.index)) + 1)
          expect(parsed._items.at(-1)).toBe(sent[i]!.id)
          expect({ ...parsed, _items: undefined }).toEqual({ ...sent[i]!.args, _items: undefined })
        })
      }),
      // an honest index up to the bound makes a sparse array that long: fewer runs
      { numRuns: 100 }
    ))

  it("Ollama: function.index is informational; every call comes out whole, in order", () =>
    fc.assert(
      fc.property(calls(anyIndex), fc.boolean(), (sent, together) => {
        const wire = sent.map((call) => ({ function: { index: call.index, name: call.name, arguments: call.args } }))
        const lines = together
          ? [{ model: "m", message: { role: "assistant", content: "", tool_calls: wire }, done: false }]
          : wire.map((w) => ({ model: "m", message: { role: "assistant", content: "", tool_calls: [w] }, done: false }))
        const run = runParser(new OllamaParser("ollama", "m", request), [
          ...lines,
          { model: "m", message: { role: "assistant", content: "" }, done: true, done_reason: "stop", prompt_eval_count: 1, eval_count: 2 }
        ])
        expect(run.error).toBeUndefined()
        expect(run.finish?.finishReason).toBe("tool_calls")
        expect(run.calls.map((c) => ({ name: c.name, args: JSON.parse(c.arguments) }))).toEqual(sent.map((c) => ({ name: c.name, args: c.args })))
      }),
      { numRuns: 200 }
    ))
})
