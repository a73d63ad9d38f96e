/**
 * Bulk runs: many requests through one `LanguageModel`, with bounded concurrency and
 * per-item retries. Every input ends as exactly one result, a success or a typed failure,
 * so a caller can account for each line of a job.
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import { LanguageModel } from "./LanguageModel.js"
import type { LlmError } from "./LlmError.js"
import * as Message from "./Message.js"
import * as Retry from "./Retry.js"
import * as Usage from "./Usage.js"

/**
 * An input: a prompt, or a request with an optional `id` (default: its index).
 * @since 0.1.0 @category models
 */
export type Item = string | (Message.ChatRequest & { readonly id?: string | undefined })

/**
 * One item's outcome: by default a `ChatResponse`; with `runWith`, what its function returns.
 * `E` is wider than `LlmError` where a run has failures of its own (`ProviderBatch`: an
 * expired or cancelled batch).
 * @since 0.1.0 @category models
 */
export interface Result<A = Message.ChatResponse, E = LlmError> {
  readonly index: number
  readonly id: string
  readonly result: Exit.Exit<A, E>
  /** Calls made for this item, retries included. */
  readonly attempts: number
  readonly durationMs: number
}

/** @since 0.1.0 @category models */
export interface Options {
  /** Items in flight at once. Default 8. */
  readonly concurrency?: number
  /** Retries of a retryable failure per item. Default 2. */
  readonly retriesPerItem?: number
  /** The delays between an item's retries. Default: `Retry.schedule`, which honours `retryAfter`. */
  readonly retrySchedule?: Schedule.Schedule<unknown, LlmError>
  /**
   * End the stream after the first failed result. Items not yet finished are not run or
   * are interrupted, and produce no result. Default false.
   */
  readonly stopOnFirstError?: boolean
  /** Emit results in input order (default) or as they complete. */
  readonly order?: "input" | "completion"
}

const toRequest = (item: Item): Message.ChatRequest => {
  if (typeof item === "string") return Message.request(item)
  if (item.id === undefined) return item
  const { id: _id, ...request } = item
  return request
}

const idOf = (item: Item, index: number): string =>
  typeof item !== "string" && item.id !== undefined ? item.id : String(index)

/**
 * Runs every item and streams one `Result` per item.
 * @since 0.1.0 @category running
 */
export const run = <E = never, R = never>(
  items: Iterable<Item> | Stream.Stream<Item, E, R>,
  options: Options = {}
): Stream.Stream<Result, E, R | LanguageModel> =>
  Stream.unwrap(Effect.map(LanguageModel, (model) => runWith(items, (request) => model.chat(request), options)))

/**
 * Runs `f` on every item's request, with the same concurrency, retries and accounting as
 * `run`: e.g. `Batch.runWith(items, (request) => LanguageModel.generateObject({ request, schema }))`.
 * A retry calls `f` again, so for a multi-call `f` (a tool loop, a repaired object) it starts over.
 * @since 0.1.0 @category running
 */
export const runWith = <A, E = never, R = never, R2 = never>(
  items: Iterable<Item> | Stream.Stream<Item, E, R>,
  f: (request: Message.ChatRequest, index: number) => Effect.Effect<A, LlmError, R2>,
  options: Options = {}
): Stream.Stream<Result<A>, E, R | R2> => {
  const source: Stream.Stream<Item, E, R> = Stream.StreamTypeId in (items as object)
    ? (items as Stream.Stream<Item, E, R>)
    : Stream.fromIterable(items as Iterable<Item>)
  const retries = options.retriesPerItem ?? 2
  const schedule: Schedule.Schedule<unknown, LlmError> = options.retrySchedule ?? Retry.schedule({ maxRetries: retries })
  const runOne = (item: Item, index: number): Effect.Effect<Result<A>, never, R2> =>
    Effect.gen(function* () {
      const start = yield* Clock.currentTimeMillis
      let attempts = 0
      const request = toRequest(item)
      const call = Effect.suspend(() => {
        attempts++
        return f(request, index)
      })
      const result = yield* Effect.exit(
        retries <= 0
          ? call
          : Effect.retry(call, {
            schedule,
            times: retries,
            while: (error: LlmError) => error.retryable
          })
      )
      const end = yield* Clock.currentTimeMillis
      return { index, id: idOf(item, index), result, attempts, durationMs: end - start }
    }).pipe(Effect.withSpan("Batch.item", { attributes: { index } }))

  const results = source.pipe(
    Stream.zipWithIndex,
    Stream.mapEffect(([item, index]) => runOne(item, index), {
      concurrency: Math.max(1, options.concurrency ?? 8),
      unordered: options.order === "completion"
    })
  )
  return options.stopOnFirstError === true
    ? Stream.takeUntil(results, (result) => Exit.isFailure(result.result))
    : results
}

/**
 * Counts of a finished run.
 * @since 0.1.0 @category summary
 */
export interface Summary {
  readonly total: number
  readonly succeeded: number
  readonly failed: number
  readonly failuresByTag: Readonly<Record<string, number>>
  /** The succeeded items' usage, summed with `Usage.add`. */
  readonly usage: Message.Usage
  /** `usage.inputTokens`. */
  readonly inputTokens: number
  /** `usage.outputTokens`. */
  readonly outputTokens: number
}

/** @since 0.1.0 @category summary */
export const emptySummary: Summary = { total: 0, succeeded: 0, failed: 0, failuresByTag: {}, usage: Usage.empty, inputTokens: 0, outputTokens: 0 }

/**
 * Adds one result to a summary.
 * @since 0.1.0 @category summary
 */
export const summarize = <E extends { readonly _tag: string }>(
  summary: Summary,
  result: Result<Message.ChatResponse | { readonly response: Message.ChatResponse }, E>
): Summary => {
  if (Exit.isSuccess(result.result)) {
    const value = result.result.value
    // a `generateObject` result carries its reply as `response`; a `generateText` one its summed usage
    const usage = Usage.add(summary.usage, "usage" in value ? value.usage : value.response.usage)
    return {
      ...summary,
      total: summary.total + 1,
      succeeded: summary.succeeded + 1,
      usage,
      inputTokens: usage.inputTokens,
      outputTokens: usage.outputTokens
    }
  }
  const tag = failureTag(result.result)
  return {
    ...summary,
    total: summary.total + 1,
    failed: summary.failed + 1,
    failuresByTag: { ...summary.failuresByTag, [tag]: (summary.failuresByTag[tag] ?? 0) + 1 }
  }
}

/**
 * The error tag of a failed result, `Interrupted` or `Defect` for the others.
 * @since 0.1.0 @category summary
 */
export const failureTag = (exit: Exit.Exit<unknown, { readonly _tag: string }>): string => {
  if (Exit.isSuccess(exit)) return "Success"
  const failure = Cause.failureOption(exit.cause)
  if (Option.isSome(failure)) return failure.value._tag
  return Cause.isInterruptedOnly(exit.cause) ? "Interrupted" : "Defect"
}
