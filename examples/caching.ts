/**
 * Prompt caching: one long system prompt, marked as a cache breakpoint, over three calls to
 * Anthropic's wire format. The first call writes the prompt to the cache, the next two read
 * it; usage says how many tokens went each way, and the model catalog's cache rates price
 * them. Runs against the built-in fake provider, with no key.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Console, Effect, Layer } from "effect"
import { Anthropic, KeyPool, LanguageModel, Message, RateLimiter, Transport, Usage } from "../src/index.js"
import * as Testing from "../src/Testing.js"

const model = "claude-sonnet-4-5"

// a prompt past the 1024-token minimum a provider caches
const rules = Message.cached(Message.system("You are the reference desk of a large library. Cite the shelf mark of every book you name. ".repeat(60)))
const questions = ["Where are the atlases?", "Do you lend maps?", "When do you open on Sundays?"]

const program = Effect.gen(function* () {
  const price = (yield* Usage.modelInfo("anthropic", model))!.price
  let withCache = 0
  let withoutCache = 0
  for (const [i, question] of questions.entries()) {
    const { usage } = yield* LanguageModel.chat(Message.request([rules, Message.user(question)]))
    const cost = Usage.costOf(price, usage)
    withCache += cost
    // the same tokens, had nothing been cached
    withoutCache += Usage.costOf(price, { ...usage, cachedInputTokens: 0, cacheWriteTokens: 0 })
    yield* Console.log(
      `call ${i + 1}: ${usage.inputTokens} input tokens, ${usage.cacheWriteTokens ?? 0} written to the cache, ` +
        `${usage.cachedInputTokens ?? 0} read from it: $${cost.toFixed(6)}`
    )
  }
  const saved = withoutCache - withCache
  yield* Console.log(`without caching $${withoutCache.toFixed(6)}, with it $${withCache.toFixed(6)}: saved $${saved.toFixed(6)} (${Math.round((saved / withoutCache) * 100)}%)`)
})

const Claude = Layer.unwrapScoped(
  Effect.map(Testing.FakeProvider.make({ reply: { text: "Second floor, shelf G." } }), (fake) =>
    Anthropic.layer({ model, baseUrl: fake.url }).pipe(
      Layer.provide(KeyPool.layer({ providerId: "anthropic", keys: ["sk-ant-fake"] })),
      Layer.provide(RateLimiter.unlimited),
      Layer.provide(Transport.layerUndici)
    ))
)

NodeRuntime.runMain(program.pipe(Effect.provide(Claude)))
