/** `ProviderBatch.run`: submit every item, poll with back-off, stream each item's result once. */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import type * as Batch from "../../Batch.js"
import type * as Err from "../../LlmError.js"
import * as Message from "../../Message.js"
import type { Status } from "./api.js"
import type { EmbedResult } from "../../Embeddings.js"
import { type Chunk, EmbeddingsBatch, type EmbeddingsRequest, type ItemResult, ProviderBatch, type Service } from "./client.js"
import { BatchInputError, type ItemError } from "./errors.js"

export interface RunOptions {
  /** Called after each round of polls with every batch still followed. */
  readonly onStatus?: ((statuses: ReadonlyArray<Status>) => Effect.Effect<void>) | undefined
}

export type Result = Batch.Result<Message.ChatResponse, Err.LlmError | ItemError>

/** The next wait: half again the last, up to the maximum. */
export const nextDelay = (service: Pick<Service, "maxPollInterval">, last: Duration.Duration): Duration.Duration =>
  Duration.min(Duration.times(last, 1.5), service.maxPollInterval)

/** A poll that fails retryably (a 429, a 5xx, the network) is tried again, not the run's end. */
export const pollRetried = (service: Pick<Service, "poll" | "pollInterval" | "maxPollInterval">, model: string, id: string) =>
  Effect.retry(service.poll(model, id), {
    while: (error: Err.LlmError) => error.retryable,
    schedule: Schedule.exponential(service.pollInterval, 1.5).pipe(Schedule.union(Schedule.spaced(service.maxPollInterval))),
    times: 8
  })

interface Submitted {
  readonly id: string
  readonly chunk: Chunk
  readonly at: number
}

/** An embeddings item: one text, or texts with an `id` for the results, a `model` and `dimensions`. */
export type EmbeddingsItem = string | (EmbeddingsRequest & { readonly id?: string | undefined })

export type EmbeddingsResult = Batch.Result<EmbedResult, Err.LlmError | ItemError>

export const run = <E, R>(
  items: Iterable<Batch.Item> | Stream.Stream<Batch.Item, E, R>,
  options: RunOptions = {}
): Stream.Stream<Result, E | Err.LlmError | BatchInputError, R | ProviderBatch> =>
  Stream.unwrap(
    Effect.map(ProviderBatch, (service) =>
      runWith(service, items, (item) => (typeof item === "string" ? Message.request(item) : withoutId(item)), options))
  )

export const runEmbeddings = <E, R>(
  items: Iterable<EmbeddingsItem> | Stream.Stream<EmbeddingsItem, E, R>,
  options: RunOptions = {}
): Stream.Stream<EmbeddingsResult, E | Err.LlmError | BatchInputError, R | EmbeddingsBatch> =>
  Stream.unwrap(
    Effect.map(EmbeddingsBatch, (service) => runWith(service, items, (item) => (typeof item === "string" ? { texts: [item] } : withoutId(item)), options))
  )

/** One run over a batch service: submit, poll with back-off, stream each item's result once. */
const runWith = <Item extends string | { readonly id?: string | undefined }, Request extends { readonly model?: string | undefined }, Response, E, R>(
  service: Service<Request, Response>,
  items: Iterable<Item> | Stream.Stream<Item, E, R>,
  requestOf: (item: Item) => Request,
  options: RunOptions
): Stream.Stream<Batch.Result<Response, Err.LlmError | ItemError>, E | Err.LlmError | BatchInputError, R> =>
  Stream.unwrap(
    Effect.gen(function* () {
      type Out = Batch.Result<Response, Err.LlmError | ItemError>
      const source: Stream.Stream<Item, E, R> = Stream.StreamTypeId in (items as object)
        ? (items as Stream.Stream<Item, E, R>)
        : Stream.fromIterable(items as Iterable<Item>)
      const all = [...(yield* Stream.runCollect(source))]
      const requests = all.map(requestOf)
      const ids = all.map((item, index) => (typeof item !== "string" && item.id !== undefined ? item.id : String(index)))
      // refused before anything is uploaded, naming the item
      for (const [index, request] of requests.entries()) {
        const reason = service.refuses(request)
        if (reason !== undefined) {
          return yield* Effect.fail(
            new BatchInputError({ provider: service.provider, model: request.model ?? service.model, index, id: ids[index]!, message: `item ${index} (id ${ids[index]}): ${reason}` })
          )
        }
      }
      const customIdOf = (index: number) => `item-${index}`
      const indexOf = (customId: string) => Number(customId.slice(5))
      const { chunks, rejected } = service.prepare(requests.map((request, index) => ({ customId: customIdOf(index), request })))
      const started = yield* Clock.currentTimeMillis
      const toResult = (item: ItemResult<Response>, since: number) =>
        Effect.map(Clock.currentTimeMillis, (now): Out => {
          const index = indexOf(item.customId)
          return { index, id: ids[index]!, result: item.result, attempts: 1, durationMs: now - since }
        })
      const submitted: Array<Submitted> = []
      for (const [n, chunk] of chunks.entries()) {
        const marker = { name: `effect-llm-${started}-${n}`, items: chunk.customIds.length, since: started }
        const id = yield* service.submit(chunk, marker)
        submitted.push({ id, chunk, at: yield* Clock.currentTimeMillis })
      }
      const requestsOf = (chunk: Chunk) => new Map(chunk.customIds.map((customId) => [customId, requests[indexOf(customId)]!]))
      const poll = (pending: ReadonlyArray<Submitted>, delay: Duration.Duration): Stream.Stream<Out, Err.LlmError> =>
        pending.length === 0
          ? Stream.empty
          : Stream.unwrap(
            Effect.gen(function* () {
              yield* Effect.sleep(delay)
              const statuses = yield* Effect.forEach(pending, (s) => pollRetried(service, s.chunk.model, s.id), { concurrency: 4 })
              if (options.onStatus !== undefined) yield* options.onStatus(statuses)
              const ended = pending.flatMap((s, i) => (statuses[i]!.phase === "ended" ? [{ s, status: statuses[i]! }] : []))
              const rest = pending.filter((_, i) => statuses[i]!.phase !== "ended")
              const results = Stream.fromIterable(ended).pipe(
                Stream.flatMap(({ s, status }) => Stream.mapEffect(service.results(s.chunk.model, status, requestsOf(s.chunk)), (item) => toResult(item, s.at)))
              )
              return Stream.concat(results, poll(rest, nextDelay(service, delay)))
            })
          )
      return Stream.concat(
        Stream.fromIterable(rejected).pipe(Stream.mapEffect((item) => toResult(item, started))),
        poll(submitted, service.pollInterval)
      ).pipe(Stream.withSpan("ProviderBatch.run"))
    })
  )

const withoutId = <Request extends object>(item: Request & { readonly id?: string | undefined }): Request => {
  if (item.id === undefined) return item
  const { id: _id, ...request } = item
  return request as Request
}
