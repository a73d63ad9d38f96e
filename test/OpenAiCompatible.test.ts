import { NodeHttpClient } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { KeyPool, LanguageModel, Message, OpenAiCompatible, RateLimiter, Testing } from "../src/index.js"

describe("smoke", () => {
  it.scoped("chat and stream against the fake", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({ reply: { text: "Hello there, world!", chunks: 4 } })
      const Stack = OpenAiCompatible.layer({ model: "gpt-4o-mini", baseUrl: fake.baseUrl }).pipe(
        Layer.provide(KeyPool.layer({ providerId: "openai", keys: ["k1", "k2"] })),
        Layer.provide(RateLimiter.unlimited),
        Layer.provide(NodeHttpClient.layerUndici)
      )
      const [r, s] = yield* Effect.gen(function* () {
        const r = yield* LanguageModel.chat(Message.request("hi"))
        const s = yield* LanguageModel.collect(LanguageModel.stream(Message.request("hi")))
        return [r, s] as const
      }).pipe(Effect.provide(Stack))
      expect(r.text).toBe("Hello there, world!")
      expect(s.text).toBe("Hello there, world!")
      expect({ ...s, id: "" }).toEqual({ ...r, id: "" })
    }))
})
