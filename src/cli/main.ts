/** The `effect-llm` command line: `chat` streams one reply, `batch` runs a JSONL file of prompts. */
import { Command } from "@effect/cli"
import * as Effect from "effect/Effect"
import { readFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { batch } from "./batch.js"
import { chat } from "./chat.js"

/** The version of the package this file belongs to (src/cli or dist/esm/cli, by walking up). */
export const version = ((): string => {
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as { name?: string; version?: string }
      if (pkg.name === "effect-llm" && pkg.version !== undefined) return pkg.version
    } catch {
      // no package.json here (or dist/cjs's, without a name): look further up
    }
    if (dirname(dir) === dir) return "unknown"
  }
})()

export const command = Command.make("effect-llm").pipe(
  Command.withDescription("call LLM providers from the terminal"),
  Command.withSubcommands([chat, batch])
)

/** Runs the command line; `onRun` is called when a command starts, i.e. once its arguments parsed. */
export const run = (argv: ReadonlyArray<string>, onRun: () => void) =>
  Command.run(
    command.pipe(Command.transformHandler((handler) => Effect.andThen(Effect.sync(onRun), handler))),
    { name: "effect-llm", version }
  )(argv)
