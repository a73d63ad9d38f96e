/**
 * The fake's output has the shape of the recorded real responses in ../shared/fixtures: for
 * the same kind of script, the same fields (as key paths) and the same events in the same
 * order. Values are not compared. A field the real API sends and the fake does not is listed
 * below with why; a field the fake sends and the API does not fails.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Testing from "../../src/Testing.js"
import { fixtureLines, hasFixtures, readFixture } from "../support/fixtures.js"

/** Test-only: loose JSON. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Loose = any

/** Every key path of a JSON value: `a.b`, arrays as `a[]`; leaves and objects alike. */
const keyPaths = (value: unknown, prefix = "", out = new Set<string>()): Set<string> => {
  if (Array.isArray(value)) for (const item of value) keyPaths(item, `${prefix}[]`, out)
  else if (typeof value === "object" && value !== null) {
    for (const [key, child] of Object.entries(value)) {
      const path = prefix === "" ? key : `${prefix}.${key}`
      out.add(path)
      keyPaths(child, path, out)
    }
  }
  return out
}

const union = (values: ReadonlyArray<unknown>): Set<string> => {
  const out = new Set<string>()
  for (const value of values) keyPaths(value, "", out)
  return out
}

/**
 * The fake sends no field the recording lacks, and lacks none it has but those `absent` names
 * (a name covers its sub-paths).
 */
const sameShape = (
  label: string,
  fake: ReadonlyArray<unknown>,
  recorded: ReadonlyArray<unknown>,
  absent: ReadonlyArray<string> = [],
  trimmed: ReadonlyArray<string> = []
) => {
  const ours = union(fake)
  const theirs = union(recorded)
  const under = (names: ReadonlyArray<string>) => (path: string) =>
    names.some((a) => path === a || path.startsWith(`${a}.`) || path.startsWith(`${a}[]`))
  const excused = under(absent)
  // `trimmed`: objects the recording's authors cut down, whose full shape another test checks
  const cut = under(trimmed)
  expect([...ours].filter((p) => !theirs.has(p) && !cut(p)), `${label}: fields the fake sends and the API does not`).toEqual([])
  expect([...theirs].filter((p) => !ours.has(p) && !excused(p)), `${label}: fields the API sends and the fake does not`).toEqual([])
}

/** A sequence with repeats collapsed: deltas vary in number, their order does not. */
const runs = (items: ReadonlyArray<string>): Array<string> => items.filter((x, i) => i === 0 || items[i - 1] !== x)

/** Groups payloads by a kind, for comparing each kind's fields. */
const byKind = (payloads: ReadonlyArray<Loose>, kind: (p: Loose) => string): Map<string, Array<Loose>> => {
  const out = new Map<string, Array<Loose>>()
  for (const p of payloads) out.set(kind(p), [...(out.get(kind(p)) ?? []), p])
  return out
}

const sameKinds = (
  label: string,
  fake: ReadonlyArray<Loose>,
  recorded: ReadonlyArray<Loose>,
  kind: (p: Loose) => string,
  absent: ReadonlyArray<string> = [],
  trimmed: ReadonlyArray<string> = []
) => {
  expect(runs(fake.map(kind)), `${label}: the order of events`).toEqual(runs(recorded.map(kind)))
  const ours = byKind(fake, kind)
  for (const [k, theirs] of byKind(recorded, kind)) sameShape(`${label} ${k}`, ours.get(k) ?? [], theirs, absent, trimmed)
}

const recordedLines = (file: string): Array<Loose> => fixtureLines(file).map((l) => JSON.parse(l))

/** The fake's answer to one request: the JSON body, or the payloads of its stream. */
const fakeOutput = (options: Testing.FakeProviderOptions, path: string, body: unknown, faults: ReadonlyArray<Testing.Fault> = []) =>
  Effect.gen(function* () {
    const fake = yield* Testing.FakeProvider.make(options)
    yield* fake.inject(...faults)
    return yield* Effect.promise(async () => {
      const response = await fetch(`${fake.url}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) })
      const text = await response.text()
      const type = response.headers.get("content-type") ?? ""
      if (type.includes("event-stream") || type.includes("ndjson")) {
        return text.split(/\r?\n/).map((l) => l.replace(/^data: /, "")).filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as Loose)
      }
      return [JSON.parse(text) as Loose]
    })
  })

const chat = { model: "gpt-4.1-nano", messages: [{ role: "user", content: "hi" }] }
const text = "Hello! I am doing well, thank you for asking."

// fields of newer API versions or of features the fake does not model
const openAiExtras = ["service_tier", "system_fingerprint", "obfuscation"]
const chatUsageDetails = ["usage.prompt_tokens_details", "usage.completion_tokens_details"]

describe.skipIf(!hasFixtures)("the fake's output has the recorded shape", () => {
  describe("OpenAI Chat Completions", () => {
    const chunkKind = (p: Loose) =>
      p.choices.length === 0 ? "usage" : p.choices[0].finish_reason !== null ? "finish" : "role" in p.choices[0].delta ? "role" : "content"

    it.scoped("JSON: openai-chat/openai-text.json", () =>
      Effect.gen(function* () {
        const fake = yield* fakeOutput({ reply: { text } }, "/v1/chat/completions", chat)
        // refusal and annotations: the fake sends no refusals or citations
        sameShape("chat JSON", fake, [JSON.parse(readFixture("openai-chat/openai-text.json"))], [
          ...openAiExtras,
          ...chatUsageDetails,
          "choices[].message.refusal",
          "choices[].message.annotations"
        ])
      }))

    it.scoped("stream with include_usage: openai-chat/openai-text.chunks.txt", () =>
      Effect.gen(function* () {
        const fake = yield* fakeOutput({ reply: { text } }, "/v1/chat/completions", { ...chat, stream: true, stream_options: { include_usage: true } })
        sameKinds("chat stream", fake, recordedLines("openai-chat/openai-text.chunks.txt"), chunkKind, [
          ...openAiExtras,
          ...chatUsageDetails,
          "choices[].delta.refusal"
        ])
      }))
  })

  describe("OpenAI Responses", () => {
    const eventType = (p: Loose) => String(p.type)
    // fields of the full response object the fake does not model (tools, text format, billing, …)
    const responseExtras = [
      "background", "billing", "max_output_tokens", "max_tool_calls", "previous_response_id", "prompt_cache_key",
      "prompt_cache_retention", "reasoning", "safety_identifier", "service_tier", "store", "temperature", "text",
      "tool_choice", "tools", "top_logprobs", "top_p", "truncation", "user", "metadata", "completed_at", "conversation",
      "content_filters", "frequency_penalty", "presence_penalty"
    ]
    const nested = (prefix: string) => responseExtras.map((f) => `${prefix}.${f}`)

    it.scoped("a text stream: openai-responses/openai-phase.1.chunks.txt (its first message)", () =>
      Effect.gen(function* () {
        const fake = yield* fakeOutput({ reply: { text } }, "/v1/responses", { model: "gpt-5", input: "hi", stream: true })
        const recorded = recordedLines("openai-responses/openai-phase.1.chunks.txt")
        // the recording has two messages; the fake one: compare up to the first message's end, and the end;
        // its response envelopes were cut down by the recording's authors (the full one is checked below)
        const firstDone = recorded.findIndex((e) => e.type === "response.output_item.done")
        const oneMessage = [...recorded.slice(0, firstDone + 1), recorded.at(-1)]
        sameKinds("responses stream", fake, oneMessage, eventType, [
          ...nested("response"),
          "obfuscation",
          "item.phase",
          "response.output[].phase",
          "response.usage.input_tokens_details.cache_write_tokens"
          // this recording lacks the text events' `logprobs: []`, which the spec requires and the
          // newer multi-turn/openai-responses cassette has
        ], ["response", "logprobs"])
      }))

    it.scoped("reasoning then a function call: openai-responses/openai-reasoning-encrypted-content.1.chunks.txt (its first response)", () =>
      Effect.gen(function* () {
        const fake = yield* fakeOutput(
          { reply: { text: "", reasoning: "Thinking it through.", toolCalls: [{ name: "calculator", arguments: "{\"a\":1}" }] } },
          "/v1/responses",
          { model: "gpt-5", input: "hi", stream: true, include: ["reasoning.encrypted_content"] }
        )
        const recorded = recordedLines("openai-responses/openai-reasoning-encrypted-content.1.chunks.txt")
        const first = recorded.slice(0, recorded.findIndex((e) => e.type === "response.completed") + 1)
        sameKinds("responses reasoning stream", fake, first, eventType, [
          ...nested("response"),
          "obfuscation",
          "response.usage.input_tokens_details.cache_write_tokens"
        ])
      }))

    it.scoped("the error event and response.failed: openai-responses/openai-error.1.chunks.txt", () =>
      Effect.gen(function* () {
        const fake = yield* fakeOutput({}, "/v1/responses", { model: "gpt-5", input: "hi", stream: true }, [{ _tag: "StreamErrorEvent", afterChunks: 2 }])
        sameKinds("responses error stream", fake, recordedLines("openai-responses/openai-error.1.chunks.txt"), eventType, nested("response"))
      }))

    it.scoped("JSON, reasoning then a message: openai-responses/openai-reasoning-encrypted-content.1.json", () =>
      Effect.gen(function* () {
        const fake = yield* fakeOutput(
          { reply: { text, reasoning: "Thinking it through." } },
          "/v1/responses",
          { model: "gpt-5", input: "hi", include: ["reasoning.encrypted_content"] }
        )
        sameShape("responses JSON", fake, [JSON.parse(readFixture("openai-responses/openai-reasoning-encrypted-content.1.json"))], [
          ...responseExtras,
          "usage.input_tokens_details.cache_write_tokens"
        ])
      }))
  })

  describe("OpenAI embeddings", () => {
    it.scoped("openai-embeddings/openai-embedding.json", () =>
      Effect.gen(function* () {
        const fake = yield* fakeOutput({}, "/v1/embeddings", { model: "text-embedding-3-small", input: ["a", "b"], encoding_format: "float" })
        sameShape("embeddings", fake, [JSON.parse(readFixture("openai-embeddings/openai-embedding.json"))])
      }))
  })

  describe("Anthropic Messages", () => {
    const messages = { model: "claude-sonnet-4-5", max_tokens: 100, messages: [{ role: "user", content: "hi" }] }
    const eventType = (p: Loose) => (p.type === "content_block_start" || p.type === "content_block_delta" ? `${p.type}:${p.content_block?.type ?? p.delta.type}` : String(p.type))
    // newer usage fields (cache breakdown, tier, region) the fake does not model
    const usageExtras = ["usage.cache_creation", "usage.service_tier", "usage.inference_geo"]

    it.scoped("JSON: anthropic/anthropic-text.json", () =>
      Effect.gen(function* () {
        const fake = yield* fakeOutput({ reply: { text } }, "/v1/messages", messages)
        sameShape("messages JSON", fake, [JSON.parse(readFixture("anthropic/anthropic-text.json"))], usageExtras)
      }))

    it.scoped("a text stream: anthropic/anthropic-text.chunks.txt", () =>
      Effect.gen(function* () {
        const fake = yield* fakeOutput({ reply: { text } }, "/v1/messages", { ...messages, stream: true })
        sameKinds("messages stream", fake, recordedLines("anthropic/anthropic-text.chunks.txt"), eventType, usageExtras.map((f) => `message.${f}`))
      }))

    it.scoped("text then a tool call: anthropic/anthropic-json-tool.2.chunks.txt", () =>
      Effect.gen(function* () {
        const fake = yield* fakeOutput({ reply: { text, toolCalls: [{ name: "json", arguments: "{\"a\":1}" }] } }, "/v1/messages", { ...messages, stream: true })
        const recorded = recordedLines("anthropic/anthropic-json-tool.2.chunks.txt")
        // pings come at the API's whim: compare the order without them
        const noPing = (all: ReadonlyArray<Loose>) => all.filter((e) => e.type !== "ping")
        sameKinds("messages tool stream", noPing(fake), noPing(recorded), eventType, [...usageExtras.map((f) => `message.${f}`), "context_management"])
      }))
  })

  describe("Gemini", () => {
    const body = { contents: [{ role: "user", parts: [{ text: "hi" }] }] }
    const chunkKind = (p: Loose) => (p.candidates[0].finishReason !== undefined ? "final" : p.candidates[0].content.parts[0].functionCall !== undefined ? "call" : "text")
    // per-modality token details, and the thought count of a thinking model when the fake thinks not
    const usageExtras = ["usageMetadata.promptTokensDetails", "usageMetadata.thoughtsTokenCount"]

    it.scoped("JSON: gemini/google-text.json", () =>
      Effect.gen(function* () {
        const fake = yield* fakeOutput({ reply: { text, signature: "c2ln" } }, "/v1beta/models/gemini-3-pro-preview:generateContent", body)
        sameShape("generateContent", fake, [JSON.parse(readFixture("gemini/google-text.json"))], usageExtras)
      }))

    it.scoped("a text stream: gemini/google-text.chunks.txt", () =>
      Effect.gen(function* () {
        const fake = yield* fakeOutput({ reply: { text, signature: "c2ln" } }, "/v1beta/models/gemini-3-pro-preview:streamGenerateContent?alt=sse", body)
        sameKinds("streamGenerateContent", fake, recordedLines("gemini/google-text.chunks.txt"), chunkKind, usageExtras)
      }))

    it.scoped("a function call: gemini/google-tool-call.chunks.txt", () =>
      Effect.gen(function* () {
        const fake = yield* fakeOutput(
          { reply: { text: "", signature: "c2ln", toolCalls: [{ name: "weather", arguments: "{\"location\":\"Paris\"}" }] } },
          "/v1beta/models/gemini-3-pro-preview:streamGenerateContent?alt=sse",
          body
        )
        sameKinds("streamGenerateContent call", fake, recordedLines("gemini/google-tool-call.chunks.txt"), chunkKind, usageExtras)
      }))

    it.scoped("a 429 body: gemini/google-429-retry-info.json", () =>
      Effect.gen(function* () {
        const fake = yield* fakeOutput({}, "/v1beta/models/gemini-2.5-flash:generateContent", body, [{ _tag: "RateLimit", retryAfterSeconds: 30 }])
        // QuotaFailure and Help details: the fake sends RetryInfo only
        sameShape("gemini 429", fake, [JSON.parse(readFixture("gemini/google-429-retry-info.json"))], ["error.details[].violations", "error.details[].links"])
      }))
  })

  describe("Ollama", () => {
    const body = { model: "phi3", messages: [{ role: "user", content: "hi" }] }
    it.scoped("a stream: ollama/chat_completion_test_response_stream.txt", () =>
      Effect.gen(function* () {
        const fake = yield* fakeOutput({ reply: { text } }, "/api/chat", body)
        const recorded = readFixture("ollama/chat_completion_test_response_stream.txt").split(/\r?\n/).filter((l) => l.trim() !== "").map((l) => JSON.parse(l))
        sameKinds("ollama stream", fake, recorded, (p: Loose) => (p.done === true ? "done" : "delta"), ["prompt_eval_duration"])
      }))

    it.scoped("a tool call, JSON: ollama/chat_completion_function_call_response.txt", () =>
      Effect.gen(function* () {
        const fake = yield* fakeOutput({ reply: { text: "", toolCalls: [{ name: "f", arguments: "{\"testInput\":\"x\"}" }] } }, "/api/chat", { ...body, stream: false })
        sameShape("ollama JSON", fake, [JSON.parse(readFixture("ollama/chat_completion_function_call_response.txt"))], ["prompt_eval_duration"])
      }))
  })
})
