/**
 * Every provider is a `Provider.Spec` made into a model by internal/request/model, so each gets
 * the same stream deadlines: a first-token timeout set on any of them fails the stream with
 * `TimeoutError { phase: "firstToken" }`. The fake answers after 2 s: without the deadline the
 * stream would succeed, so no clock needs reading (the deadlines are the transport's timers).
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Layer, Stream } from "effect"
import { Anthropic, Gemini, KeyPool, LanguageModel, Message, Ollama, OpenAiCompatible, OpenAiResponses, RateLimiter, Transport } from "../../../src/index.js"
import * as Testing from "../../../src/Testing.js"

describe("every provider's model shares the stream deadlines", () => {
  it.scopedLive("firstTokenTimeout works for every provider", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({ reply: { text: "late", delayMs: 2_000 } })
      const timeouts = { firstTokenTimeout: "150 millis", idleTimeout: "5 seconds" } as const
      const models = {
        chat: OpenAiCompatible.layer({ model: "m", baseUrl: fake.baseUrl, ...timeouts }),
        responses: OpenAiResponses.layer({ model: "m", baseUrl: fake.baseUrl, ...timeouts }),
        anthropic: Anthropic.layer({ model: "m", baseUrl: fake.url, ...timeouts }),
        gemini: Gemini.layer({ model: "m", baseUrl: `${fake.url}/v1beta`, ...timeouts }),
        ollama: Ollama.layer({ model: "m", baseUrl: fake.url, ...timeouts })
      }
      for (const [name, model] of Object.entries(models)) {
        const stack = model.pipe(
          Layer.provide(KeyPool.layer({ providerId: name, keys: ["k-adapter-test"] })),
          Layer.provide(RateLimiter.unlimited),
          Layer.provide(Transport.layerUndici)
        )
        const exit = yield* Effect.exit(Stream.runDrain(LanguageModel.stream(Message.request("hi"))).pipe(Effect.provide(stack)))
        expect(Exit.isFailure(exit), name).toBe(true)
        if (Exit.isFailure(exit) && exit.cause._tag === "Fail") {
          const error = exit.cause.error
          expect({ tag: error._tag, phase: "phase" in error ? error.phase : undefined }, name).toEqual({ tag: "TimeoutError", phase: "firstToken" })
        } else throw new Error(`${name}: expected a typed TimeoutError`)
      }
    }))
})
