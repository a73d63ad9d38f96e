/** `effect-llm chat`: streams one reply to the terminal; the reply on stdout, the rest on stderr. */
import { Args, Command } from "@effect/cli"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import { LanguageModel } from "../LanguageModel.js"
import * as Message from "../Message.js"
import { summaryOf } from "./help.js"
import { baseUrl, config, fake, model, provider, withModel } from "./model.js"

export const chat = Command.make(
  "chat",
  { prompt: Args.text({ name: "prompt" }), model, provider, baseUrl, config, fake },
  (args) =>
    withModel(
      args,
      () => Effect.gen(function* () {
        const stream = Stream.unwrap(Effect.map(LanguageModel, (m) => m.stream(Message.request(args.prompt))))
        let finish: Message.Finish | undefined
        let wrote = false
        yield* Stream.runForEach(stream, (event) =>
          Effect.sync(() => {
            if (event._tag === "TextDelta") {
              wrote = true
              process.stdout.write(event.text)
            } else if (event._tag === "ToolCall") {
              wrote = true
              process.stdout.write(`\n[tool call ${event.name}(${event.arguments})]`)
            } else if (event._tag === "Finish") finish = event
          })).pipe(
            // stdout keeps only the reply; the failure goes to stderr as one line (withModel's), and exit code 1
            Effect.tapError(() => Effect.sync(() => wrote && process.stdout.write("\n")))
          )
        process.stdout.write("\n")
        if (finish !== undefined) {
          const u = finish.usage
          yield* Console.error(
            `[${finish.provider}:${finish.model}] ${finish.finishReason}; tokens in ${u.inputTokens}, out ${u.outputTokens}${u.estimated ? " (estimated)" : ""}`
          )
        }
      })
    )
).pipe(Command.withDescription(summaryOf("chat")))
