/**
 * The words of the command line: each option's flags and description (the parser's
 * descriptions are these), and `--help` as the CLI writes it, wrapped to 100 columns, the key
 * variables listed once. `@effect/cli`'s own help is not shown: it describes every option's
 * type in placeholder text and repeats the description of each subcommand.
 */
import * as registry from "../internal/providers/registry.js"

/** How one option reads in `--help`. */
export interface OptionHelp {
  readonly flags: string
  readonly text: string
}

const providerNames = Object.keys(registry.providers)

export const optionHelp = {
  model: {
    flags: "-m, --model MODEL",
    text: "model name, or provider:model (default: gpt-4o-mini, or the only model of --config)"
  },
  provider: {
    flags: "--provider NAME",
    text: `the provider of --model when its name does not tell: ${providerNames.join(", ")}`
  },
  baseUrl: { flags: "--base-url URL", text: "where the provider is served (default: the provider's own)" },
  config: { flags: "--config FILE", text: "a provider.json: its models, keys, limits and retries" },
  fake: { flags: "--fake", text: "the built-in fake provider, which echoes the prompt: no key, no network" },
  out: { flags: "-o, --out FILE", text: "the results file (JSONL), appended to and read to resume (required)" },
  concurrency: { flags: "-c, --concurrency N", text: "requests in flight at once, at least 1 (default: 8)" },
  retries: {
    flags: "--retries N",
    text: "retries of an item's retryable failure, 0 or more; each is one more HTTP call " +
      "(default: 2, or the --config model's max_retries)"
  },
  batchApi: {
    flags: "--batch-api",
    text: "send the lines through the provider's batch API (OpenAI, Anthropic, Gemini): half the price, " +
      "done within a day; the batch ids go to a state file beside --out, so a rerun resumes polling"
  },
  cancel: { flags: "--cancel", text: "with --batch-api: cancel the batches in flight, then write what they finished" },
  pollInterval: { flags: "--poll-interval SECONDS", text: "with --batch-api: the first wait between polls, growing to a minute (default: 10)" },
  help: { flags: "-h, --help", text: "this help" }
} as const satisfies Record<string, OptionHelp>

/** The flags each command takes, for "did you mean" on an unknown one. */
export const flagsOf = (command: "chat" | "batch" | undefined): ReadonlyArray<string> => {
  const shared = [optionHelp.model, optionHelp.provider, optionHelp.baseUrl, optionHelp.config, optionHelp.fake, optionHelp.help]
  const own = command === "batch" ? [optionHelp.out, optionHelp.concurrency, optionHelp.retries, optionHelp.batchApi, optionHelp.cancel, optionHelp.pollInterval] : []
  const all = command === undefined ? [optionHelp.help, { flags: "--version" }] : [...own, ...shared]
  return all.flatMap((o) => o.flags.split(/,\s*/).map((flag) => flag.split(" ")[0]!))
}

const width = 100

/** `text` in lines of at most `width` columns, each after `indent` spaces (a word longer than a line stays whole). */
export const wrap = (text: string, indent: number, first = indent): Array<string> => {
  const lines: Array<string> = []
  let line = ""
  let room = width - first
  for (const word of text.split(/\s+/).filter((w) => w.length > 0)) {
    if (line.length > 0 && line.length + 1 + word.length > room) {
      lines.push(line)
      line = word
      room = width - indent
    } else line = line.length === 0 ? word : `${line} ${word}`
  }
  if (line.length > 0) lines.push(line)
  return lines.map((l, i) => `${" ".repeat(i === 0 ? first : indent)}${l}`)
}

/** Rows of `left  right`, the right column wrapped beside the left. */
const table = (rows: ReadonlyArray<readonly [string, string]>): Array<string> => {
  const left = Math.max(...rows.map(([l]) => l.length)) + 4
  return rows.flatMap(([l, r]) => {
    const [head = "", ...rest] = wrap(r, left)
    return [`  ${l}`.padEnd(left) + head.trimStart(), ...rest]
  })
}

const keyLines = (): Array<string> => {
  const needed = Object.entries(registry.providers).filter(([, row]) => !("keyOptional" in row && row.keyOptional === true))
  const optional = Object.entries(registry.providers).filter(([, row]) => "keyOptional" in row && row.keyOptional === true)
  return [
    ...wrap(
      `Each provider's key comes from its variable, one key or a comma-separated list: ` +
        `${needed.map(([name, row]) => `${row.envVar} (${name})`).join(", ")}; ` +
        `${optional.map(([name]) => name).join(" and ")} need none on their own machine. ` +
        `Or from --config. Without a key, try --fake.`,
      2
    )
  ]
}

const commands: Record<"chat" | "batch", { readonly usage: string; readonly summary: string; readonly about: string; readonly options: ReadonlyArray<OptionHelp> }> = {
  chat: {
    usage: "effect-llm chat PROMPT [options]",
    summary: "stream one reply to the terminal",
    about: "Streams one reply to the terminal: the reply on stdout; the model, finish reason and tokens on stderr. " +
      "Exit code 0 when the reply finished, 1 when it failed, 2 on a usage error.",
    options: [optionHelp.model, optionHelp.provider, optionHelp.baseUrl, optionHelp.config, optionHelp.fake, optionHelp.help]
  },
  batch: {
    usage: "effect-llm batch FILE --out FILE [options]",
    summary: "run a JSONL file of prompts; resumable",
    about: `Runs a JSONL file of prompts, one a line: a JSON string, or a ChatRequest with an optional "id" ` +
      `({ "id": "q1", "prompt": "…" } or { "messages": [{ "role": "user", "content": "…" }] }). ` +
      "Each line ends as one line of --out, written as it finishes; run it again to resume, skipping the ids already there. " +
      "Progress goes to stderr, the summary to stdout. " +
      "Exit code 0 when every line succeeded, 1 when one failed or was invalid, 2 on a usage error, 130 or 143 when stopped.",
    options: [
      optionHelp.out,
      optionHelp.concurrency,
      optionHelp.retries,
      optionHelp.batchApi,
      optionHelp.cancel,
      optionHelp.pollInterval,
      optionHelp.model,
      optionHelp.provider,
      optionHelp.baseUrl,
      optionHelp.config,
      optionHelp.fake,
      optionHelp.help
    ]
  }
}

/** One line on what a command does. */
export const summaryOf = (command: "chat" | "batch"): string => commands[command].summary

/** `--help` of `command` (the whole CLI when undefined); `bold` styles the headings. */
export const help = (command: "chat" | "batch" | undefined, version: string, bold: (text: string) => string): string => {
  const lines: Array<string> = []
  if (command === undefined) {
    lines.push(`effect-llm ${version}: call LLM providers from the terminal`, "", bold("Usage"))
    lines.push(
      ...table([
        ...Object.values(commands).map((c) => [c.usage, c.summary] as const),
        ["effect-llm COMMAND --help", "the options of a command"],
        ["effect-llm --version", "the version"]
      ])
    )
  } else {
    const c = commands[command]
    lines.push(c.usage, "", ...wrap(c.about, 0), "", bold("Options"), ...table(c.options.map((o) => [o.flags, o.text] as const)))
  }
  lines.push("", bold("Keys"), ...keyLines(), "", bold("Colour"), "  only on a terminal, and never with NO_COLOR set")
  return lines.join("\n") + "\n"
}
