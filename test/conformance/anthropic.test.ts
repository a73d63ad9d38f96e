/**
 * Conformance against recorded Anthropic Messages traffic: every stream under
 * fixtures/anthropic is re-framed the way the API frames it (`event:` + `data:` lines),
 * served by the FakeProvider in uneven pieces, and the assembled response is compared
 * with an independent fold of the same fixture plus numbers read off the files.
 */
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Layer, Stream } from "effect"
import { readdirSync } from "node:fs"
import { join } from "node:path"
import { Anthropic, KeyPool, LanguageModel, Message, RateLimiter, Transport } from "../../src/index.js"
import * as Testing from "../../src/Testing.js"
import { fixtureLines, fixturesDir, hasFixtures, readFixture } from "../support/fixtures.js"

const files = hasFixtures ? readdirSync(join(fixturesDir, "anthropic")).sort() : []
const streamFiles = files.filter((f) => f.endsWith(".chunks.txt"))

type Event = { readonly type: string } & Record<string, any>

/** Splits a file of concatenated messages at each `message_start`. */
const splitMessages = (lines: ReadonlyArray<string>): Array<Array<string>> => {
  const streams: Array<Array<string>> = []
  for (const line of lines) {
    if ((JSON.parse(line) as Event).type === "message_start" || streams.length === 0) streams.push([])
    streams[streams.length - 1]!.push(line)
  }
  return streams
}

/** The SSE body the API would send for these payloads. */
const frame = (lines: ReadonlyArray<string>) =>
  lines.map((line) => `event: ${(JSON.parse(line) as Event).type}\ndata: ${line}\n\n`).join("")

/** Cuts a body into pieces of `size` characters, so frames straddle network reads. */
const pieces = (body: string, size: number) => {
  const out: Array<string> = []
  for (let i = 0; i < body.length; i += size) out.push(body.slice(i, i + size))
  return out
}

const stopReasons: Record<string, Message.FinishReason> = { end_turn: "stop", tool_use: "tool_calls", max_tokens: "length" }

/** What a stream of these payloads means, folded directly from the recorded events. */
const fold = (lines: ReadonlyArray<string>) => {
  let text = ""
  let reasoning = ""
  const blocks = new Map<number, { type: string; id?: string; name?: string; args: string }>()
  const order: Array<number> = []
  const usage: Record<string, number> = {}
  let stopReason = ""
  let id = ""
  let model = ""
  for (const line of lines) {
    const e = JSON.parse(line) as Event
    if (e.type === "message_start") {
      id = e.message.id
      model = e.message.model
      Object.assign(usage, e.message.usage)
    } else if (e.type === "content_block_start") {
      blocks.set(e.index, { type: e.content_block.type, id: e.content_block.id, name: e.content_block.name, args: "" })
      order.push(e.index)
    } else if (e.type === "content_block_delta") {
      if (e.delta.type === "text_delta") text += e.delta.text
      if (e.delta.type === "thinking_delta") reasoning += e.delta.thinking
      if (e.delta.type === "input_json_delta") blocks.get(e.index)!.args += e.delta.partial_json
    } else if (e.type === "message_delta") {
      stopReason = e.delta.stop_reason
      for (const [k, v] of Object.entries(e.usage ?? {})) if (typeof v === "number") usage[k] = v
    }
  }
  const toolCalls = order
    .map((i) => blocks.get(i)!)
    .filter((b) => b.type === "tool_use")
    .map((b) => ({ id: b.id!, name: b.name!, raw: b.args, arguments: b.args === "" ? "{}" : JSON.stringify(JSON.parse(b.args)) }))
  const inputTokens = (usage.input_tokens ?? 0) + (usage.cache_read_input_tokens ?? 0) + (usage.cache_creation_input_tokens ?? 0)
  return {
    id,
    model,
    text,
    reasoning: reasoning === "" ? undefined : reasoning,
    toolCalls,
    finishReason: stopReasons[stopReason] ?? "other",
    inputTokens,
    outputTokens: usage.output_tokens ?? 0
  }
}

/** Numbers and strings read off the fixture files by eye, per stream. */
const spotChecks: Record<string, ReadonlyArray<(r: Message.ChatResponse) => void>> = {
  "anthropic-text.chunks.txt": [(r) => {
    expect(r.text).toBe("Hello! I'm doing well, thank you for asking. How are you doing today? Is there anything I can help you with?")
    expect(r.usage).toEqual({ inputTokens: 12, outputTokens: 30, totalTokens: 42, cachedInputTokens: 0, cacheWriteTokens: 0, estimated: false })
    expect(r.finishReason).toBe("stop")
  }],
  "anthropic-json-tool.2.chunks.txt": [(r) => {
    expect(r.text).toBe("I'll invoke the JSON response tool.")
    expect(r.toolCalls).toEqual([{
      id: "toolu_01KFbKqPYSuAKujiL6mTfzYA",
      name: "json",
      // streamed with spaces; assembled as chat would return the decoded input
      arguments: "{\"elements\":[{\"location\":\"San Francisco\",\"temperature\":58,\"condition\":\"sunny\"}]}"
    }])
    expect(r.usage.inputTokens).toBe(849)
    expect(r.usage.outputTokens).toBe(47)
    expect(r.finishReason).toBe("tool_calls")
  }],
  "anthropic-tool-no-args.chunks.txt": [(r) => {
    expect(r.toolCalls).toEqual([{ id: "toolu_01QE1WLsSVp5hy5Q3GmGTmjP", name: "updateIssueList", arguments: "{}" }])
    expect(r.usage.inputTokens).toBe(565)
    expect(r.usage.outputTokens).toBe(48)
  }],
  "anthropic-clear-thinking.1.chunks.txt": [(r) => {
    expect(r.reasoning).toBe("The previous result was 925. Now I need to divide that by 5.\n\n925 ÷ 5 = 185")
    expect(r.text).toBe("925 ÷ 5 = 185")
    expect(r.usage.inputTokens).toBe(69)
    expect(r.usage.outputTokens).toBe(53)
  }],
  "anthropic-message-delta-input-tokens.chunks.txt": [(r) => {
    expect(r.text).toBe("pong")
    // message_delta revises message_start's 43 input tokens
    expect(r.usage).toEqual({ inputTokens: 61, outputTokens: 2, totalTokens: 63, estimated: false })
    expect(r.model).toBe("claude-opus-4-5-20251101")
  }],
  "anthropic-tool-search-deferred-bm25.chunks.txt": [
    (r) => {
      // the server_tool_use block (tool_search_tool_bm25) runs at Anthropic: not the caller's call
      expect(r.toolCalls).toEqual([{ id: "toolu_01U8pzAHj2vNdPCA2Kf8JjeN", name: "readNoteTree", arguments: "{\"noteId\":\"d10aa585-982b-4bd9-984e-420f9b3717f7\"}" }])
      expect(r.usage.inputTokens).toBe(879)
      expect(r.usage.outputTokens).toBe(177)
    },
    (r) => {
      expect(r.id).toBe("msg_014CbStN8SFzjGbDkZzTtD7i")
      expect(r.toolCalls.map((c) => c.name)).toEqual(["executeEditorOperation"])
      expect(JSON.parse(r.toolCalls[0]!.arguments).operations[0].text).toBe("bye")
      expect(r.text.startsWith("Perfect! I can see the current note structure")).toBe(true)
    },
    (r) => {
      expect(r.toolCalls).toEqual([])
      expect(r.text.endsWith("The operation was successful!")).toBe(true)
      expect(r.usage.inputTokens).toBe(1639)
      expect(r.usage.outputTokens).toBe(95)
    }
  ]
}

const stack = (fake: Testing.FakeProviderService) =>
  Anthropic.layer({ model: "claude-sonnet-4-5", baseUrl: fake.url }).pipe(
    Layer.provide(KeyPool.layer({ providerId: "anthropic", keys: ["sk-ant-conformance"] })),
    Layer.provide(RateLimiter.unlimited),
    Layer.provide(Transport.layerUndici)
  )

describe.skipIf(!hasFixtures)(`Anthropic conformance (recorded traffic${hasFixtures ? "" : ": skipped, fixtures absent"})`, () => {
  it("covers every recorded file", () => {
    expect(streamFiles.length).toBeGreaterThan(0)
    for (const file of files) expect(file.endsWith(".chunks.txt") || file === "anthropic-text.json", file).toBe(true)
    for (const file of streamFiles) expect(spotChecks[file], `spot checks for ${file}`).toBeDefined()
  })

  for (const file of streamFiles) {
    it.scoped(`replays ${file}`, () =>
      Effect.gen(function* () {
        const fake = yield* Testing.FakeProvider.make()
        const messages = splitMessages(fixtureLines(`anthropic/${file}`))
        expect(messages.length).toBe(spotChecks[file]!.length)
        for (const [n, lines] of messages.entries()) {
          const expected = fold(lines)
          const body = frame(lines)
          // once in 13-character pieces, once whole: framing must not depend on network reads
          for (const parts of [pieces(body, 13), [body]]) {
            yield* fake.inject({ _tag: "Raw", body: parts })
            const events = Chunk.toReadonlyArray(
              yield* Stream.runCollect(LanguageModel.stream(Message.request("replay"))).pipe(Effect.provide(stack(fake)))
            )
            const response = yield* LanguageModel.collect(Stream.fromIterable(events))
            expect(response.id).toBe(expected.id)
            expect(response.model).toBe(expected.model)
            expect(response.provider).toBe("anthropic")
            expect(response.text).toBe(expected.text)
            expect(response.reasoning).toBe(expected.reasoning)
            expect(response.toolCalls).toEqual(expected.toolCalls.map(({ raw: _, ...call }) => call))
            expect(response.finishReason).toBe(expected.finishReason)
            expect(response.usage.inputTokens).toBe(expected.inputTokens)
            expect(response.usage.outputTokens).toBe(expected.outputTokens)
            expect(response.usage.totalTokens).toBe(expected.inputTokens + expected.outputTokens)
            // each call's fragments add up to the recorded input JSON, exactly as it streamed
            expected.toolCalls.forEach((call, index) => {
              const streamed = events
                .filter((e): e is Message.ToolCallDelta => e._tag === "ToolCallDelta" && e.index === index)
                .map((e) => e.argumentsDelta)
                .join("")
              expect(streamed).toBe(call.raw)
            })
            spotChecks[file]![n]!(response)
          }
        }
      }))
  }

  it.scoped("decodes the recorded non-streaming body (anthropic-text.json)", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make()
      const recorded = readFixture("anthropic/anthropic-text.json")
      yield* fake.inject({ _tag: "Raw", body: recorded, contentType: "application/json" })
      const response = yield* LanguageModel.chat(Message.request("Hello")).pipe(Effect.provide(stack(fake)))
      const wire = JSON.parse(recorded) as { id: string; content: Array<{ text: string }> }
      expect(response).toEqual({
        id: wire.id,
        model: "claude-sonnet-4-5-20250929",
        provider: "anthropic",
        text: wire.content[0]!.text,
        toolCalls: [],
        finishReason: "stop",
        usage: { inputTokens: 12, outputTokens: 29, totalTokens: 41, cachedInputTokens: 0, cacheWriteTokens: 0, estimated: false }
      })
      expect(response.text).toBe("Hello! I'm doing well, thanks for asking. How are you doing today? Is there anything I can help you with?")
    }))
})
