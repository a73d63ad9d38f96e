/**
 * Conformance against recorded OpenAI Responses traffic: every stream under
 * fixtures/openai-responses is re-framed the way the API frames it (`event:` + `data:`
 * lines), served by the FakeProvider in uneven pieces, and the assembled response is
 * compared with an independent fold of the same fixture plus numbers read off the files.
 * Error fixtures go through the error mapping; request bodies are checked against the spec.
 */
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Exit, Layer, Stream } from "effect"
import { readdirSync } from "node:fs"
import { join } from "node:path"
import { KeyPool, LanguageModel, Message, OpenAiResponses, RateLimiter, Transport } from "../../src/index.js"
import * as Testing from "../../src/Testing.js"
import { fixtureLines, fixturesDir, hasFixtures, readFixture } from "../support/fixtures.js"
import { assertValid } from "../support/openapi.js"

const files = hasFixtures ? readdirSync(join(fixturesDir, "openai-responses")).sort() : []
const streamFiles = files.filter((f) => f.endsWith(".chunks.txt") && f !== "openai-error.1.chunks.txt")

type Event = { readonly type: string } & Record<string, any>

/** Splits a file of concatenated responses at each `response.created`. */
const splitResponses = (lines: ReadonlyArray<string>): Array<Array<string>> => {
  const streams: Array<Array<string>> = []
  for (const line of lines) {
    if ((JSON.parse(line) as Event).type === "response.created" || streams.length === 0) streams.push([])
    streams[streams.length - 1]!.push(line)
  }
  return streams
}

/** The SSE body the API would send for these payloads. */
const frame = (lines: ReadonlyArray<string>) =>
  lines.map((line) => `event: ${(JSON.parse(line) as Event).type}\ndata: ${line}\n\n`).join("")

const pieces = (body: string, size: number) => {
  const out: Array<string> = []
  for (let i = 0; i < body.length; i += size) out.push(body.slice(i, i + size))
  return out
}

/**
 * What a stream of these payloads means, folded from the recorded events: text and calls
 * from the finished items (`output_item.done`), reasoning from the summary deltas (one
 * section per summary part), usage from `response.completed`.
 */
const fold = (lines: ReadonlyArray<string>) => {
  let text = ""
  const sections: Array<string> = []
  let lastSection = ""
  const toolCalls: Array<Message.ToolCall> = []
  const argumentDeltas = new Map<number, string>()
  let completed: any
  for (const line of lines) {
    const e = JSON.parse(line) as Event
    if (e.type === "response.reasoning_summary_text.delta") {
      const key = `${e.output_index}:${e.summary_index}`
      if (key !== lastSection) sections.push("")
      lastSection = key
      sections[sections.length - 1] += e.delta
    } else if (e.type === "response.function_call_arguments.delta" || e.type === "response.custom_tool_call_input.delta") {
      argumentDeltas.set(e.output_index, (argumentDeltas.get(e.output_index) ?? "") + e.delta)
    } else if (e.type === "response.output_item.done") {
      const item = e.item
      if (item.type === "message") for (const part of item.content) if (part.type === "output_text") text += part.text
      if (item.type === "function_call") toolCalls.push({ id: item.call_id, name: item.name, arguments: item.arguments })
      if (item.type === "custom_tool_call") toolCalls.push({ id: item.call_id, name: item.name, arguments: item.input })
    } else if (e.type === "response.completed") {
      completed = e.response
    }
  }
  return {
    id: completed.id as string,
    model: completed.model as string,
    text,
    reasoning: sections.length === 0 ? undefined : sections.join("\n\n"),
    toolCalls,
    argumentDeltas,
    usage: completed.usage as { input_tokens: number; output_tokens: number; total_tokens: number }
  }
}

const spotChecks: Record<string, ReadonlyArray<(r: Message.ChatResponse) => void>> = {
  "openai-reasoning-encrypted-content.1.chunks.txt": [
    (r) => {
      expect(r.reasoning).toBe(
        "**Calculating step-by-step using calculator**\n\nI'll compute 12 plus 7, then multiply the result by 3, and finally multiply that by 10, reporting the final product."
      )
      expect(r.toolCalls).toEqual([{ id: "call_AB6AaRZ1FYZB2RwS6A5vbdqn", name: "calculator", arguments: "{\"a\":12,\"b\":7,\"op\":\"add\"}" }])
      expect(r.usage).toEqual({ inputTokens: 134, outputTokens: 28, totalTokens: 162, reasoningTokens: 0, cachedInputTokens: 0, estimated: false })
      expect(r.finishReason).toBe("tool_calls")
    },
    (r) => expect(r.toolCalls).toEqual([{ id: "call_Q6pW65MUgW9vF59BmItYGos3", name: "calculator", arguments: "{\"a\":19,\"b\":3,\"op\":\"multiply\"}" }]),
    (r) => {
      expect(r.toolCalls[0]!.arguments).toBe("{\"a\":57,\"b\":10,\"op\":\"multiply\"}")
      expect(r.usage.totalTokens).toBe(286)
    },
    (r) => {
      expect(r.text).toBe("The final result is **570**.")
      expect(r.toolCalls).toEqual([])
      expect(r.finishReason).toBe("stop")
      expect(r.usage).toMatchObject({ inputTokens: 299, outputTokens: 12, totalTokens: 311 })
      expect(r.id).toBe("resp_01830d662ab3856501693c3217ba4c8190a3ddf6c839d4f12a")
      expect(r.model).toBe("gpt-5.1-codex-max")
    }
  ],
  "openai-phase.1.chunks.txt": [(r) => {
    // the recording kept only the first deltas of each message; the finished items carry the rest
    expect(r.text.startsWith("Got it — I’ll quickly check reliable, up-to-date sources")).toBe(true)
    expect(r.text).toContain("and then summarize the key items with links.Here are a few **AI headlines for today")
    expect(r.text.endsWith("investor-grade morning brief with timestamps.")).toBe(true)
    expect(r.usage).toEqual({ inputTokens: 7112, outputTokens: 463, totalTokens: 7575, reasoningTokens: 64, cachedInputTokens: 3072, estimated: false })
  }],
  "openai-custom-tool.1.chunks.txt": [(r) => {
    expect(r.toolCalls).toEqual([{ id: "call_custom_sql_001", name: "write_sql", arguments: "SELECT * FROM users WHERE age > 25" }])
    expect(r.usage).toMatchObject({ inputTokens: 50, outputTokens: 20, totalTokens: 70 })
  }]
}

const stack = (fake: Testing.FakeProviderService) =>
  OpenAiResponses.layer({ model: "gpt-5-mini", baseUrl: fake.baseUrl, reasoningSummary: "detailed" }).pipe(
    Layer.provide(KeyPool.layer({ providerId: "openai", keys: ["sk-conformance"] })),
    Layer.provide(RateLimiter.unlimited),
    Layer.provide(Transport.layerUndici)
  )

/** The request the recordings answered: a calculator tool, high effort. */
const calculatorRequest = Message.request(
  [Message.system("Use the calculator for every step."), Message.user("Compute (12 + 7) × 3 × 10 step by step.")],
  {
    reasoningEffort: "high",
    tools: [{
      name: "calculator",
      description: "A minimal calculator for basic arithmetic. Call it once per step.",
      parameters: {
        type: "object",
        properties: { a: { type: "number" }, b: { type: "number" }, op: { type: "string", enum: ["add", "subtract", "multiply", "divide"] } },
        required: ["a", "b", "op"],
        additionalProperties: false
      },
      strict: true
    }]
  }
)

describe.skipIf(!hasFixtures)(`OpenAI Responses conformance (recorded traffic${hasFixtures ? "" : ": skipped, fixtures absent"})`, () => {
  it("covers every recorded file", () => {
    expect(streamFiles.length).toBeGreaterThan(0)
    const handled = new Set([...streamFiles, "openai-error.1.chunks.txt", "openai-error.1.json", "openai-reasoning-encrypted-content.1.json", "reasoning-model-temperature-error.json"])
    for (const file of files) expect(handled.has(file), file).toBe(true)
    for (const file of streamFiles) expect(spotChecks[file], `spot checks for ${file}`).toBeDefined()
  })

  for (const file of streamFiles) {
    it.scoped(`replays ${file}`, () =>
      Effect.gen(function* () {
        const fake = yield* Testing.FakeProvider.make()
        const responses = splitResponses(fixtureLines(`openai-responses/${file}`))
        expect(responses.length).toBe(spotChecks[file]!.length)
        for (const [n, lines] of responses.entries()) {
          const expected = fold(lines)
          const body = frame(lines)
          for (const parts of [pieces(body, 29), [body]]) {
            yield* fake.inject({ _tag: "Raw", body: parts })
            const events = Chunk.toReadonlyArray(
              yield* Stream.runCollect(LanguageModel.stream(calculatorRequest)).pipe(Effect.provide(stack(fake)))
            )
            const response = yield* LanguageModel.collect(Stream.fromIterable(events))
            expect(response.id).toBe(expected.id)
            expect(response.model).toBe(expected.model)
            expect(response.text).toBe(expected.text)
            expect(response.reasoning).toBe(expected.reasoning)
            expect(response.toolCalls).toEqual(expected.toolCalls)
            expect(response.finishReason).toBe(expected.toolCalls.length > 0 ? "tool_calls" : "stop")
            expect(response.usage.inputTokens).toBe(expected.usage.input_tokens)
            expect(response.usage.outputTokens).toBe(expected.usage.output_tokens)
            expect(response.usage.totalTokens).toBe(expected.usage.total_tokens)
            expected.toolCalls.forEach((call, index) => {
              const streamed = events
                .filter((e): e is Message.ToolCallDelta => e._tag === "ToolCallDelta" && e.index === index)
                .map((e) => e.argumentsDelta)
                .join("")
              expect(streamed).toBe(call.arguments)
            })
            spotChecks[file]![n]!(response)
          }
        }
        for (const request of yield* fake.requests) {
          expect(request.path).toBe("/v1/responses")
          assertValid("CreateResponse", request.body)
        }
      }))
  }

  it.scoped("a stream that fails with an error event (openai-error.1.chunks.txt) ends in a typed StreamError", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make()
      const lines = fixtureLines("openai-responses/openai-error.1.chunks.txt")
      yield* fake.inject({ _tag: "Raw", body: pieces(frame(lines), 31) })
      const exit = yield* Stream.runCollect(LanguageModel.stream(Message.request("hi"))).pipe(Effect.provide(stack(fake)), Effect.exit)
      expect(Exit.isFailure(exit)).toBe(true)
      const error = Exit.isFailure(exit) && exit.cause._tag === "Fail" ? exit.cause.error : undefined
      expect(error).toMatchObject({ _tag: "StreamError", provider: "openai", partial: false, retryable: false })
      expect(error?.message).toContain("insufficient_quota")
      expect(error?.message).toContain("You exceeded your current quota")
      // without the `error` event, `response.failed` alone must fail the stream the same way
      const withoutErrorEvent = lines.filter((l) => (JSON.parse(l) as Event).type !== "error")
      yield* fake.inject({ _tag: "Raw", body: frame(withoutErrorEvent) })
      const failed = yield* Effect.flip(Stream.runDrain(LanguageModel.stream(Message.request("hi"))).pipe(Effect.provide(stack(fake))))
      expect(failed).toMatchObject({ _tag: "StreamError", retryable: false })
      expect(failed.message).toContain("insufficient_quota")
    }))

  it.scoped("decodes the recorded non-streaming body (openai-reasoning-encrypted-content.1.json)", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make()
      yield* fake.inject({ _tag: "Raw", body: readFixture("openai-responses/openai-reasoning-encrypted-content.1.json"), contentType: "application/json" })
      const response = yield* LanguageModel.chat(calculatorRequest).pipe(Effect.provide(stack(fake)))
      expect(response).toMatchObject({
        id: "resp_0f35ed53160b395301693cc957829881909359e7f80cdd20b5",
        model: "gpt-5-mini-2025-08-07",
        text: "12 + 7 = 19\n19 × 3 = 57\n57 × 10 = 570\n\nFinal result: 570",
        toolCalls: [],
        finishReason: "stop",
        usage: { inputTokens: 865, outputTokens: 163, totalTokens: 1028, reasoningTokens: 128, cachedInputTokens: 0, estimated: false }
      })
      expect(response.reasoning?.startsWith("**Reporting final result**\n\nThe tool returned 570")).toBe(true)
      const [request] = yield* fake.requests
      expect((request!.body as Record<string, unknown>).instructions).toBe("Use the calculator for every step.")
      expect((request!.body as Record<string, unknown>).reasoning).toEqual({ effort: "high", summary: "detailed" })
      assertValid("CreateResponse", request!.body)
    }))

  it.scoped("maps the recorded error bodies", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make()
      const chat = Effect.flip(LanguageModel.chat(Message.request("hi")).pipe(Effect.provide(stack(fake))))
      yield* fake.inject({ _tag: "Status", status: 429, body: readFixture("openai-responses/openai-error.1.json") })
      const quota = yield* chat
      expect(quota).toMatchObject({ _tag: "QuotaExceededError", status: 429, retryable: false })
      expect(quota.message).toContain("You exceeded your current quota")
      yield* fake.inject({ _tag: "Status", status: 400, body: readFixture("openai-responses/reasoning-model-temperature-error.json") })
      const invalid = yield* chat
      expect(invalid).toMatchObject({ _tag: "InvalidRequestError", status: 400, retryable: false })
      expect(invalid.message).toContain("Unsupported parameter: 'temperature' is not supported with this model.")
    }))
})
