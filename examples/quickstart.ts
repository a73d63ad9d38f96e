/**
 * The README's quickstart: a program that needs a LanguageModel, and the model it gets. With
 * OPENAI_API_KEY set it calls OpenAI; without, the same stack talks to the built-in fake provider.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Console, Effect } from "effect"
import { LanguageModel, ProviderConfig, Transport } from "../src/index.js"
import * as Testing from "../src/Testing.js"

// 1. The program needs a LanguageModel; it does not know which one.
const program = Effect.gen(function* () {
  const reply = yield* LanguageModel.chat({ system: "Be brief.", prompt: "Say hello in five words." })
  yield* Console.log(`${reply.provider}/${reply.model}: ${reply.text}`)
  yield* Console.log(`usage: ${reply.usage.inputTokens} in, ${reply.usage.outputTokens} out`)
})

// 2. The model: by its name (gpt-* is OpenAI; keys from OPENAI_API_KEY, one or a comma-separated
//    pool), or the same stack against a fake server on loopback that answers as OpenAI does.
const Model = process.env.OPENAI_API_KEY
  ? ProviderConfig.forModel("gpt-4o-mini")
  : Testing.FakeProvider.layerModel("gpt-4o-mini", { reply: { text: "Hello from the fake provider!" } })

NodeRuntime.runMain(program.pipe(Effect.provide(Model), Effect.provide(Transport.layerUndici)))
