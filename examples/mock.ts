/** Code that needs a LanguageModel, run on a scripted mock. */
import { Console, Effect } from "effect"
import { LanguageModel, LlmError, Message } from "../src/index.js"
import * as Testing from "../src/Testing.js"

// The code under test: a title for a text, or a default one while the model is rate limited.
const titleFor = (text: string) =>
  LanguageModel.chat(Message.request([Message.system("Reply with a title of at most five words."), Message.user(text)])).pipe(
    Effect.map((reply) => reply.text.trim()),
    Effect.catchTag("RateLimitError", () => Effect.succeed("Untitled"))
  )

// Scripted turns, in order: a reply, then a 429. No server, no keys.
const MockModel = Testing.mockModel([
  "Why Keys Need Pools",
  new LlmError.RateLimitError({ provider: "mock", model: "mock-model", message: "scripted 429" })
])

const program = Effect.gen(function* () {
  yield* Console.log(`first call:  ${yield* titleFor("An essay on sharing API keys across workers.")}`)
  yield* Console.log(`second call: ${yield* titleFor("The same essay, once more.")}`)
})

Effect.runPromise(program.pipe(Effect.provide(MockModel)))
