/**
 * Ollama conformance: recorded native `/api/chat` traffic served as NDJSON (and as a JSON
 * body) through FakeProvider's `Raw` fault, in odd-sized pieces.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { KeyPool, LanguageModel, Message, Ollama, RateLimiter, Transport } from "../../src/index.js"
import * as Testing from "../../src/Testing.js"
import { fixtureLines, hasFixtures, readFixture } from "../support/fixtures.js"

if (!hasFixtures) console.warn("[conformance/ollama] skipped: the recorded fixtures are absent")

const stackFor = (fake: Testing.FakeProviderService) =>
  Ollama.layer({ model: "phi3", baseUrl: fake.url }).pipe(
    Layer.provide(KeyPool.layerKeyless("ollama")),
    Layer.provide(RateLimiter.unlimited),
    Layer.provide(Transport.layerUndici)
  )

const pieces = (text: string, size: number) => {
  const out: Array<string> = []
  for (let i = 0; i < text.length; i += size) out.push(text.slice(i, i + size))
  return out
}

/** An independent fold of NDJSON lines. */
const fold = (file: string) => {
  let text = ""
  const calls: Array<{ name: string; args: unknown }> = []
  let last: any
  for (const line of fixtureLines(file)) {
    const chunk = JSON.parse(line)
    text += chunk.message?.content ?? ""
    for (const call of chunk.message?.tool_calls ?? []) calls.push({ name: call.function.name, args: call.function.arguments })
    last = chunk
  }
  return { text, calls, input: last.prompt_eval_count as number, output: last.eval_count as number, doneReason: last.done_reason as string }
}

const stream = (fake: Testing.FakeProviderService, body: string, size: number) =>
  Effect.gen(function* () {
    // the file has no trailing newline, as the last line of a real body may not
    yield* fake.inject({ _tag: "Raw", contentType: "application/x-ndjson", body: pieces(body, size) })
    return yield* LanguageModel.collect(LanguageModel.stream(Message.request("hi"))).pipe(Effect.provide(stackFor(fake)))
  })

describe.skipIf(!hasFixtures)("conformance: Ollama", () => {
  it.scoped("replays the recorded NDJSON stream", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({})
      const file = "ollama/chat_completion_test_response_stream.txt"
      const expected = fold(file)
      for (const size of [1, 23, 4096]) {
        const response = yield* stream(fake, readFixture(file), size)
        expect(response.text).toBe(expected.text)
        expect(response.usage).toEqual({ inputTokens: expected.input, outputTokens: expected.output, totalTokens: expected.input + expected.output, estimated: false })
        expect(response.finishReason).toBe("stop")
        expect(expected.doneReason).toBe("stop")
      }
      // literal spot checks of the recorded numbers
      const response = yield* stream(fake, readFixture(file), 17)
      expect(response.text).toBe(" these times of day.")
      expect(response.usage).toEqual({ inputTokens: 10, outputTokens: 239, totalTokens: 249, estimated: false })
      expect(response.model).toBe("phi3")
    }))

  it.scoped("replays the recorded tool-call response, as a JSON body and as a one-line stream", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({})
      const file = "ollama/chat_completion_function_call_response.txt"
      const expected = fold(file)
      yield* fake.inject({ _tag: "Raw", contentType: "application/json", body: pieces(readFixture(file), 31) })
      const chat = yield* LanguageModel.chat(Message.request("hi")).pipe(Effect.provide(stackFor(fake)))
      const streamed = yield* stream(fake, readFixture(file), 31)
      for (const response of [chat, streamed]) {
        expect(response.toolCalls.map((c) => ({ name: c.name, args: JSON.parse(c.arguments) }))).toEqual(expected.calls)
        expect(response.toolCalls).toEqual([{ id: "call_0", name: "TestPlugin-TestFunction", arguments: `{"testInput":"fake-text"}` }])
        expect(response.usage).toEqual({ inputTokens: 152, outputTokens: 22, totalTokens: 174, estimated: false })
        expect(response.finishReason).toBe("tool_calls")
        expect(response.model).toBe("llama3.2")
      }
    }))
})
