import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Logger, Metric, Stream } from "effect"
import { KeyPool, LanguageModel, Message, OpenAiCompatible, RateLimiter, Transport, Usage } from "../src/index.js"
import * as Testing from "../src/Testing.js"

const stackOn = (baseUrl: string, tracker: Layer.Layer<Usage.UsageTracker>) =>
  OpenAiCompatible.layer({ model: "gpt-4o-mini", baseUrl }).pipe(
    Layer.provideMerge(tracker),
    Layer.provide(KeyPool.layer({ providerId: "openai", keys: ["k1"] })),
    Layer.provide(RateLimiter.unlimited),
    Layer.provide(Transport.layerUndici)
  )

describe("Usage", () => {
  it("add sums every count; an optional count stays absent only when both lack it; estimated when either is", () => {
    const a: Message.Usage = { inputTokens: 10, outputTokens: 5, totalTokens: 15, estimated: false }
    const b: Message.Usage = { inputTokens: 3, outputTokens: 2, totalTokens: 5, reasoningTokens: 1, estimated: true }
    expect(Usage.add(a, Usage.empty)).toEqual(a)
    expect(Usage.add(a, a)).toEqual({ inputTokens: 20, outputTokens: 10, totalTokens: 30, estimated: false })
    expect(Usage.add(a, b)).toEqual({ inputTokens: 13, outputTokens: 7, totalTokens: 20, reasoningTokens: 1, estimated: true })
    expect(Usage.add(b, { ...a, cachedInputTokens: 4 })).toEqual({
      inputTokens: 13,
      outputTokens: 7,
      totalTokens: 20,
      reasoningTokens: 1,
      cachedInputTokens: 4,
      estimated: true
    })
  })

  it.scoped("without Usage.layer nothing is tracked: the default tracker records nothing and prices with the catalog", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({ reply: { text: "hello there" } })
      const stack = OpenAiCompatible.layer({ model: "gpt-4o-mini", baseUrl: fake.baseUrl }).pipe(
        Layer.provide(KeyPool.layer({ providerId: "openai", keys: ["k1"] })),
        Layer.provide(RateLimiter.unlimited),
        Layer.provide(Transport.layerUndici)
      )
      yield* LanguageModel.chat(Message.request("hi")).pipe(Effect.provide(stack))
      const tracker = yield* Usage.UsageTracker
      expect(tracker).toBe(Usage.untracked)
      expect((yield* tracker.snapshot).entries).toEqual([])
      expect(tracker.prices).toEqual({})
      const info = yield* Usage.modelInfo("openai", "gpt-4o-mini")
      expect(info?.price.inputPerMillion).toBeGreaterThan(0)
      expect(yield* tracker.cost("openai", "gpt-4o-mini", { inputTokens: 1_000_000, outputTokens: 0, totalTokens: 1_000_000, estimated: false }))
        .toBe(info!.price.inputPerMillion)
    }))

  it("prices by exact name, provider-qualified name, longest prefix, and vendor-prefixed name", () => {
    const table: Usage.PriceTable = {
      "gpt-4o": { inputPerMillion: 2.5, outputPerMillion: 10 },
      "gpt-4o-mini": { inputPerMillion: 0.15, outputPerMillion: 0.6 },
      "groq/gpt-4o": { inputPerMillion: 1, outputPerMillion: 1 }
    }
    expect(Usage.priceOf(table, "openai", "gpt-4o")?.inputPerMillion).toBe(2.5)
    expect(Usage.priceOf(table, "openai", "gpt-4o-mini-2024-07-18")?.inputPerMillion).toBe(0.15)
    expect(Usage.priceOf(table, "groq", "gpt-4o")?.inputPerMillion).toBe(1)
    expect(Usage.priceOf(table, "openrouter", "openai/gpt-4o-mini")?.inputPerMillion).toBe(0.15)
    expect(Usage.priceOf(table, "openai", "text-davinci")).toBeUndefined()
  })

  it("costs cached input at the cached price and reasoning as output", () => {
    const price: Usage.Price = { inputPerMillion: 2, outputPerMillion: 8, cachedInputPerMillion: 0.5 }
    // 1M input of which 400k cached, 500k output (reasoning included)
    expect(Usage.costOf(price, { inputTokens: 1_000_000, cachedInputTokens: 400_000, outputTokens: 500_000 }))
      .toBeCloseTo(600_000 * 2 / 1e6 + 400_000 * 0.5 / 1e6 + 500_000 * 8 / 1e6, 10)
  })

  it.scoped("every provider response, chat and stream, feeds the tracker; reset clears it", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({ reply: { text: "Hello there, world!" } })
      const prices = { "gpt-4o-mini": { inputPerMillion: 1_000_000, outputPerMillion: 2_000_000 } }
      yield* Effect.gen(function* () {
        const a = yield* LanguageModel.chat(Message.request("hi"))
        const b = yield* LanguageModel.collect(LanguageModel.stream(Message.request("hello again")))
        yield* fake.setReply({ text: "no usage here", usage: false })
        const c = yield* LanguageModel.chat(Message.request("estimate me"))
        expect(c.usage.estimated).toBe(true)
        const snap = yield* Usage.snapshot
        expect(snap.entries).toHaveLength(1)
        const entry = snap.entries[0]!
        expect(entry.provider).toBe("openai")
        expect(entry.model).toBe("gpt-4o-mini")
        expect(entry.requests).toBe(3)
        expect(entry.estimatedRequests).toBe(1)
        const input = a.usage.inputTokens + b.usage.inputTokens + c.usage.inputTokens
        const output = a.usage.outputTokens + b.usage.outputTokens + c.usage.outputTokens
        expect(entry.inputTokens).toBe(input)
        expect(entry.outputTokens).toBe(output)
        expect(entry.totalTokens).toBe(a.usage.totalTokens + b.usage.totalTokens + c.usage.totalTokens)
        // the user's price overrides the default table
        expect(entry.cost).toBeCloseTo(input * 1 + output * 2, 6)
        expect(snap.total.requests).toBe(3)
        yield* Usage.reset
        expect((yield* Usage.snapshot).total.requests).toBe(0)
      }).pipe(Effect.provide(stackOn(fake.baseUrl, Usage.layer({ prices }))))
    }))

  it.scoped("a stream that fails before Finish records nothing; an unpriced model is counted as such", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({ reply: { text: "a b c d e f g h" } })
      yield* fake.inject({ _tag: "CutStream", afterChunks: 3 })
      yield* Effect.gen(function* () {
        const cut = yield* Stream.runDrain(LanguageModel.stream(Message.request("hi"))).pipe(Effect.flip)
        expect(cut).toMatchObject({ _tag: "StreamError", partial: true })
        expect((yield* Usage.snapshot).total.requests).toBe(0)
        yield* LanguageModel.chat(Message.request("hi"))
        const snap = yield* Usage.snapshot
        expect(snap.total.requests).toBe(1)
        expect(snap.total.unpricedRequests).toBe(1)
        expect(snap.total.cost).toBe(0)
      }).pipe(Effect.provide(stackOn(fake.baseUrl, Usage.layer({ prices: {}, replacePrices: true }))))
    }))

  it.effect("records bump the cost metric", () =>
    Effect.gen(function* () {
      const tracker = yield* Usage.make()
      const counter = Usage.costCounter.pipe(Metric.tagged("provider", "p"), Metric.tagged("model", "gpt-4o"))
      const before = (yield* Metric.value(counter)).count
      yield* tracker.record("p", "gpt-4o", { inputTokens: 1_000_000, outputTokens: 0, totalTokens: 1_000_000, estimated: false })
      expect((yield* Metric.value(counter)).count - before).toBeCloseTo(2.5, 9)
      expect(yield* tracker.cost("p", "gpt-4o", { inputTokens: 1_000_000, outputTokens: 0, totalTokens: 0, estimated: false })).toBe(2.5)
    }))

  it.scoped("caller-chosen model names cannot grow the tracker or the metric labels forever", () =>
    Effect.gen(function* () {
      const body = JSON.stringify({ id: "c", model: "m", choices: [{ message: { content: "hi" }, finish_reason: "stop" }], usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 } })
      const canned = Layer.succeed(Transport.Transport, {
        text: () => Effect.succeed({ status: 200, headers: {}, body }),
        stream: () => Effect.die("unused"),
        timeouts: true
      })
      const stack = OpenAiCompatible.layer({ model: "gpt-4o-mini", baseUrl: "http://127.0.0.1:1/v1", provider: "bounded" }).pipe(
        Layer.provideMerge(Usage.layer({ prices: { "name-": { inputPerMillion: 1, outputPerMillion: 1 } } })),
        Layer.provide(KeyPool.layer({ providerId: "bounded", keys: ["k1"] })),
        Layer.provide(RateLimiter.unlimited),
        Layer.provide(canned),
        Layer.provide(Transport.layerUndici)
      )
      const snapshot = yield* Effect.gen(function* () {
        yield* Effect.forEach(Array.from({ length: 400 }, (_, i) => i), (i) => LanguageModel.chat(Message.request("hi", { model: `name-${i}` })), { discard: true })
        return yield* Usage.snapshot
      }).pipe(Effect.provide(stack))
      const models = snapshot.entries.filter((e) => e.provider === "bounded").map((e) => e.model)
      expect(models.length).toBe(257)
      expect(models).toContain("other")
      expect(snapshot.total.requests).toBe(400)
      expect(snapshot.entries.find((e) => e.model === "other")?.requests).toBe(400 - 256)
      const labels = new Set<string>()
      for (const pair of yield* Metric.snapshot) {
        const tags = pair.metricKey.tags
        if (pair.metricKey.name === "effect_llm.client.requests" && tags.some((t) => t.key === "gen_ai.provider.name" && t.value === "bounded")) {
          for (const t of tags) if (t.key === "gen_ai.request.model") labels.add(t.value)
        }
      }
      expect(labels.size).toBeLessThanOrEqual(257)
      expect(labels.has("other")).toBe(true)
    }))

  it.effect("prices: yours first, then the cost a provider reported, then the model catalog; an unknown model is said once", () =>
    Effect.gen(function* () {
      const logs: Array<string> = []
      const logger = Logger.make(({ message }) => logs.push(String(message)))
      const tracker = yield* Usage.make({ prices: { "my-model": { inputPerMillion: 1, outputPerMillion: 2, cacheWritePerMillion: 4 } } })
      const usage = (extra: Partial<Message.Usage> = {}): Message.Usage => ({ inputTokens: 1_000_000, outputTokens: 1_000_000, totalTokens: 2_000_000, estimated: false, ...extra })
      // yours, cache writes at their rate
      expect(yield* tracker.cost("p", "my-model", usage({ cacheWriteTokens: 500_000 }))).toBeCloseTo(0.5 + 2 + 2, 9)
      // a reported cost is used where you named no price, even over the catalog's
      expect(yield* tracker.cost("openrouter", "openai/gpt-4o-mini", usage({ cost: 0.42 }))).toBe(0.42)
      expect(yield* tracker.cost("p", "my-model", usage({ cost: 0.42 }))).toBeCloseTo(3, 9)
      // the catalog's price, matched by a dated name
      const info = (yield* Usage.modelInfo("openai", "gpt-4o-mini"))!
      expect(yield* tracker.cost("openai", "gpt-4o-mini-2024-07-18", usage())).toBeCloseTo(info.price.inputPerMillion + info.price.outputPerMillion, 9)
      yield* Effect.gen(function* () {
        yield* tracker.record("p", "no-such-model-anywhere", usage())
        yield* tracker.record("p", "no-such-model-anywhere", usage())
      }).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, logger)))
      expect(logs.filter((line) => line.includes("no price for p/no-such-model-anywhere"))).toHaveLength(1)
      const snap = yield* tracker.snapshot
      expect(snap.total.unpricedRequests).toBe(2)
      // local servers are never priced by a vendor's list
      expect(yield* Usage.modelInfo("ollama", "gpt-oss:20b")).toBeUndefined()
      // replacePrices: your table alone
      const own = yield* Usage.make({ prices: {}, replacePrices: true })
      expect(yield* own.cost("openai", "gpt-4o-mini", usage())).toBeUndefined()
    }))

  it.effect("totals count cache writes, and a reported cost goes into the tracker's cost", () =>
    Effect.gen(function* () {
      const tracker = yield* Usage.make()
      yield* tracker.record("openrouter", "anthropic/claude-sonnet-4.5", {
        inputTokens: 3_000,
        outputTokens: 10,
        totalTokens: 3_010,
        cachedInputTokens: 2_000,
        cacheWriteTokens: 900,
        cost: 0.0123,
        estimated: false
      })
      const total = (yield* tracker.snapshot).total
      expect(total).toMatchObject({ cachedInputTokens: 2_000, cacheWriteTokens: 900, cost: 0.0123, unpricedRequests: 0 })
      expect(Usage.add({ inputTokens: 1, outputTokens: 1, totalTokens: 2, cacheWriteTokens: 3, cost: 0.5, estimated: false }, { inputTokens: 1, outputTokens: 1, totalTokens: 2, cacheWriteTokens: 4, cost: 0.25, estimated: false }))
        .toMatchObject({ cacheWriteTokens: 7, cost: 0.75 })
    }))
})
