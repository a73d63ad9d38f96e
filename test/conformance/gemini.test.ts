/**
 * Gemini conformance: recorded `streamGenerateContent` traffic, re-framed as Google frames
 * it (`data:` events separated by CRLF CRLF) and served in odd-sized pieces through
 * FakeProvider's `Raw` fault; recorded `generateContent` bodies and error bodies as they are.
 */
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Layer } from "effect"
import { Gemini, KeyPool, LanguageModel, Message, RateLimiter, Transport } from "../../src/index.js"
import * as Testing from "../../src/Testing.js"
import { fixtureLines, hasFixtures, readFixture } from "../support/fixtures.js"

if (!hasFixtures) console.warn("[conformance/gemini] skipped: the recorded fixtures are absent")

const stackFor = (fake: Testing.FakeProviderService) =>
  Gemini.layer({ model: "gemini-3-pro-preview", baseUrl: `${fake.url}/v1beta` }).pipe(
    Layer.provide(KeyPool.layer({ providerId: "gemini", keys: ["g-key"] })),
    Layer.provide(RateLimiter.unlimited),
    Layer.provide(Transport.layerUndici)
  )

/** Cuts text into pieces of `size` characters, so frames (and CRLFs) straddle writes. */
const pieces = (text: string, size: number) => {
  const out: Array<string> = []
  for (let i = 0; i < text.length; i += size) out.push(text.slice(i, i + size))
  return out
}

const sseBody = (file: string) => fixtureLines(file).map((line) => `data: ${line}\r\n\r\n`).join("")

/** An independent fold of the fixture: what a correct client must assemble. */
const fold = (file: string) => {
  let text = ""
  let reasoning = ""
  const calls: Array<{ name: string; args: unknown }> = []
  let usage: any
  let finishReason: string | undefined
  for (const line of fixtureLines(file)) {
    const chunk = JSON.parse(line)
    const candidate = chunk.candidates?.[0]
    for (const part of candidate?.content?.parts ?? []) {
      if (typeof part.text === "string") part.thought ? (reasoning += part.text) : (text += part.text)
      if (part.functionCall?.args !== undefined) calls.push({ name: part.functionCall.name, args: part.functionCall.args })
    }
    if (chunk.usageMetadata?.promptTokenCount !== undefined) usage = chunk.usageMetadata
    if (candidate?.finishReason) finishReason = candidate.finishReason
  }
  return { text, reasoning, calls, usage, finishReason }
}

const replay = (file: string, size = 37) =>
  Effect.gen(function* () {
    const fake = yield* Testing.FakeProvider.make({})
    yield* fake.inject({ _tag: "Raw", body: pieces(sseBody(file), size) })
    return yield* LanguageModel.collect(LanguageModel.stream(Message.request("How many r in strawberry?"))).pipe(
      Effect.provide(stackFor(fake))
    )
  })

describe.skipIf(!hasFixtures)("conformance: Gemini", () => {
  for (const file of ["gemini/google-text.chunks.txt", "gemini/google-reasoning.chunks.txt", "gemini/google-tool-call.chunks.txt"]) {
    it.scoped(`replays ${file}`, () =>
      Effect.gen(function* () {
        const expected = fold(file)
        for (const size of [37, 4096]) {
          const response = yield* replay(file, size)
          expect(response.text).toBe(expected.text)
          expect(response.reasoning ?? "").toBe(expected.reasoning)
          expect(response.toolCalls.map((c) => ({ name: c.name, args: JSON.parse(c.arguments) }))).toEqual(expected.calls)
          expect(response.usage).toMatchObject({
            inputTokens: expected.usage.promptTokenCount,
            outputTokens: expected.usage.candidatesTokenCount + (expected.usage.thoughtsTokenCount ?? 0),
            totalTokens: expected.usage.totalTokenCount,
            estimated: false
          })
          expect(response.finishReason).toBe(expected.calls.length > 0 ? "tool_calls" : "stop")
          expect(expected.finishReason).toBe("STOP")
        }
      }))
  }

  it.scoped("literal spot checks of the recorded numbers", () =>
    Effect.gen(function* () {
      const text = yield* replay("gemini/google-text.chunks.txt")
      expect(text.text).toBe("There are **3** \"r\"s in strawberry.\n\nst**r**awbe**rr**y")
      expect(text.usage).toEqual({ inputTokens: 9, outputTokens: 208, totalTokens: 217, reasoningTokens: 185, estimated: false })
      expect(text.id).toBe("bH6LaZW8Fp_3nsEPqtaSwQ4")
      expect(text.model).toBe("gemini-3-pro-preview")
      const reasoning = yield* replay("gemini/google-reasoning.chunks.txt")
      expect(reasoning.usage).toEqual({ inputTokens: 9, outputTokens: 285, totalTokens: 294, reasoningTokens: 256, estimated: false })
      const tool = yield* replay("gemini/google-tool-call.chunks.txt")
      expect(tool.toolCalls).toEqual([{ id: "b36LacjwM668nsEP2tbsgQQ-call-0", name: "weather", arguments: `{"location":"San Francisco"}` }])
      expect(tool.usage).toEqual({ inputTokens: 29, outputTokens: 60, totalTokens: 89, reasoningTokens: 45, estimated: false })
    }))

  it.scoped("assembles Vertex partialArgs (jsonPath, willContinue) into two complete calls", () =>
    Effect.gen(function* () {
      const file = "gemini/google-stream-tool-call-arguments.chunks.txt"
      // independent fold: the string pieces of each call, joined per jsonPath
      const expected: Array<{ name: string; args: Record<string, string> }> = []
      for (const line of fixtureLines(file)) {
        const fc = JSON.parse(line).candidates[0].content.parts[0].functionCall
        if (fc.name) expected.push({ name: fc.name, args: {} })
        for (const arg of fc.partialArgs ?? []) {
          const key = arg.jsonPath.slice(2)
          const call = expected[expected.length - 1]!
          call.args[key] = (call.args[key] ?? "") + arg.stringValue
        }
      }
      expect(expected).toEqual([
        { name: "getWeather", args: { location: "Boston" } },
        { name: "getWeather", args: { location: "San Francisco" } }
      ])
      for (const size of [29, 4096]) {
        const response = yield* replay(file, size)
        expect(response.toolCalls.map((c) => ({ name: c.name, args: JSON.parse(c.arguments) }))).toEqual(expected)
        expect(response.toolCalls.map((c) => c.id)).toEqual(["dqHOab6xGLzWodAPkPuViA4-call-0", "dqHOab6xGLzWodAPkPuViA4-call-1"])
        expect(response.finishReason).toBe("tool_calls")
        expect(response.usage).toEqual({ inputTokens: 26, outputTokens: 155, totalTokens: 181, reasoningTokens: 132, estimated: false })
      }
    }))

  it.scoped("decodes the recorded generateContent body", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({})
      yield* fake.inject({ _tag: "Raw", contentType: "application/json", body: pieces(readFixture("gemini/google-text.json"), 53) })
      const response = yield* LanguageModel.chat(Message.request("How many r in strawberry?")).pipe(Effect.provide(stackFor(fake)))
      const wire = JSON.parse(readFixture("gemini/google-text.json"))
      expect(response.text).toBe(wire.candidates[0].content.parts[0].text)
      expect(response.text).toBe("There are **3** r's in strawberry.\n\nHere is the breakdown: st**r**awbe**rr**y.")
      expect(response.usage).toEqual({ inputTokens: 9, outputTokens: 272, totalTokens: 281, reasoningTokens: 244, estimated: false })
      expect(response).toMatchObject({ id: "Un6LacrVMcjUxs0PmJfWoQc", model: "gemini-3-pro-preview", finishReason: "stop", toolCalls: [] })
    }))

  it.scoped("the recorded 429 with RetryInfo yields a RateLimitError with retryAfter, for chat and stream", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({})
      const body = readFixture("gemini/google-429-retry-info.json")
      for (const run of [
        LanguageModel.chat(Message.request("hi")),
        LanguageModel.collect(LanguageModel.stream(Message.request("hi")))
      ]) {
        yield* fake.inject({ _tag: "Raw", status: 429, contentType: "application/json", body })
        const error = yield* Effect.flip(run).pipe(Effect.provide(stackFor(fake)))
        expect(error._tag).toBe("RateLimitError")
        expect(Duration.toMillis((error as { retryAfter: Duration.Duration }).retryAfter)).toBe(34_400)
        expect(error.message).toContain("RESOURCE_EXHAUSTED")
        expect(error.retryable).toBe(true)
      }
    }))
})
