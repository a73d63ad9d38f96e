/**
 * Recorded Chat Completions traffic (../shared/fixtures, see SOURCES.md) replayed through
 * FakeProvider and the whole OpenAI-compatible stack. Expected values come from a simple
 * fold over the fixture written here, independent of the library's parser, plus literal
 * spot checks read from the files.
 */
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Stream } from "effect"
import { fromResponse } from "../../src/internal/request/errors.js"
import { LanguageModel, Message } from "../../src/index.js"
import { fixtureLines, hasFixtures, readFixture } from "../support/fixtures.js"
import { fakeProvider, stack } from "../support/openaiStack.js"

if (!hasFixtures) console.warn("[conformance/openai-chat] skipped: the recorded fixtures are absent")

interface Expected {
  text: string
  reasoning: string
  calls: Map<number, { id: string; name: string; arguments: string }>
  usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number } | undefined
  finish: string | undefined
  id: string | undefined
  model: string | undefined
}

/** The independent fold: concatenate what each payload carries, per tool-call index. */
const fold = (payloads: ReadonlyArray<string>): Expected => {
  const out: Expected = { text: "", reasoning: "", calls: new Map(), usage: undefined, finish: undefined, id: undefined, model: undefined }
  for (const payload of payloads) {
    const chunk = JSON.parse(payload)
    out.id ??= chunk.id
    out.model = chunk.model ?? out.model
    if (chunk.usage) out.usage = chunk.usage
    for (const choice of chunk.choices ?? []) {
      const delta = choice.delta ?? {}
      out.text += delta.content ?? ""
      out.reasoning += delta.reasoning_content ?? ""
      for (const call of delta.tool_calls ?? []) {
        const entry = out.calls.get(call.index) ?? { id: "", name: "", arguments: "" }
        if (call.id) entry.id = call.id
        if (call.function?.name) entry.name += call.function.name
        entry.arguments += call.function?.arguments ?? ""
        out.calls.set(call.index, entry)
      }
      if (choice.finish_reason) out.finish = choice.finish_reason
    }
  }
  return out
}

/** `*.chunks.txt` payloads re-framed as SSE, as the provider sent them. */
const reframe = (payloads: ReadonlyArray<string>) => payloads.map((p) => `data: ${p}\n\n`).join("") + "data: [DONE]\n\n"

/** A body cut into pieces of uneven sizes, so events straddle network reads. */
const pieces = (body: string, size: number) => {
  const out: Array<string> = []
  for (let i = 0, n = 0; i < body.length; n++) {
    const step = size + (n % 7) * 13
    out.push(body.slice(i, i + step))
    i += step
  }
  return out
}

const replay = (body: string | ReadonlyArray<string>, request: Message.ChatRequest) =>
  Effect.gen(function* () {
    const fake = yield* fakeProvider()
    yield* fake.inject({ _tag: "Raw", body })
    return yield* Stream.runCollect(LanguageModel.stream(request)).pipe(
      Effect.map(Chunk.toArray),
      Effect.provide(stack(fake.baseUrl, { model: "gpt-4o-mini" }))
    )
  })

const usageOf = (wire: NonNullable<Expected["usage"]> & Record<string, any>) => ({
  inputTokens: wire.prompt_tokens,
  outputTokens: wire.completion_tokens,
  totalTokens: wire.total_tokens,
  ...(wire.completion_tokens_details?.reasoning_tokens === undefined ? {} : { reasoningTokens: wire.completion_tokens_details.reasoning_tokens }),
  ...(wire.prompt_tokens_details?.cached_tokens === undefined ? {} : { cachedInputTokens: wire.prompt_tokens_details.cached_tokens }),
  estimated: false
})

describe.skipIf(!hasFixtures)("openai-chat conformance", () => {
  it.scoped("openai-text.chunks.txt: text, finish and usage of a 303-chunk stream", () =>
    Effect.gen(function* () {
      const payloads = fixtureLines("openai-chat/openai-text.chunks.txt")
      expect(payloads).toHaveLength(303)
      const expected = fold(payloads)
      const events = yield* replay(pieces(reframe(payloads), 700), Message.request("Invent a new holiday and describe its traditions."))
      const response = yield* LanguageModel.collect(Stream.fromIterable(events))
      expect(response.text).toBe(expected.text)
      expect(response.text.startsWith("**Holiday Name:**")).toBe(true)
      expect(response.id).toBe("chatcmpl-D8Z5oo6uDh67AD85p73ksdT1KxhE0")
      expect(response.model).toBe("gpt-4.1-nano-2025-04-14")
      expect(response.finishReason).toBe("stop")
      expect(response.toolCalls).toEqual([])
      expect(response.reasoning).toBeUndefined()
      expect(response.usage).toEqual(usageOf(expected.usage!))
      // read in the file: 16 prompt, 300 completion, 316 total, 0 cached, 0 reasoning
      expect(response.usage).toEqual({
        inputTokens: 16,
        outputTokens: 300,
        totalTokens: 316,
        cachedInputTokens: 0,
        reasoningTokens: 0,
        estimated: false
      })
      // no text is lost or doubled between the deltas
      const deltas = events.filter((e) => e._tag === "TextDelta").map((e) => e.text).join("")
      expect(deltas).toBe(expected.text)
    }))

  it.scoped("openai-text.json through chat", () =>
    Effect.gen(function* () {
      const body = readFixture("openai-chat/openai-text.json")
      const wire = JSON.parse(body)
      const fake = yield* fakeProvider()
      yield* fake.inject({ _tag: "Raw", body, contentType: "application/json" })
      const response = yield* LanguageModel.chat(Message.request("Invent a new holiday and describe its traditions.")).pipe(
        Effect.provide(stack(fake.baseUrl))
      )
      expect(response).toEqual({
        id: wire.id,
        model: wire.model,
        provider: "openai",
        text: wire.choices[0].message.content,
        toolCalls: [],
        finishReason: "stop",
        usage: usageOf(wire.usage)
      })
      expect(response.id).toBe("chatcmpl-D8Z5f52zQqikDBEKQMQoYcWMcWPeU")
      expect(response.usage.outputTokens).toBe(363)
      expect(response.usage.totalTokens).toBe(379)
      expect(response.text).toContain("Galaxy Day fosters a sense of unity")
      expect(response.text).toContain("vast darkness\u2014mirroring")
    }))

  it.scoped("openai_artifact_call.txt served raw: one tool call streamed in fragments", () =>
    Effect.gen(function* () {
      const raw = readFixture("openai-chat/openai_artifact_call.txt")
      const payloads = raw.split("\n").filter((l) => l.startsWith("data: ") && l !== "data: [DONE]").map((l) => l.slice(6))
      const expected = fold(payloads)
      expect(expected.calls.size).toBe(1)
      const events = yield* replay(pieces(raw, 333), Message.request("Make a five-line poem artifact."))
      const response = yield* LanguageModel.collect(Stream.fromIterable(events))
      const call = expected.calls.get(0)!
      expect(response.toolCalls).toEqual([{ id: call.id, name: call.name, arguments: call.arguments }])
      expect(response.toolCalls[0]!.id).toBe("call_yH3ixdEz4wvSuK8ei3gNYwk3")
      expect(response.toolCalls[0]!.name).toBe("create_artifact")
      // the arguments are one complete JSON document
      const args = JSON.parse(response.toolCalls[0]!.arguments)
      expect(args.name).toBe("FiveLinesHTMLCSSJSHelloWorld")
      expect(Object.keys(args).length).toBeGreaterThan(1)
      expect(events.filter((e) => e._tag === "ToolCall")).toHaveLength(1)
      expect(events.filter((e) => e._tag === "ToolCallDelta").map((e) => e.argumentsDelta).join("")).toBe(call.arguments)
      expect(response.text).toBe("")
      expect(response.finishReason).toBe("tool_calls")
      expect(response.model).toBe("gpt-4o-2024-08-06")
      expect(response.usage).toEqual(usageOf(expected.usage!))
      expect(response.usage).toMatchObject({ inputTokens: 735, outputTokens: 156, totalTokens: 891, cachedInputTokens: 33 })
    }))

  it.scoped("deepseek-tool-call.chunks.txt: reasoning, then a tool call, usage in the finish chunk", () =>
    Effect.gen(function* () {
      const payloads = fixtureLines("openai-compatible/deepseek-tool-call.chunks.txt")
      const expected = fold(payloads)
      // the recording has no [DONE]: serve it as recorded, and with [DONE]
      for (const body of [payloads.map((p) => `data: ${p}\n\n`).join(""), reframe(payloads)]) {
        const events = yield* replay(pieces(body, 401), Message.request("What is the weather in San Francisco?"))
        const response = yield* LanguageModel.collect(Stream.fromIterable(events))
        expect(response.reasoning).toBe(expected.reasoning)
        expect(response.reasoning!.startsWith("The user is asking")).toBe(true)
        expect(response.text).toBe("")
        const call = expected.calls.get(0)!
        expect(response.toolCalls).toEqual([{ id: call.id, name: call.name, arguments: call.arguments }])
        expect(response.toolCalls[0]!.id).toBe("call_00_ioIn7yN9p1ZOMNpDLwd4MgAF")
        expect(response.toolCalls[0]!.name).toBe("weather")
        expect(JSON.parse(response.toolCalls[0]!.arguments)).toEqual({ location: "San Francisco" })
        expect(response.finishReason).toBe("tool_calls")
        expect(response.model).toBe("deepseek-reasoner")
        expect(response.id).toBe("cca85624-4056-401f-b220-d77601d1f70d")
        expect(response.usage).toEqual(usageOf(expected.usage!))
        expect(response.usage).toEqual({
          inputTokens: 339,
          outputTokens: 83,
          totalTokens: 422,
          reasoningTokens: 39,
          cachedInputTokens: 320,
          estimated: false
        })
        // reasoning is delivered before the call
        const firstCall = events.findIndex((e) => e._tag === "ToolCallDelta")
        expect(events.slice(firstCall).some((e) => e._tag === "ReasoningDelta")).toBe(false)
      }
    }))

  it.scoped("reasoning-model-legacy-parameter-error.json through the error mapping", () =>
    Effect.gen(function* () {
      const body = readFixture("openai-chat/reasoning-model-legacy-parameter-error.json")
      const direct = fromResponse({ provider: "openai", model: "o3-mini", status: 400, headers: {}, body, now: 0 })
      expect(direct._tag).toBe("InvalidRequestError")
      expect(direct.retryable).toBe(false)
      expect(direct.message).toBe(
        "openai 400 invalid_request_error: Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead."
      )
      const fake = yield* fakeProvider()
      yield* fake.inject({ _tag: "Status", status: 400, body })
      const error = yield* Effect.flip(LanguageModel.chat(Message.request("hi")).pipe(Effect.provide(stack(fake.baseUrl))))
      expect(error._tag).toBe("InvalidRequestError")
      expect(error.message).toContain("max_completion_tokens")
      expect("status" in error && error.status).toBe(400)
    }))
})
