/**
 * `effect-llm batch`: runs a JSONL file of prompts with a progress bar, appends results as it
 * goes, and resumes where it stopped.
 */
import { Args, Command, Options } from "@effect/cli"
import * as FileSystem from "@effect/platform/FileSystem"
import cliProgress from "cli-progress"
import * as Cause from "effect/Cause"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import * as Batch from "../Batch.js"
import { invalidField } from "../internal/request/validate.js"
import * as Message from "../Message.js"
import * as Usage from "../Usage.js"
import * as fileError from "../internal/fileError.js"
import { LanguageModel } from "../LanguageModel.js"
import { optionHelp, summaryOf } from "./help.js"
import * as batchApi from "./batchApi.js"
import { baseUrl, CliError, config, fake, httpRequests, model, provider, withModel } from "./model.js"

const InputObject = Schema.Struct({
  ...Message.ChatRequest.fields,
  messages: Schema.optional(Message.ChatRequest.fields.messages),
  id: Schema.optional(Schema.Union(Schema.String, Schema.Number.pipe(Schema.finite()))),
  prompt: Schema.optional(Schema.String)
})
const decodeInputObject = Schema.decodeUnknownEither(InputObject, { onExcessProperty: "ignore" })

/** One line of the input file, decoded: an item to run, or why it cannot be. */
export type InputLine =
  | { readonly _tag: "Item"; readonly line: number; readonly id: string; readonly request: Message.ChatRequest }
  | { readonly _tag: "Invalid"; readonly line: number; readonly id: string; readonly reason: string }

export const parseInputLine = (text: string, line: number): InputLine | undefined => {
  const trimmed = text.trim()
  if (trimmed.length === 0) return undefined
  const fallbackId = `line-${line}`
  let json: unknown
  try {
    json = JSON.parse(trimmed)
  } catch (error) {
    return { _tag: "Invalid", line, id: fallbackId, reason: `malformed JSON (${(error as Error).message})` }
  }
  if (typeof json === "string") return { _tag: "Item", line, id: fallbackId, request: Message.request(json) }
  const decoded = decodeInputObject(json)
  if (Either.isLeft(decoded)) {
    const issue = ParseResult.ArrayFormatter.formatErrorSync(decoded.left)[0]
    const where = issue === undefined || issue.path.length === 0 ? "" : ` at ${fieldPath(issue.path)}`
    // the line's own id, when it has a usable one, still names its result
    const raw = typeof json === "object" && json !== null ? (json as { readonly id?: unknown }).id : undefined
    const id = typeof raw === "string" || (typeof raw === "number" && Number.isFinite(raw)) ? String(raw) : fallbackId
    const problem = issue === undefined ? "invalid" : issueText(issue, valueAt(json, issue.path))
    return { _tag: "Invalid", line, id, reason: `not a prompt string or a ChatRequest${where}: ${problem}` }
  }
  const { id, prompt, messages, ...options } = decoded.right
  const resolvedId = id === undefined ? fallbackId : String(id)
  if (messages === undefined && prompt === undefined) {
    return { _tag: "Invalid", line, id: resolvedId, reason: `needs "messages" or "prompt"` }
  }
  const request: Message.ChatRequest = { ...options, messages: [...(messages ?? []), ...(prompt === undefined ? [] : [Message.user(prompt)])] }
  // a request no provider takes is an invalid line here, not a call (JSON has no NaN, but 1e999 reads as Infinity)
  const invalid = invalidField(request)
  if (invalid !== undefined) return { _tag: "Invalid", line, id: resolvedId, reason: `${invalid.path} ${invalid.problem}` }
  return { _tag: "Item", line, id: resolvedId, request }
}

/** What a list field holds, for a message that does not spell out its Schema. */
const listOf: Readonly<Record<string, string>> = {
  messages: `messages, like [{ "role": "user", "content": "…" }]`,
  tools: `tool definitions, like [{ "name": "…", "parameters": { … } }]`,
  toolCalls: `tool calls, like [{ "id": "…", "name": "…", "arguments": "{}" }]`,
  content: `parts, like [{ "type": "text", "text": "…" }]`,
  stop: "strings"
}

const valueAt = (json: unknown, path: ReadonlyArray<PropertyKey>): unknown =>
  path.reduce<unknown>((value, key) => (typeof value === "object" && value !== null ? (value as Record<PropertyKey, unknown>)[key] : undefined), json)

/** A wrong value in a few words: short values as they are, others by kind. */
const describeValue = (value: unknown): string => {
  if (typeof value === "string") return value.length <= 40 ? `the string ${JSON.stringify(value)}` : `a string of ${value.length} characters`
  if (Array.isArray(value)) return `a list of ${value.length}`
  if (typeof value === "object" && value !== null) return "an object"
  return String(value)
}

/**
 * One issue in one line. A Schema's own wording is kept when short ("Expected number, actual
 * "hot""); a type of a whole list or object (hundreds of characters) is said in words.
 */
const issueText = (issue: ParseResult.ArrayFormatterIssue, value: unknown): string => {
  const match = /^Expected ([\s\S]*), actual [\s\S]*$/.exec(issue.message)
  if (match === null) return issue.message
  const expected = match[1]!
  if (expected.length <= 60) return `expected ${expected}, got ${describeValue(value)}`
  const field = [...issue.path].reverse().find((key): key is string => typeof key === "string")
  const wanted = expected.startsWith("ReadonlyArray<")
    ? `a list${field !== undefined && Object.hasOwn(listOf, field) ? ` of ${listOf[field]}` : ""}`
    : expected.startsWith("{")
    ? "an object"
    : "another value"
  return `expected ${wanted}, got ${describeValue(value)}`
}

const fieldPath = (path: ReadonlyArray<PropertyKey>): string =>
  path.map((key, i) => (typeof key === "number" ? `[${key}]` : i === 0 ? String(key) : `.${String(key)}`)).join("")

/** What an output file already holds, read to resume. */
export interface Previous {
  /** Ids with a result: their lines are not run again. */
  readonly done: ReadonlySet<string>
  /** Lines already reported as an id clash: their records name an id that is not theirs. */
  readonly clashes: ReadonlySet<number>
  /** Where a last line cut off by a killed run starts (a character offset), if there is one. */
  readonly tornAt: number | undefined
  /** Other lines that are not JSON records (an older version left torn lines in place). */
  readonly unreadable: number
}

export const readPrevious = (content: string): Previous => {
  const done = new Set<string>()
  const clashes = new Set<number>()
  let tornAt: number | undefined
  let unreadable = 0
  let offset = 0
  for (const line of content.split("\n")) {
    const start = offset
    offset += line.length + 1
    if (line.trim().length === 0) continue
    let record: { id?: unknown; line?: unknown; error?: { _tag?: unknown } } | undefined
    try {
      record = JSON.parse(line) as typeof record
    } catch {
      // only the last line can be torn: every record is written whole with its newline
      if (offset > content.length) tornAt = start
      else unreadable++
      continue
    }
    if (record?.error?._tag === "DuplicateId" && typeof record.line === "number") clashes.add(record.line)
    else if (typeof record?.id === "string") done.add(record.id)
  }
  return { done, clashes, tornAt, unreadable }
}

const resultRecord = <E extends { readonly _tag: string; readonly message: string }>(id: string, line: number, result: Batch.Result<Message.ChatResponse, E>) =>
  Exit.match(result.result, {
    onSuccess: (response) => ({
      id,
      line,
      ok: true,
      provider: response.provider,
      model: response.model,
      text: response.text,
      ...(response.reasoning === undefined ? {} : { reasoning: response.reasoning }),
      ...(response.toolCalls.length === 0 ? {} : { toolCalls: response.toolCalls }),
      finishReason: response.finishReason,
      usage: response.usage,
      attempts: result.attempts,
      durationMs: result.durationMs
    }),
    onFailure: (cause) => {
      const tag = Batch.failureTag(result.result)
      const message = Option.match(Cause.failureOption(cause), { onNone: () => tag, onSome: (error) => error.message })
      return { id, line, ok: false, error: { _tag: tag, message }, attempts: result.attempts, durationMs: result.durationMs }
    }
  })

export const batch = Command.make(
  "batch",
  {
    input: Args.text({ name: "prompts.jsonl" }),
    out: Options.text("out").pipe(Options.withAlias("o"), Options.withDescription(optionHelp.out.text)),
    concurrency: Options.integer("concurrency").pipe(
      Options.withAlias("c"),
      Options.filterMap((n) => (n >= 1 ? Option.some(n) : Option.none()), "--concurrency must be at least 1"),
      Options.withDefault(8),
      Options.withDescription(optionHelp.concurrency.text)
    ),
    retries: Options.integer("retries").pipe(
      Options.filterMap((n) => (n >= 0 ? Option.some(n) : Option.none()), "--retries must be 0 or more"),
      Options.optional,
      Options.withDescription(optionHelp.retries.text)
    ),
    batchApi: Options.boolean("batch-api").pipe(Options.withDescription(optionHelp.batchApi.text)),
    cancel: Options.boolean("cancel").pipe(Options.withDescription(optionHelp.cancel.text)),
    pollInterval: Options.float("poll-interval").pipe(
      Options.filterMap((n) => (n > 0 ? Option.some(n) : Option.none()), "--poll-interval must be more than 0 seconds"),
      Options.withDefault(10),
      Options.withDescription(optionHelp.pollInterval.text)
    ),
    model,
    provider,
    baseUrl,
    config,
    fake
  },
  (args) =>
    Effect.gen(function* () {
      const fs = yield* FileSystem.FileSystem
      const started = Date.now()
      const source = yield* fs.readFileString(args.input).pipe(
        Effect.mapError((error) => new CliError({ message: `cannot read ${args.input}: ${fileError.describe(error)}` }))
      )
      const previous = (yield* fs.exists(args.out).pipe(Effect.orElseSucceed(() => false)))
        ? yield* fs.readFileString(args.out).pipe(Effect.orElseSucceed(() => ""))
        : ""
      const { clashes, done, tornAt, unreadable } = readPrevious(previous)
      if (unreadable > 0) yield* Console.error(`resuming: ${unreadable} line(s) of ${args.out} are not JSON records; they are ignored`)
      if (tornAt !== undefined) {
        // the record a killed run was writing: cut it off so the file is whole JSON lines again
        const kept = Buffer.byteLength(previous.slice(0, tornAt))
        yield* fs.truncate(args.out, kept).pipe(
          Effect.mapError((error) => new CliError({ message: `cannot remove the torn last line of ${args.out}: ${error.message}` }))
        )
        yield* Console.error(
          `resuming: removed a torn last line from ${args.out} (${Buffer.byteLength(previous) - kept} bytes of a record cut off when a run was killed); its input line runs again`
        )
      } else if (previous.length > 0 && !previous.endsWith("\n")) {
        // a whole record without its newline: start ours on a fresh line
        yield* append(fs, args.out, "\n")
      }

      const parsedLines = source.split(/\r?\n/).flatMap((text, i) => parseInputLine(text, i + 1) ?? [])
      // the first line to carry an id owns it, whether the id was written or automatic (line-N)
      const owners = new Map<string, number>()
      for (const parsed of parsedLines) if (!owners.has(parsed.id)) owners.set(parsed.id, parsed.line)
      const items: Array<{ readonly id: string; readonly line: number; readonly request: Message.ChatRequest }> = []
      const invalidLines: Array<number> = []
      let skipped = 0
      const reject = (parsed: InputLine, tag: string, reason: string) =>
        Effect.gen(function* () {
          invalidLines.push(parsed.line)
          yield* Console.error(`${args.input}:${parsed.line}: ${reason}`)
          yield* append(fs, args.out, JSON.stringify({ id: parsed.id, line: parsed.line, ok: false, error: { _tag: tag, message: reason } }) + "\n")
        })
      for (const parsed of parsedLines) {
        const owner = owners.get(parsed.id)!
        if (owner !== parsed.line) {
          // its result line would be taken for the owner's on resume: report it under its line number
          if (clashes.has(parsed.line)) skipped++
          else {
            yield* reject(
              parsed,
              "DuplicateId",
              `id "${parsed.id}" is already the id of line ${owner} (a line without "id" gets line-N); give this line its own "id"`
            )
          }
          continue
        }
        if (done.has(parsed.id)) {
          skipped++
          continue
        }
        if (parsed._tag === "Invalid") {
          yield* reject(parsed, "InvalidInput", parsed.reason)
          continue
        }
        items.push(parsed)
      }
      if (skipped > 0) yield* Console.error(`resuming: ${skipped} line(s) already in ${args.out}`)
      if (args.cancel && !args.batchApi) return yield* Effect.fail(new CliError({ usage: true, message: "--cancel goes with --batch-api" }))
      if (args.batchApi) {
        // a line that asks to stream is refused before anything is uploaded (the request drops the field)
        const rawLines = source.split(/\r?\n/)
        for (const item of items) {
          if (/"stream"\s*:\s*true/.test(rawLines[item.line - 1] ?? "")) {
            return yield* Effect.fail(
              new CliError({ message: `${args.input}:${item.line}: a streaming request cannot go through a batch API (the batch answers whole); drop "stream"; nothing was submitted` })
            )
          }
        }
        const idOfLine = new Map(parsedLines.map((parsed) => [parsed.line, parsed.id]))
        const outcome = yield* batchApi.run(
          args,
          source,
          source.split(/\r?\n/).length,
          items,
          (line) => idOfLine.get(line),
          done,
          done.size + clashes.size + invalidLines.length,
          (text) => append(fs, args.out, text),
          (item, result) => resultRecord(item.id, item.line, result)
        ).pipe(
          Effect.onInterrupt(() =>
            Console.error(`interrupted: the batches keep running at the provider; run the same command again to resume polling, or add --cancel`)
          )
        )
        return yield* finish(outcome.rows, outcome.summary, invalidLines, args.out)
      }

      const bar = new cliProgress.SingleBar(
        {
          format: "{bar} {value}/{total} | {speed}/s | ETA {eta_formatted} | tokens {tokens} | errors {errors}",
          stream: process.stderr,
          noTTYOutput: true,
          notTTYSchedule: 2000,
          // cli-progress writes cursor codes only to a terminal, and the format has no colour
          hideCursor: true
        },
        cliProgress.Presets.shades_classic
      )
      const invalid = invalidLines.length
      // invalid lines are errors of the run, though they are not items
      bar.start(items.length, 0, { speed: "0.0", tokens: 0, errors: invalid })
      let summary = Batch.emptySummary
      // prices the run from the default price table (the CLI has no config for prices yet)
      const tracker = yield* Usage.make()
      // each item's HTTP requests, whatever sent them: --retries, another key after a 429
      const requests = items.map(() => ({ count: 0 }))
      const chat = (request: Message.ChatRequest, index: number) =>
        Effect.locally(Effect.flatMap(LanguageModel, (model) => model.chat(request)), httpRequests, requests[index])
      yield* withModel(
        args,
        (target) =>
          Batch.runWith(items.map((item) => item.request), chat, {
            concurrency: args.concurrency,
            retriesPerItem: Option.getOrElse(args.retries, () => target.maxRetries ?? 2),
            order: "completion"
          }).pipe(
          Stream.runForEach((result) =>
            Effect.gen(function* () {
              const item = items[result.index]!
              const record = resultRecord(item.id, item.line, { ...result, attempts: requests[result.index]!.count })
              yield* append(fs, args.out, JSON.stringify(record) + "\n")
              summary = Batch.summarize(summary, result)
              if (Exit.isSuccess(result.result)) {
                const response = result.result.value
                yield* tracker.record(response.provider, response.model, response.usage)
              }
              const seconds = Math.max(0.001, (Date.now() - started) / 1000)
              bar.increment(1, {
                speed: (summary.total / seconds).toFixed(1),
                tokens: summary.inputTokens + summary.outputTokens,
                errors: summary.failed + invalid
              })
            })
          )
        ),
        // one HTTP request per call: --retries are all the retries there are
        "none"
      ).pipe(
        Effect.ensuring(Effect.sync(() => bar.stop())),
        // what is written stays: every record is whole (append is uninterruptible), and a rerun resumes
        Effect.onInterrupt(() =>
          Console.error(
            `interrupted: ${summary.total} of ${items.length} item(s) written to ${args.out}; run the same command again to resume`
          )
        )
      )
      const wall = (Date.now() - started) / 1000
      const spent = (yield* tracker.snapshot).total
      const rows: Array<[string, string]> = [
        ["items run", String(summary.total)],
        ["succeeded", String(summary.succeeded)],
        ["failed", String(summary.failed)],
        ...Object.entries(summary.failuresByTag).map(([tag, n]): [string, string] => [`  ${tag}`, String(n)]),
        ["invalid input lines", String(invalid)],
        ["skipped (already done)", String(skipped)],
        ["input tokens", String(summary.inputTokens)],
        ["output tokens", String(summary.outputTokens)],
        [
          "cost",
          spent.requests === 0 ? "$0" : `$${spent.cost.toFixed(4)}${spent.unpricedRequests > 0 ? ` (${spent.unpricedRequests} request(s) of unpriced models)` : ""}`
        ],
        ["wall time", `${wall.toFixed(2)} s`]
      ]
      return yield* finish(rows, summary, invalidLines, args.out)
    })
).pipe(Command.withDescription(summaryOf("batch")))

/** One whole record: an interruption waits for it, so a stopped run leaves no torn line. */
const append = (fs: FileSystem.FileSystem, path: string, text: string) =>
  fs.writeFileString(path, text, { flag: "a" }).pipe(
    Effect.mapError((error) => new CliError({ message: `cannot write ${path}: ${error.message}` })),
    Effect.uninterruptible
  )

/** `lines 1, 2, 3`, the first ten at most. */
const listLines = (lines: ReadonlyArray<number>): string => {
  const shown = lines.slice(0, 10).join(", ")
  return `line${lines.length === 1 ? "" : "s"} ${shown}${lines.length > 10 ? ` and ${lines.length - 10} more` : ""}`
}

/** Prints the summary; fails (exit code 1) when an item failed or a line was invalid. */
const finish = (rows: ReadonlyArray<readonly [string, string]>, summary: Batch.Summary, invalidLines: ReadonlyArray<number>, out: string) =>
  Effect.gen(function* () {
    const invalid = invalidLines.length
    const all: ReadonlyArray<readonly [string, string]> = rows.some(([k]) => k === "invalid input lines") || invalid === 0 ? rows : [...rows, ["invalid input lines", String(invalid)]]
    const width = Math.max(...all.map(([k]) => k.length))
    yield* Console.log(all.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join("\n"))
    const problems = [
      ...(summary.failed === 0 ? [] : [
        `${summary.failed} of ${summary.total} items failed (${
          Object.entries(summary.failuresByTag).map(([tag, n]) => `${tag} ${n}`).join(", ")
        })`
      ]),
      ...(invalid === 0 ? [] : [`${invalid} input line(s) invalid (${listLines(invalidLines)})`])
    ]
    if (problems.length > 0) {
      return yield* Effect.fail(new CliError({ message: `${problems.join("; ")}: their records in ${out} have "ok": false` }))
    }
  })
