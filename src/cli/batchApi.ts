/**
 * `effect-llm batch --batch-api`: the lines through the provider's batch API. The batches
 * submitted and the input lines each holds are kept in a state file beside --out (see
 * batchState.ts), saved before each submission and after each batch is written, so a killed
 * run resumes polling and never resubmits what the provider accepted.
 */
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import cliProgress from "cli-progress"
import * as Console from "effect/Console"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import type * as Batch from "../Batch.js"
import * as summary_ from "../Batch.js"
import * as envKeys from "../internal/envKeys.js"
import { pollRetried } from "../internal/providerBatch/run.js"
import * as providerKeys from "../internal/providerConfig/keys.js"
import * as registry from "../internal/providers/registry.js"
import * as KeyPool from "../KeyPool.js"
import * as LlmError from "../LlmError.js"
import type * as Message from "../Message.js"
import * as ProviderBatch from "../ProviderBatch.js"
import * as Testing from "../Testing.js"
import * as Usage from "../Usage.js"
import * as state_ from "./batchState.js"
import { CliError, configEntry, type ModelChoice, splitModel } from "./model.js"

export interface Item {
  readonly id: string
  readonly line: number
  readonly request: Message.ChatRequest
}

export interface BatchApiArgs extends ModelChoice {
  readonly input: string
  readonly out: string
  readonly cancel: boolean
  readonly pollInterval: number
}

interface Target {
  readonly api: ProviderBatch.Api
  readonly provider: string
  readonly model: string
  readonly baseUrl: string
  readonly layer: Layer.Layer<ProviderBatch.ProviderBatch, CliError>
}

const batchApis: Partial<Record<registry.Api, ProviderBatch.Api>> = { chat: "chat", responses: "responses", anthropic: "anthropic", gemini: "gemini" }

/** The batch API of the chosen model: its provider's, keys from its env var; or a fake of it. */
const targetOf = (args: BatchApiArgs) =>
  Effect.gen(function* () {
    if (Option.isSome(args.config)) return yield* targetOfConfig(args, args.config.value)
    const split = splitModel(Option.getOrElse(args.model, () => "gpt-4o-mini"))
    const provider = Option.getOrUndefined(args.provider) ?? split.provider ?? registry.detect(split.model)
    if (provider === undefined) {
      return yield* Effect.fail(new CliError({ usage: true, message: `cannot tell the provider of model "${split.model}": pass --provider or write --model provider:${split.model}` }))
    }
    const row = registry.lookup(provider)!.row
    const wireApi = registry.inferApi(provider, Option.getOrUndefined(args.baseUrl)) ?? row.api
    const api = batchApis[wireApi]
    if (api === undefined) return yield* Effect.fail(new CliError({ usage: true, message: `${provider} has no batch API (--batch-api serves OpenAI, Anthropic and Gemini)` }))
    const pollInterval = Duration.millis(Math.max(1, Math.round(args.pollInterval * 1000)))
    const options = { api, model: split.model, provider, pollInterval, maxPollInterval: Duration.max(pollInterval, Duration.seconds(60)) }
    if (args.fake) {
      // the fake of the model's API: batches end on their second poll, replies echo the prompt
      const fake = yield* Testing.FakeProvider.make({ record: false, batch: { pollsToComplete: 2 }, respond: echo })
      const baseUrl = api === "chat" || api === "responses" ? fake.baseUrl : api === "gemini" ? `${fake.url}/v1beta` : fake.url
      const layer = ProviderBatch.layer({ ...options, baseUrl }).pipe(
        Layer.provide(KeyPool.layer({ providerId: provider, keys: ["fake-key"] })),
        Layer.provide(NodeHttpClient.layerUndici),
        Layer.mapError((error) => new CliError({ message: String(error) }))
      )
      return { api, provider, model: split.model, baseUrl: "fake", layer } satisfies Target
    }
    const baseUrl = Option.getOrUndefined(args.baseUrl) ?? registry.baseUrlOf(row)
    const keys = yield* providerKeys.read(provider, wireApi, baseUrl).pipe(
      Effect.mapError((error) => new CliError({ message: `${envKeys.isMissing(error) ? `no API key for ${provider}: ` : ""}${envKeys.describe(error)}; or try --fake` }))
    )
    const layer = ProviderBatch.layer({ ...options, baseUrl }).pipe(
      Layer.provide(keys.length === 0 ? KeyPool.layerKeyless(provider) : KeyPool.layer({ providerId: provider, keys })),
      Layer.provide(NodeHttpClient.layerUndici),
      Layer.mapError((error) => new CliError({ message: String(error) }))
    )
    return { api, provider, model: split.model, baseUrl, layer } satisfies Target
  })

const pollIntervals = (args: BatchApiArgs) => {
  const pollInterval = Duration.millis(Math.max(1, Math.round(args.pollInterval * 1000)))
  return { pollInterval, maxPollInterval: Duration.max(pollInterval, Duration.seconds(60)) }
}

/** The batch API of a `--config` entry: its base URL, and the pool of its keys. */
const targetOfConfig = (args: BatchApiArgs, path: string) =>
  Effect.gen(function* () {
    const { config, entry } = yield* configEntry(path, Option.getOrUndefined(args.model), Option.getOrUndefined(args.provider))
    const api = batchApis[entry.api]
    if (api === undefined) return yield* Effect.fail(new CliError({ usage: true, message: `${entry.provider} has no batch API (--batch-api serves OpenAI, Anthropic and Gemini)` }))
    const baseUrl = entry.baseUrl ?? registry.defaultBaseUrl(entry.provider, entry.api)
    const pool = config.keyPool(entry.provider, entry.model)
    if (Option.isNone(pool)) {
      // no usable key: building the model's stack says why, naming the entry
      yield* Effect.scoped(Layer.build(config.models.layer(entry.provider, entry.model).pipe(Layer.provide(NodeHttpClient.layerUndici)))).pipe(
        Effect.mapError((error) => new CliError({ message: error.message }))
      )
      return yield* Effect.fail(new CliError({ message: `no API key for ${entry.provider}:${entry.model} in ${path}` }))
    }
    const layer = ProviderBatch.layer({ api, model: entry.model, provider: entry.provider, baseUrl, ...pollIntervals(args) }).pipe(
      Layer.provide(Layer.succeed(KeyPool.KeyPool, pool.value)),
      Layer.provide(NodeHttpClient.layerUndici),
      Layer.mapError((error) => new CliError({ message: String(error) }))
    )
    return { api, provider: entry.provider, model: entry.model, baseUrl, layer } satisfies Target
  })

const echo: Testing.Responder = (request) => {
  const text = JSON.stringify(request.body ?? "")
  const last = [...text.matchAll(/"(?:content|text)":"((?:[^"\\]|\\.)*)"/g)].pop()?.[1]
  return { text: `echo: ${last === undefined ? "" : JSON.parse(`"${last}"`)}` }
}

export interface Outcome {
  readonly rows: ReadonlyArray<[string, string]>
  readonly summary: Batch.Summary
}

/**
 * Runs `items` (the lines without a record in --out) through the batch API, resuming what the
 * state file names; `record` appends one record to --out.
 */
export const run = (
  args: BatchApiArgs,
  source: string,
  inputLines: number,
  items: ReadonlyArray<Item>,
  idOfLine: (line: number) => string | undefined,
  done: ReadonlySet<string>,
  outRecords: number,
  append: (text: string) => Effect.Effect<void, CliError>,
  record: (item: Item, result: ProviderBatch.Result) => unknown
) =>
  Effect.scoped(
    Effect.gen(function* () {
      const target = yield* targetOf(args)
      // built in this scope: the HTTP client lives as long as the run
      const service = Context.get(yield* Layer.build(target.layer), ProviderBatch.ProviderBatch)
      const started = Date.now()
      let outCount = outRecords
      const loaded = yield* state_.load(args.out)
      // what the state file must match to be resumed, and what a new one records
      const served = { api: target.api, provider: target.provider, model: target.model, baseUrl: target.baseUrl }
      if (loaded !== undefined) {
        const differs = state_.mismatch(loaded, {
          inputPath: args.input,
          inputText: source,
          inputLines,
          out: args.out,
          ...served,
          outRecords,
          done,
          idOfLine
        })
        if (differs !== undefined) return yield* Effect.fail(new CliError({ message: `refusing to resume: ${differs}` }))
      } else if (args.cancel) {
        return yield* Effect.fail(new CliError({ message: `nothing to cancel: no ${state_.pathFor(args.out)} (no batches in flight for ${args.out})` }))
      }
      let state: state_.State = loaded ?? {
        version: 1,
        input: { path: args.input, sha256: state_.fingerprint(source), lines: inputLines },
        out: args.out,
        ...served,
        outRecords,
        batches: []
      }
      const save = (next: state_.State) => Effect.zipRight(state_.save(args.out, next), Effect.sync(() => void (state = next)))
      const byLine = new Map(items.map((item) => [item.line, item]))
      const inBatches = new Set(state.batches.flatMap((b) => state_.fromRanges(b.lines)))
      const fresh = items.filter((item) => !inBatches.has(item.line))
      if (loaded !== undefined) {
        const open = state.batches.filter((b) => !b.written).length
        yield* Console.error(`resuming: ${open} batch(es) of ${state_.pathFor(args.out)} in flight${fresh.length > 0 && !args.cancel ? `, ${fresh.length} line(s) not yet submitted` : ""}`)
      }

      // refused before anything is uploaded, naming the line
      for (const item of fresh) {
        const reason = service.refuses(item.request)
        if (reason !== undefined) return yield* Effect.fail(new CliError({ message: `${args.input}:${item.line}: ${reason}; nothing was submitted` }))
      }

      let summary = summary_.emptySummary
      const tracker = yield* Usage.make()
      const write = (item: Item, result: ProviderBatch.Result) =>
        Effect.gen(function* () {
          yield* append(JSON.stringify(record(item, result)) + "\n")
          outCount++
          summary = summary_.summarize(summary, result)
          if (Exit.isSuccess(result.result)) {
            const response = result.result.value
            yield* tracker.record(response.provider, response.model, response.usage)
          }
        })

      // the lines the API's mapping refuses are records at once; the rest go in batches
      const customIdOf = (line: number) => `line-${line}`
      const lineOf = (customId: string) => Number(customId.slice(5))
      if (!args.cancel && fresh.length > 0) {
        const { chunks, rejected } = service.prepare(fresh.map((item) => ({ customId: customIdOf(item.line), request: item.request })))
        for (const r of rejected) {
          const item = byLine.get(lineOf(r.customId))!
          yield* write(item, { index: 0, id: item.id, result: r.result, attempts: 0, durationMs: 0 })
        }
        yield* save({
          ...state,
          outRecords: outCount,
          batches: [
            ...state.batches,
            ...chunks.map((chunk, n): state_.Submission => ({
              model: chunk.model,
              marker: `effect-llm-${started}-${state.batches.length + n}`,
              submittedAt: 0,
              lines: state_.toRanges(chunk.customIds.map(lineOf)),
              written: false
            }))
          ]
        })
      }

      // submit what has no id: after a kill, first ask the provider whether it took it
      for (const [n, batch] of state.batches.entries()) {
        if (batch.id !== undefined || batch.written || args.cancel) continue
        const lines = state_.fromRanges(batch.lines)
        const marker = { name: batch.marker, items: lines.length, since: batch.submittedAt }
        const found = batch.submittedAt === 0 ? undefined : yield* service.find(batch.model, marker)
        let id = found
        if (id === undefined) {
          const { chunks } = service.prepare(lines.map((line) => ({ customId: customIdOf(line), request: byLine.get(line)!.request })))
          const submittedAt = Date.now()
          // the time goes in first: a kill during the upload leaves a submission to look for
          yield* save({ ...state, batches: state.batches.map((b, i) => (i === n ? { ...b, submittedAt } : b)) })
          id = yield* service.submit(chunks[0]!, { ...marker, since: submittedAt })
        } else yield* Console.error(`resuming: found batch ${id}, submitted before the last run stopped`)
        const kept = id
        yield* save({ ...state, batches: state.batches.map((b, i) => (i === n ? { ...b, id: kept } : b)) })
      }

      if (args.cancel) {
        for (const batch of state.batches) {
          if (batch.id === undefined || batch.written) continue
          yield* service.cancel(batch.model, batch.id)
          yield* Console.error(`cancelled batch ${batch.id} (${state_.fromRanges(batch.lines).length} line(s)); writing what it finished`)
        }
      }

      const bar = new cliProgress.SingleBar(
        {
          format: "{bar} {value}/{total} | batches {batches} | validating {validating} | in progress {inProgress} | completed {completed} | failed {failed}",
          stream: process.stderr,
          noTTYOutput: true,
          notTTYSchedule: 2000,
          hideCursor: true
        },
        cliProgress.Presets.shades_classic
      )
      const open = () => state.batches.filter((b) => b.id !== undefined && !b.written)
      const total = open().reduce((n, b) => n + state_.fromRanges(b.lines).filter((line) => !done.has(idOfLine(line) ?? "")).length, 0)
      bar.start(total, 0, { batches: open().length, validating: 0, inProgress: 0, completed: 0, failed: 0 })
      let delay = service.pollInterval
      yield* Effect.gen(function* () {
        while (open().length > 0) {
          yield* Effect.sleep(delay)
          delay = Duration.min(Duration.times(delay, 1.5), service.maxPollInterval)
          const pending = open()
          // a poll that fails retryably (a 429, a 5xx, the network) is tried again, as the library's run does
          const statuses = yield* Effect.forEach(pending, (b) => pollRetried(service, b.model, b.id!), { concurrency: 4 })
          const sum = (phase: ProviderBatch.Status["phase"] | undefined, pick: (s: ProviderBatch.Status) => number) =>
            statuses.filter((s) => phase === undefined || s.phase === phase).reduce((n, s) => n + pick(s), 0)
          bar.update({
            batches: pending.length,
            validating: sum("validating", (s) => s.counts.total),
            inProgress: sum("in_progress", (s) => s.counts.processing),
            completed: sum(undefined, (s) => s.counts.succeeded),
            failed: sum(undefined, (s) => s.counts.failed)
          })
          for (const [i, batch] of pending.entries()) {
            const status = statuses[i]!
            if (status.phase !== "ended") continue
            const lines = state_.fromRanges(batch.lines)
            const requests = new Map(lines.map((line) => [customIdOf(line), byLine.get(line)?.request ?? { messages: [] }]))
            const submitted = batch.submittedAt
            yield* service.results(batch.model, status, requests).pipe(
              Stream.runForEach((result) => {
                const item = byLine.get(lineOf(result.customId))
                // a record written before the last run stopped stays the only one
                if (item === undefined || done.has(item.id)) return Effect.void
                return Effect.zipRight(
                  write(item, { index: 0, id: item.id, result: result.result, attempts: 1, durationMs: Date.now() - submitted }),
                  Effect.sync(() => bar.increment(1))
                )
              })
            )
            yield* save({ ...state, outRecords: outCount, batches: state.batches.map((b) => (b.id === batch.id ? { ...b, written: true } : b)) })
          }
        }
      }).pipe(Effect.ensuring(Effect.sync(() => bar.stop())))

      const unsent = state.batches.filter((b) => b.id === undefined && !b.written)
      if (unsent.length === 0 && state.batches.every((b) => b.written)) yield* state_.remove(args.out)
      const spent = (yield* tracker.snapshot).total
      const live = spent.cost
      const rows: Array<[string, string]> = [
        ["batches", String(state.batches.length)],
        ["items run", String(summary.total)],
        ["succeeded", String(summary.succeeded)],
        ["failed", String(summary.failed)],
        ...Object.entries(summary.failuresByTag).map(([tag, n]): [string, string] => [`  ${tag}`, String(n)]),
        ["input tokens", String(summary.inputTokens)],
        ["output tokens", String(summary.outputTokens)],
        [
          "cost (batch price)",
          spent.requests === 0
            ? "$0"
            : `$${(live * ProviderBatch.batchDiscount).toFixed(4)}${spent.unpricedRequests > 0 ? ` (${spent.unpricedRequests} request(s) of unpriced models)` : ""}`
        ],
        ["cost at live prices", spent.requests === 0 ? "$0" : `$${live.toFixed(4)}`],
        ...(unsent.length > 0 ? [["not submitted", `${unsent.reduce((n, b) => n + state_.fromRanges(b.lines).length, 0)} line(s) (cancelled run)`] as [string, string]] : []),
        ["wall time", `${((Date.now() - started) / 1000).toFixed(2)} s`]
      ]
      return { rows, summary } satisfies Outcome
    })
  ).pipe(
    Effect.catchIf(LlmError.isLlmError, (error) => Effect.fail(new CliError({ message: `${error._tag}: ${error.message}` })))
  )

