/** What the CLI writes to the terminal: colour only on a terminal without `NO_COLOR`. */
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import { stripVTControlCharacters } from "node:util"

/** https://no-color.org: any non-empty `NO_COLOR` turns colour off; so does a pipe or a file. */
export const colorEnabled = (isTTY: boolean | undefined, env: Readonly<Record<string, string | undefined>>): boolean =>
  isTTY === true && (env.NO_COLOR === undefined || env.NO_COLOR === "")

const plain = (args: ReadonlyArray<unknown>): ReadonlyArray<unknown> =>
  args.map((arg) => (typeof arg === "string" ? stripVTControlCharacters(arg) : arg))

/**
 * Runs `self` with a Console that strips ANSI codes from what goes to a stream without
 * colour (`@effect/cli` styles its help and errors unconditionally), and that drops errors
 * written while `muteErrors()` holds: the parser prints its own report of a bad command
 * line, and the CLI prints one line of its own instead.
 */
export const withCliConsole = <A, E, R>(self: Effect.Effect<A, E, R>, muteErrors: () => boolean): Effect.Effect<A, E, R> =>
  Console.consoleWith((base) => {
    const outColor = colorEnabled(process.stdout.isTTY, process.env)
    const errColor = colorEnabled(process.stderr.isTTY, process.env)
    const console: Console.Console = {
      ...base,
      log: (...args) => base.log(...(outColor ? args : plain(args))),
      info: (...args) => base.info(...(outColor ? args : plain(args))),
      error: (...args) => (muteErrors() ? Effect.void : base.error(...(errColor ? args : plain(args)))),
      warn: (...args) => base.warn(...(errColor ? args : plain(args)))
    }
    return Console.withConsole(self, console)
  })

/** An error report as one line without styling. */
export const oneLine = (text: string): string => stripVTControlCharacters(text).split(/\s*\n\s*/).filter((l) => l.length > 0).join(" ").trim()
