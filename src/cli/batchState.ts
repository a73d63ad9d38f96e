/**
 * The state file of `batch --batch-api`, beside `--out`: which input it belongs to, the batches
 * submitted and the input lines each holds, and how many records the run had written. A rerun
 * reads it to resume polling; one that does not match the input or `--out` is refused.
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import { createHash } from "node:crypto"
import { basename, resolve } from "node:path"
import { CliError } from "./model.js"

/** Input lines as ranges `[from, to]`, both included. */
const Ranges = Schema.Array(Schema.Tuple(Schema.Int, Schema.Int))

export const Submission = Schema.Struct({
  /** The provider's batch id; absent while its submission is under way (or was cut off). */
  id: Schema.optional(Schema.String),
  model: Schema.String,
  /** What the provider may know the batch by, to find it when a run died before keeping its id. */
  marker: Schema.String,
  submittedAt: Schema.Number,
  lines: Ranges,
  /** Its results are all in --out. */
  written: Schema.Boolean
})
export type Submission = typeof Submission.Type

export const State = Schema.Struct({
  version: Schema.Literal(1),
  input: Schema.Struct({ path: Schema.String, sha256: Schema.String, lines: Schema.Int }),
  out: Schema.String,
  api: Schema.String,
  provider: Schema.String,
  model: Schema.String,
  baseUrl: Schema.String,
  /** Records in --out when the state was last saved: fewer on a rerun means it was cut or edited. */
  outRecords: Schema.Int,
  batches: Schema.Array(Submission)
})
export type State = typeof State.Type

const decode = Schema.decodeUnknownEither(Schema.parseJson(State))

export const pathFor = (out: string): string => `${out}.batch-state.json`

export const fingerprint = (text: string) => createHash("sha256").update(text).digest("hex")

export const toRanges = (lines: ReadonlyArray<number>): Array<[number, number]> => {
  const sorted = [...lines].sort((a, b) => a - b)
  const out: Array<[number, number]> = []
  for (const line of sorted) {
    const last = out[out.length - 1]
    if (last !== undefined && last[1] === line - 1) last[1] = line
    else out.push([line, line])
  }
  return out
}

export const fromRanges = (ranges: ReadonlyArray<readonly [number, number]>): Array<number> =>
  ranges.flatMap(([from, to]) => Array.from({ length: to - from + 1 }, (_, i) => from + i))

/** The state file, if there is one; a file that is not a state fails naming the field. */
export const load = (out: string) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const path = pathFor(out)
    if (!(yield* fs.exists(path).pipe(Effect.orElseSucceed(() => false)))) return undefined
    const text = yield* fs.readFileString(path).pipe(Effect.mapError((error) => new CliError({ message: `cannot read ${path}: ${error.message}` })))
    const decoded = decode(text)
    if (Either.isLeft(decoded)) {
      const issue = ParseResult.ArrayFormatter.formatErrorSync(decoded.left)[0]
      return yield* Effect.fail(
        new CliError({
          message: `${path} is not a batch state file (${issue === undefined ? "invalid" : `${issue.path.join(".") || "the file"}: ${issue.message}`}); ` +
            `it was edited or is another file: move it away to start over (batches it names keep running at the provider)`
        })
      )
    }
    return decoded.right
  })

/** Written whole or not at all: a kill mid-write leaves the previous state. */
export const save = (out: string, state: State) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const path = pathFor(out)
    const temp = `${path}.tmp`
    yield* fs.writeFileString(temp, JSON.stringify(state, null, 1) + "\n")
    yield* fs.rename(temp, path)
  }).pipe(
    Effect.mapError((error) => new CliError({ message: `cannot write ${pathFor(out)}: ${error.message}` })),
    Effect.uninterruptible
  )

export const remove = (out: string) =>
  Effect.flatMap(FileSystem.FileSystem, (fs) => fs.remove(pathFor(out))).pipe(Effect.orElseSucceed(() => undefined))

export interface Expected {
  readonly inputPath: string
  readonly inputText: string
  readonly inputLines: number
  readonly out: string
  readonly api: string
  readonly provider: string
  readonly model: string
  readonly baseUrl: string
  readonly outRecords: number
  /** The ids --out holds, and the id of each input line. */
  readonly done: ReadonlySet<string>
  readonly idOfLine: (line: number) => string | undefined
}

/** What differs between a state and this run, in words; undefined when they match. */
export const mismatch = (state: State, run: Expected): string | undefined => {
  const path = pathFor(run.out)
  if (basename(state.out) !== basename(run.out)) return `${path} belongs to --out ${state.out}, not ${run.out}`
  const sha = fingerprint(run.inputText)
  if (state.input.sha256 !== sha) {
    const other = resolve(state.input.path) !== resolve(run.inputPath) ? ` (it was written for ${state.input.path})` : ""
    return `${run.inputPath} is not the input ${path} was written for${other}: it had ${state.input.lines} line(s) and sha256 ${state.input.sha256.slice(0, 12)}…, ` +
      `now ${run.inputLines} line(s) and ${sha.slice(0, 12)}…; the submitted batches hold lines of that input`
  }
  for (const [field, now] of [["api", run.api], ["provider", run.provider], ["model", run.model], ["baseUrl", run.baseUrl]] as const) {
    if (state[field] !== now) return `${path} was written for ${field} ${state[field]}, this run uses ${now}: pass the same --model, --provider and --base-url`
  }
  if (run.outRecords < state.outRecords) {
    return `${run.out} holds ${run.outRecords} record(s) but ${path} says the run had written ${state.outRecords}: it was truncated or edited since`
  }
  for (const batch of state.batches) {
    if (!batch.written) continue
    for (const line of fromRanges(batch.lines)) {
      const id = run.idOfLine(line)
      if (id === undefined || !run.done.has(id)) {
        return `${run.out} has no record for line ${line}${id === undefined ? "" : ` (id ${id})`}, which ${path} says batch ${batch.id ?? "?"} wrote: it was edited since`
      }
    }
  }
  return undefined
}
