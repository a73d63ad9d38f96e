/** The `effect-llm` command line: `chat` streams one reply, `batch` runs a JSONL file of prompts. */
import { Command } from "@effect/cli"
import { batch } from "./batch.js"
import { chat } from "./chat.js"

export const command = Command.make("effect-llm").pipe(
  Command.withDescription("call LLM providers from the terminal"),
  Command.withSubcommands([chat, batch])
)

export const run = Command.run(command, { name: "effect-llm", version: "0.1.0" })
