#!/usr/bin/env node
/**
 * The `effect-llm` executable. Every problem is one line on stderr: exit code 2 when the
 * command line cannot run (see `--help`), 1 when the run failed, 130 or 143 when SIGINT or
 * SIGTERM stopped it.
 *
 * @since 0.1.0
 */
import * as HelpDoc from "@effect/cli/HelpDoc"
import * as ValidationError from "@effect/cli/ValidationError"
import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { defaultTeardown } from "@effect/platform/Runtime"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import { closest } from "../internal/closest.js"
import { colorEnabled, oneLine, withCliConsole } from "./console.js"
import { flagsOf, help as helpText } from "./help.js"
import { run, version } from "./main.js"

const report = (message: string, code: 1 | 2) => {
  process.stderr.write(`effect-llm: ${message}\n`)
  process.exitCode = code
}

// the subcommand the user meant, for the pointer to its --help
const args = process.argv.slice(2)
const subcommand = args.find((arg): arg is "chat" | "batch" => arg === "chat" || arg === "batch")
const help = `run 'effect-llm${subcommand === undefined ? "" : ` ${subcommand}`} --help'`

// --help is the CLI's own: short lines, each key variable once (see help.ts)
const flags = args.indexOf("--") < 0 ? args : args.slice(0, args.indexOf("--"))
if (args.length === 0 || flags.includes("--help") || flags.includes("-h")) {
  const bold = colorEnabled(process.stdout.isTTY, process.env) ? (text: string) => `\u001b[1m${text}\u001b[22m` : (text: string) => text
  process.stdout.write(helpText(subcommand, version, bold))
  process.exit(0)
}

/** The parser's report, with the flag meant by an unknown one. */
const usageMessage = (text: string): string => {
  const unknown = /unknown argument: '(-{1,2}[^']+)'/i.exec(text)?.[1]
  if (unknown === undefined) return text
  const meant = closest(unknown.split("=")[0]!, flagsOf(subcommand))
  return `unknown option ${unknown}${meant === undefined ? "" : `: did you mean ${meant}?`}`
}

// the signal that stopped the run, for its exit code: 128 + its number, as a shell reports it
// (runMain's own listeners interrupt the program; a second signal kills the process at once)
const signalCodes = { SIGINT: 130, SIGTERM: 143 } as const
let stoppedBy: keyof typeof signalCodes | undefined
for (const signal of ["SIGINT", "SIGTERM"] as const) process.once(signal, () => (stoppedBy ??= signal))

let running = false
withCliConsole(run(process.argv, () => (running = true)), () => !running).pipe(
  Effect.catchAll((error) =>
    Effect.sync(() => {
      if (ValidationError.isValidationError(error)) {
        const text = oneLine(HelpDoc.toAnsiText(error.error))
        return report(`${text.length === 0 ? "invalid command line" : usageMessage(text.replace(/[.:]$/, ""))}; ${help}`, 2)
      }
      if (error._tag === "CliError") return report(error.message, error.usage === true ? 2 : 1)
      return report(oneLine(String((error as { message?: unknown }).message ?? error)), 1)
    })),
  // a defect is a bug of ours: one line, and the whole cause only when asked for
  Effect.catchAllDefect((defect) =>
    Effect.sync(() => {
      if (process.env.EFFECT_LLM_DEBUG) process.stderr.write(Cause.pretty(Cause.die(defect)) + "\n")
      report(`internal error: ${oneLine(defect instanceof Error ? defect.message : String(defect))} (set EFFECT_LLM_DEBUG=1 for the trace)`, 1)
    })),
  Effect.provide(NodeContext.layer),
  NodeRuntime.runMain({
    disableErrorReporting: true,
    teardown: (exit, onExit) => (stoppedBy === undefined ? defaultTeardown(exit, onExit) : onExit(signalCodes[stoppedBy]))
  })
)
