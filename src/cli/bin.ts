#!/usr/bin/env node
/**
 * The `effect-llm` executable.
 *
 * @since 0.1.0
 */
import { NodeContext, NodeRuntime } from "@effect/platform-node"
import * as Effect from "effect/Effect"
import { run } from "./main.js"

run(process.argv).pipe(
  // typed failures are the user's to fix: a message and exit code 1, no stack trace
  Effect.catchTag("CliError", (error) =>
    Effect.sync(() => {
      process.stderr.write(`effect-llm: ${error.message}\n`)
      process.exitCode = 1
    })),
  Effect.provide(NodeContext.layer),
  NodeRuntime.runMain({ disableErrorReporting: false })
)
