/**
 * Cache reads and writes, and a router's cost and upstream provider, read from each API's own
 * usage fields: recorded responses where the fixtures have them, documented shapes otherwise.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Stream } from "effect"
import { LanguageModel, Message, Usage } from "../../../src/index.js"
import { fromWireResponse as anthropicReply } from "../../../src/internal/providers/anthropic/response.js"
import { fromWireResponse as geminiReply } from "../../../src/internal/providers/gemini/response.js"
import { fromWireResponse as chatReply } from "../../../src/internal/providers/openaiChat/response.js"
import { ChunkParser } from "../../../src/internal/providers/openaiChat/stream.js"
import { fromWireResponse as responsesReply, usageOf as responsesUsage } from "../../../src/internal/providers/openaiResponses/response.js"
import { fixtureLines, hasFixtures, readFixture } from "../../support/fixtures.js"
import { runParser } from "../../support/parserRun.js"
import { parse } from "yaml"

const request = Message.request("hi")
const usageOf = (response: Message.ChatResponse | { readonly _tag: string }): Message.Usage => {
  if ("_tag" in response) throw new Error(`not a response: ${response._tag}`)
  return response.usage
}

describe.skipIf(!hasFixtures)("cache usage from recorded responses", () => {
  it("DeepSeek's stream: prompt_tokens_details.cached_tokens (and prompt_cache_hit_tokens) as cache reads", () => {
    const run = runParser(new ChunkParser("deepseek", "deepseek-reasoner", request), fixtureLines("openai-compatible/deepseek-tool-call.chunks.txt"))
    expect(run.finish?.usage).toMatchObject({ inputTokens: 339, outputTokens: 83, cachedInputTokens: 320, reasoningTokens: 39, estimated: false })
  })

  it("OpenAI's stream: the final chunk's cached_tokens", () => {
    const frames = readFixture("openai-chat/openai_artifact_call.txt").split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6))
    const run = runParser(new ChunkParser("openai", "gpt-4o", request), frames)
    expect(run.finish?.usage.cachedInputTokens).toBe(33)
  })

  it("Anthropic's recorded body: cache_read_input_tokens and cache_creation_input_tokens, both 0, both reported", () => {
    const usage = usageOf(anthropicReply("anthropic", "claude-sonnet-4-5", request, readFixture("anthropic/anthropic-text.json")))
    expect(usage).toEqual({ inputTokens: 12, outputTokens: 29, totalTokens: 41, cachedInputTokens: 0, cacheWriteTokens: 0, estimated: false })
  })

  it("Responses' recorded stream: input_tokens_details.cached_tokens and cache_write_tokens", () => {
    const cassette = parse(readFixture("multi-turn/openai-responses/test_openai_responses_phase_streamed_on_part_start.yaml")) as {
      interactions: Array<{ response: { body: { string: string } } }>
    }
    const completed = cassette.interactions[0]!.response.body.string.split("\n").find((l) => l.includes("\"response.completed\""))!
    const usage = responsesUsage(JSON.parse(completed.slice(completed.indexOf("{"))).response.usage)
    expect(usage).toEqual({ inputTokens: 63, outputTokens: 69, totalTokens: 132, reasoningTokens: 26, cachedInputTokens: 0, cacheWriteTokens: 0, estimated: false })
  })
})

describe("cache usage from documented shapes", () => {
  it("Anthropic: input_tokens leaves reads and writes out; the unified inputTokens holds them", () => {
    const body = JSON.stringify({
      id: "msg_1",
      model: "claude-sonnet-4-5",
      content: [{ type: "text", text: "ok" }],
      stop_reason: "end_turn",
      usage: { input_tokens: 50, cache_creation_input_tokens: 1_000, cache_read_input_tokens: 2_000, output_tokens: 10 }
    })
    expect(usageOf(anthropicReply("anthropic", "claude-sonnet-4-5", request, body)))
      .toEqual({ inputTokens: 3_050, outputTokens: 10, totalTokens: 3_060, cachedInputTokens: 2_000, cacheWriteTokens: 1_000, estimated: false })
  })

  it("Responses, Gemini and DeepSeek's own field", () => {
    const responses = JSON.stringify({
      id: "r",
      status: "completed",
      output: [],
      usage: { input_tokens: 2_000, output_tokens: 5, input_tokens_details: { cached_tokens: 1_536, cache_write_tokens: 0 } }
    })
    expect(usageOf(responsesReply("openai", "gpt-5", request, responses))).toMatchObject({ inputTokens: 2_000, cachedInputTokens: 1_536, cacheWriteTokens: 0 })
    const gemini = JSON.stringify({
      candidates: [{ content: { parts: [{ text: "ok" }] }, finishReason: "STOP" }],
      usageMetadata: { promptTokenCount: 2_000, cachedContentTokenCount: 1_500, candidatesTokenCount: 20, totalTokenCount: 2_020 }
    })
    expect(usageOf(geminiReply("gemini", "gemini-2.5-flash", request, gemini))).toMatchObject({ inputTokens: 2_000, cachedInputTokens: 1_500 })
    const deepseek = JSON.stringify({
      id: "d",
      choices: [{ message: { content: "ok" }, finish_reason: "stop" }],
      usage: { prompt_tokens: 400, completion_tokens: 5, total_tokens: 405, prompt_cache_hit_tokens: 384, prompt_cache_miss_tokens: 16 }
    })
    expect(usageOf(chatReply("deepseek", "deepseek-chat", request, deepseek))).toMatchObject({ inputTokens: 400, cachedInputTokens: 384 })
  })

  it("OpenRouter: the cost it reports, its cache writes and the upstream provider, in chat and stream alike", () => {
    const usage = {
      prompt_tokens: 194,
      completion_tokens: 2,
      total_tokens: 196,
      cost: 0.95,
      cost_details: { upstream_inference_cost: 19 },
      prompt_tokens_details: { cached_tokens: 0, cache_write_tokens: 100, audio_tokens: 0 },
      completion_tokens_details: { reasoning_tokens: 0 }
    }
    const body = JSON.stringify({ id: "gen-1", provider: "Anthropic", model: "anthropic/claude-sonnet-4.5", choices: [{ message: { content: "ok" }, finish_reason: "stop" }], usage })
    const response = chatReply("openrouter", "anthropic/claude-sonnet-4.5", request, body) as Message.ChatResponse
    expect(response.upstreamProvider).toBe("Anthropic")
    expect(response.usage).toEqual({ inputTokens: 194, outputTokens: 2, totalTokens: 196, reasoningTokens: 0, cachedInputTokens: 0, cacheWriteTokens: 100, cost: 0.95, estimated: false })
    const frames = [
      { id: "gen-1", provider: "Anthropic", model: "anthropic/claude-sonnet-4.5", choices: [{ index: 0, delta: { content: "ok" }, finish_reason: null }] },
      { id: "gen-1", provider: "Anthropic", model: "anthropic/claude-sonnet-4.5", choices: [{ index: 0, delta: {}, finish_reason: "stop" }] },
      { id: "gen-1", provider: "Anthropic", model: "anthropic/claude-sonnet-4.5", choices: [], usage },
      "[DONE]"
    ]
    const run = runParser(new ChunkParser("openrouter", "anthropic/claude-sonnet-4.5", request), frames)
    expect(run.finish?.upstreamProvider).toBe("Anthropic")
    expect(run.finish?.usage).toEqual(response.usage)
  })

  it.effect("a collected stream carries the upstream provider, as chat does", () =>
    Effect.gen(function* () {
      const collected = yield* LanguageModel.collect(Stream.fromIterable(LanguageModel.responseToEvents({
        id: "1",
        model: "m",
        provider: "openrouter",
        text: "hi",
        toolCalls: [],
        finishReason: "stop",
        usage: { inputTokens: 1, outputTokens: 1, totalTokens: 2, estimated: false },
        upstreamProvider: "Groq"
      })))
      expect(collected.upstreamProvider).toBe("Groq")
    }))
})

describe("cost with cache reads and writes", () => {
  it.effect("the catalog's cache-read and cache-write rates price the recorded DeepSeek usage and a documented Anthropic one", () =>
    Effect.gen(function* () {
      const deepseek = yield* Usage.modelInfo("deepseek", "deepseek-chat")
      expect(deepseek).toBeDefined()
      const price = deepseek!.price
      expect(price.cachedInputPerMillion).toBeLessThan(price.inputPerMillion)
      const usage: Message.Usage = { inputTokens: 339, outputTokens: 83, cachedInputTokens: 320, totalTokens: 422, estimated: false }
      expect(Usage.costOf(price, usage)).toBeCloseTo((19 * price.inputPerMillion + 320 * price.cachedInputPerMillion! + 83 * price.outputPerMillion) / 1e6, 12)

      const claude = (yield* Usage.modelInfo("anthropic", "claude-sonnet-4-5-20250929"))!
      expect(claude.contextWindow).toBeGreaterThanOrEqual(200_000)
      const rates = claude.price
      // Anthropic's published ratios: a 5-minute write costs 1.25×, a read 0.1× the input price
      expect(rates.cacheWritePerMillion! / rates.inputPerMillion).toBeCloseTo(1.25, 5)
      expect(rates.cachedInputPerMillion! / rates.inputPerMillion).toBeCloseTo(0.1, 5)
      const cached: Message.Usage = { inputTokens: 3_050, outputTokens: 10, totalTokens: 3_060, cachedInputTokens: 2_000, cacheWriteTokens: 1_000, estimated: false }
      expect(Usage.costOf(rates, cached)).toBeCloseTo(
        (50 * rates.inputPerMillion + 2_000 * rates.cachedInputPerMillion! + 1_000 * rates.cacheWritePerMillion! + 10 * rates.outputPerMillion) / 1e6,
        12
      )
      // past its long-context threshold, the whole request is priced at the tier's rates
      const tier = rates.tiers?.[0]
      expect(tier?.aboveInputTokens).toBe(200_000)
      expect(Usage.costOf(rates, { inputTokens: 300_000, outputTokens: 0 })).toBeCloseTo(300_000 * tier!.inputPerMillion / 1e6, 9)
    }))
})
