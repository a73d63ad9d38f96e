/** A model stack composed from layers, and a program that uses it; without OPENAI_API_KEY it runs against the fake provider. */
import { NodeRuntime } from "@effect/platform-node"
import { Config, ConfigProvider, Console, Effect, Layer } from "effect"
import { KeyPool, LanguageModel, Message, OpenAiCompatible, RateLimiter, Transport } from "../src/index.js"
import * as Testing from "../src/Testing.js"

// 1. The program needs a LanguageModel; it does not know which one.
const program = Effect.gen(function* () {
  const reply = yield* LanguageModel.chat(Message.request("Say hello in five words."))
  yield* Console.log(`${reply.provider}/${reply.model}: ${reply.text}`)
  yield* Console.log(`usage: ${reply.usage.inputTokens} in, ${reply.usage.outputTokens} out`)
})

// 2. The stack, read bottom-up. Build it once; everything provided the same layer shares it.
const OpenAi = (baseUrl?: string) =>
  OpenAiCompatible.layer({ model: "gpt-4o-mini", baseUrl }).pipe(
    // one key, or a comma-separated list for a pool
    Layer.provide(KeyPool.layerConfig({ providerId: "openai", keys: Config.redacted("OPENAI_API_KEY") })),
    Layer.provide(RateLimiter.layer({ requestsPerMinute: 500, tokensPerMinute: 200_000 })),
    Layer.provide(Transport.layerUndici)
  )

// 3. Without OPENAI_API_KEY, the same stack talks to the built-in fake provider, with made-up keys.
const FakeOpenAi = Layer.unwrapScoped(
  Effect.map(Testing.FakeProvider.make({ reply: { text: "Hello from the fake provider!" } }), (fake) => OpenAi(fake.baseUrl))
).pipe(Layer.provide(Layer.setConfigProvider(ConfigProvider.fromJson({ OPENAI_API_KEY: "sk-fake-1,sk-fake-2" }))))

NodeRuntime.runMain(program.pipe(Effect.provide(process.env.OPENAI_API_KEY ? OpenAi() : FakeOpenAi)))
