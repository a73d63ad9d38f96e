/**
 * The `ProviderBatch` service: one model's batch API (OpenAI, Anthropic or Gemini), with the
 * live provider's request mapping and reply decoding, so a batched item becomes the same
 * `ChatResponse` (or `LlmError`) as a live call.
 */
import type * as HttpClient from "@effect/platform/HttpClient"
import * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import type * as KeyPool from "../../KeyPool.js"
import * as Err from "../../LlmError.js"
import type * as Message from "../../Message.js"
import type { Spec } from "../../Provider.js"
import * as anthropicBatch from "../providers/anthropic/batch.js"
import * as geminiBatch from "../providers/gemini/batch.js"
import * as openaiBatch from "../providers/openaiChat/batch.js"
import * as registry from "../providers/registry.js"
import { looseReading, readErrorBody, readSafely } from "../request/errorBody.js"
import { errorOf, statusOfReading } from "../request/errors.js"
import type { Limits, Marker, RawResult, Status, WireBatchApi } from "./api.js"
import { BatchCancelledError, BatchExpiredError, BatchFailedError, type ItemError, MissingResultError, UnparseableResultError } from "./errors.js"
import * as http from "./http.js"

/** The wire APIs with a batch API. */
export type Api = "chat" | "responses" | "anthropic" | "gemini"

export interface Options {
  readonly api: Api
  /** The model of items that name none. */
  readonly model: string
  /** Where the API is served, as its live provider takes it. */
  readonly baseUrl?: string | undefined
  /** The provider id in errors and usage; the API's vendor by default. */
  readonly provider?: string | undefined
  readonly headers?: Record<string, string> | undefined
  /** The wait before the first poll. Default 10 seconds. */
  readonly pollInterval?: Duration.DurationInput | undefined
  /** The longest wait between polls, which grow by half each time. Default 60 seconds. */
  readonly maxPollInterval?: Duration.DurationInput | undefined
  /** Tighter limits than the API's documented ones (say, smaller batches that finish sooner). */
  readonly limits?: Partial<Limits> | undefined
}

/** One item for a batch: the id results come back under, and its request. */
export interface Entry {
  readonly customId: string
  readonly request: Message.ChatRequest
}

/** Entries of one model cut to the API's limits, each with its wire text. */
export interface Chunk {
  readonly model: string
  readonly customIds: ReadonlyArray<string>
  readonly lines: ReadonlyArray<string>
  readonly bytes: number
}

export type ItemExit = Exit.Exit<Message.ChatResponse, Err.LlmError | ItemError>

export interface ItemResult {
  readonly customId: string
  readonly result: ItemExit
}

export interface Service {
  readonly api: Api
  readonly provider: string
  readonly model: string
  readonly limits: Limits
  readonly pollInterval: Duration.Duration
  readonly maxPollInterval: Duration.Duration
  /** Why the batch API cannot take this request (streaming, a model it does not batch), or undefined. */
  readonly refuses: (request: Message.ChatRequest) => string | undefined
  /**
   * The entries mapped to the wire and cut at the limits, by model; an entry the API's
   * mapping refuses (a part it cannot take) is not sent and comes back in `rejected`.
   */
  readonly prepare: (entries: ReadonlyArray<Entry>) => {
    readonly chunks: ReadonlyArray<Chunk>
    readonly rejected: ReadonlyArray<ItemResult>
  }
  /** Submits one chunk; its id. */
  readonly submit: (chunk: Chunk, marker: Marker) => Effect.Effect<string, Err.LlmError>
  /** The id of a chunk submitted with `marker`, where the provider can tell. */
  readonly find: (model: string, marker: Marker) => Effect.Effect<string | undefined, Err.LlmError>
  readonly poll: (model: string, id: string) => Effect.Effect<Status, Err.LlmError>
  readonly cancel: (model: string, id: string) => Effect.Effect<void, Err.LlmError>
  /**
   * An ended batch's results, each of `requests` exactly once: decoded replies, the typed
   * error of each failed one, and for each the results do not hold, the batch's outcome.
   */
  readonly results: (
    model: string,
    status: Status,
    requests: ReadonlyMap<string, Message.ChatRequest>
  ) => Stream.Stream<ItemResult, Err.LlmError>
}

export class ProviderBatch extends Context.Tag("effect-llm/ProviderBatch")<ProviderBatch, Service>() {}

const wireApiOf = (api: Api, baseUrl: string | undefined): WireBatchApi => {
  switch (api) {
    case "chat":
      return openaiBatch.batchApi(baseUrl, "/v1/chat/completions")
    case "responses":
      return openaiBatch.batchApi(baseUrl, "/v1/responses")
    case "anthropic":
      return anthropicBatch.batchApi(baseUrl)
    case "gemini":
      return geminiBatch.batchApi(baseUrl)
  }
}

const vendors: Record<Api, string> = { chat: "openai", responses: "openai", anthropic: "anthropic", gemini: "gemini" }

/** Whether a request asks to stream: a batch answers whole. */
const streams = (request: Message.ChatRequest): boolean => {
  const extra = request.extra as Record<string, unknown> | undefined
  if (extra?.stream === true) return true
  const options = request.providerOptions as Record<string, Record<string, unknown> | undefined> | undefined
  return Object.values(options ?? {}).some((o) => o?.stream === true)
}

const positive = (name: string, value: number | undefined, fallback: number): Effect.Effect<number, ConfigError.ConfigError> =>
  value === undefined
    ? Effect.succeed(fallback)
    : Number.isInteger(value) && value >= 1
    ? Effect.succeed(Math.min(value, fallback))
    : Effect.fail(ConfigError.InvalidData(["limits", name], `limits.${name} must be a positive integer, got ${String(value)}`))

export const make = (options: Options): Effect.Effect<Service, ConfigError.ConfigError, HttpClient.HttpClient | KeyPool.KeyPool> =>
  Effect.gen(function* () {
    const provider = options.provider ?? vendors[options.api]
    const spec: Spec = registry.specOf(provider, options.api, options.baseUrl)
    const wire = wireApiOf(options.api, options.baseUrl)
    const limits: Limits = {
      maxItems: yield* positive("maxItems", options.limits?.maxItems, wire.limits.maxItems),
      maxBytes: yield* positive("maxBytes", options.limits?.maxBytes, wire.limits.maxBytes)
    }
    const read = spec.readError ?? readErrorBody
    const makeHttp = http.make({ provider, model: options.model, auth: spec.auth, headers: { ...spec.headers, ...options.headers }, readError: read })
    const base = yield* makeHttp
    // errors name the model of the batch they are about
    const httpFor = (model: string): http.BatchHttp => (model === base.model ? base : { ...base, model })
    const modelOf = (request: Message.ChatRequest) => request.model ?? options.model

    const decode = (raw: Exclude<RawResult, { _tag: "Unparseable" }>, model: string, batchId: string, request: Message.ChatRequest): ItemExit => {
      switch (raw._tag) {
        case "Reply": {
          const decoded = spec.decode(request, model, raw.body, 200)
          return Err.isLlmError(decoded) ? Exit.fail(decoded) : Exit.succeed(decoded)
        }
        case "Error": {
          const reading = readSafely(read, raw.body) ?? looseReading(raw.body)
          const status = raw.status > 0 ? raw.status : statusOfReading(reading)
          return Exit.fail(errorOf({ provider, model, status, headers: {}, now: Date.now() }, reading))
        }
        case "NotProcessed": {
          const fields = { provider, model, batchId, message: `${provider} batch ${batchId}: ${raw.reason}` }
          return Exit.fail(raw.outcome === "expired" ? new BatchExpiredError(fields) : new BatchCancelledError(fields))
        }
      }
    }

    /** What an item the results do not hold gets: its batch's outcome. */
    const unanswered = (status: Status, model: string, unparseable: ReadonlyArray<string>): ItemError => {
      const fields = (what: string) => ({ provider, model, batchId: status.id, message: `${provider} batch ${status.id} ${what}` })
      switch (status.outcome) {
        case "expired":
          return new BatchExpiredError(fields(`expired before this request was processed${status.reason ? `: ${status.reason}` : ""}`))
        case "cancelled":
          return new BatchCancelledError(fields(`was cancelled before this request was processed${status.reason ? `: ${status.reason}` : ""}`))
        case "failed":
          return new BatchFailedError(fields(`failed${status.reason ? `: ${status.reason}` : ""}`))
        default:
          return new MissingResultError(
            fields(
              `ended without a result for this request${
                unparseable.length === 0 ? "" : ` (${unparseable.length} result line(s) could not be read, the first: ${unparseable[0]})`
              }`
            )
          )
      }
    }

    const service: Service = {
      api: options.api,
      provider,
      model: options.model,
      limits,
      pollInterval: Duration.decode(options.pollInterval ?? Duration.seconds(10)),
      maxPollInterval: Duration.decode(options.maxPollInterval ?? Duration.seconds(60)),
      refuses: (request) => {
        if (streams(request)) return `a streaming request cannot go through a batch API (the batch answers whole); drop "stream"`
        return wire.refuses(modelOf(request))
      },
      prepare: (entries) => {
        const rejected: Array<ItemResult> = []
        const byModel = new Map<string, Array<{ customId: string; line: string }>>()
        for (const entry of entries) {
          const model = modelOf(entry.request)
          const body = spec.body(entry.request, model, false)
          if (Err.isLlmError(body)) {
            rejected.push({ customId: entry.customId, result: Exit.fail(body) })
            continue
          }
          const group = byModel.get(model) ?? []
          group.push({ customId: entry.customId, line: wire.entry(entry.customId, body, model) })
          byModel.set(model, group)
        }
        const chunks: Array<Chunk> = []
        for (const [model, group] of byModel) {
          let current: Array<{ customId: string; line: string }> = []
          let bytes = 0
          const flush = () => {
            if (current.length === 0) return
            chunks.push({ model, customIds: current.map((e) => e.customId), lines: current.map((e) => e.line), bytes: bytes + wire.overhead(current.length) })
            current = []
            bytes = 0
          }
          for (const entry of group) {
            const size = Buffer.byteLength(entry.line)
            if (current.length > 0 && (current.length + 1 > limits.maxItems || bytes + size + wire.overhead(current.length + 1) > limits.maxBytes)) flush()
            if (size + wire.overhead(1) > limits.maxBytes) {
              rejected.push({
                customId: entry.customId,
                result: Exit.fail(
                  new Err.InvalidRequestError({ provider, model, message: `${provider}: this request is ${size} bytes, over the batch API's ${limits.maxBytes} bytes per batch` })
                )
              })
              continue
            }
            current.push(entry)
            bytes += size
          }
          flush()
        }
        return { chunks, rejected }
      },
      submit: (chunk, marker) => wire.submit(httpFor(chunk.model), chunk.model, chunk.lines, marker).pipe(Effect.withSpan("ProviderBatch.submit")),
      find: (model, marker) => wire.find(httpFor(model), marker),
      poll: (model, id) => wire.poll(httpFor(model), id).pipe(Effect.withSpan("ProviderBatch.poll")),
      cancel: (model, id) => wire.cancel(httpFor(model), id).pipe(Effect.withSpan("ProviderBatch.cancel")),
      results: (model, status, requests) =>
        Stream.suspend(() => {
          const seen = new Set<string>()
          const unparseable: Array<string> = []
          const answered = wire.results(httpFor(model), status).pipe(
            Stream.filterMap((raw): Option.Option<ItemResult> => {
              const customId = raw.customId
              if (customId === undefined || !requests.has(customId) || seen.has(customId)) {
                if (raw._tag === "Unparseable") unparseable.push(raw.excerpt)
                return Option.none()
              }
              seen.add(customId)
              if (raw._tag === "Unparseable") {
                return Option.some({
                  customId,
                  result: Exit.fail(
                    new UnparseableResultError({ provider, model, batchId: status.id, message: `${provider} batch ${status.id}: the result line of this request could not be read`, excerpt: raw.excerpt })
                  )
                })
              }
              return Option.some({ customId, result: decode(raw, model, status.id, requests.get(customId)!) })
            })
          )
          const rest = Stream.suspend(() =>
            Stream.fromIterable(
              [...requests.keys()].filter((id) => !seen.has(id)).map((customId): ItemResult => ({ customId, result: Exit.fail(unanswered(status, model, unparseable)) }))
            )
          )
          return Stream.concat(answered, rest)
        })
    }
    return service
  })
