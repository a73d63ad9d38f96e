/**
 * The `ProviderBatch` services: one model's batch API (OpenAI, Anthropic or Gemini), with the
 * live provider's request mapping and reply decoding, so a batched item becomes the same
 * `ChatResponse` (or embeddings, or `LlmError`) as a live call. One core serves chat and
 * embeddings: what differs is a `Codec` (an item's model, body and decoding).
 */
import type * as HttpClient from "@effect/platform/HttpClient"
import * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import type { EmbedResult } from "../../Embeddings.js"
import type * as KeyPool from "../../KeyPool.js"
import * as Err from "../../LlmError.js"
import type * as Message from "../../Message.js"
import type { EmbeddingsSpec, Spec } from "../../Provider.js"
import { estimateTokens } from "../../RateLimiter.js"
import * as anthropicBatch from "../providers/anthropic/batch.js"
import * as geminiBatch from "../providers/gemini/batch.js"
import * as openaiBatch from "../providers/openaiChat/batch.js"
import { embeddingsSpec } from "../providers/openaiChat/embeddings.js"
import * as registry from "../providers/registry.js"
import { looseReading, type ReadError, readErrorBody, readSafely } from "../request/errorBody.js"
import { errorOf, statusOfReading } from "../request/errors.js"
import type { Limits, Marker, RawResult, Status, WireBatchApi } from "./api.js"
import { BatchCancelledError, BatchExpiredError, BatchFailedError, type ItemError, MissingResultError, UnparseableResultError } from "./errors.js"
import * as http from "./http.js"

/** The wire APIs with a batch API for chat. */
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

/** OpenAI's `/v1/embeddings` through its Batch API: the chat options but the `api`. */
export type EmbeddingsOptions = Omit<Options, "api">

/** One embeddings request of a batch: its texts, and optionally a model and vector length. */
export interface EmbeddingsRequest {
  readonly texts: ReadonlyArray<string>
  readonly model?: string | undefined
  readonly dimensions?: number | undefined
}

/** One item for a batch: the id results come back under, and its request. */
export interface Entry<Request = Message.ChatRequest> {
  readonly customId: string
  readonly request: Request
}

/** Entries of one model cut to the API's limits, each with its wire text. */
export interface Chunk {
  readonly model: string
  readonly customIds: ReadonlyArray<string>
  readonly lines: ReadonlyArray<string>
  readonly bytes: number
}

export type ItemExit<Response = Message.ChatResponse> = Exit.Exit<Response, Err.LlmError | ItemError>

export interface ItemResult<Response = Message.ChatResponse> {
  readonly customId: string
  readonly result: ItemExit<Response>
}

export interface Service<Request = Message.ChatRequest, Response = Message.ChatResponse> {
  readonly api: Api | "embeddings"
  readonly provider: string
  readonly model: string
  readonly limits: Limits
  readonly pollInterval: Duration.Duration
  readonly maxPollInterval: Duration.Duration
  /** Why the batch API cannot take this request (streaming, a model it does not batch), or undefined. */
  readonly refuses: (request: Request) => string | undefined
  /**
   * The entries mapped to the wire and cut at the limits, by model; an entry the API's
   * mapping refuses (a part it cannot take) is not sent and comes back in `rejected`.
   */
  readonly prepare: (entries: ReadonlyArray<Entry<Request>>) => {
    readonly chunks: ReadonlyArray<Chunk>
    readonly rejected: ReadonlyArray<ItemResult<Response>>
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
    requests: ReadonlyMap<string, Request>
  ) => Stream.Stream<ItemResult<Response>, Err.LlmError>
}

export class ProviderBatch extends Context.Tag("effect-llm/ProviderBatch")<ProviderBatch, Service>() {}

export class EmbeddingsBatch extends Context.Tag("effect-llm/ProviderBatch/Embeddings")<
  EmbeddingsBatch,
  Service<EmbeddingsRequest, EmbedResult>
>() {}

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

/** How one kind of request goes through a batch API: its wire body and its reply decoded, as a live call does both. */
interface Codec<Request, Response> {
  /** Why the API cannot take this request, beyond the model (checked by the wire API). */
  readonly refuses: (request: Request) => string | undefined
  /** The wire body, or the typed error for a request the mapping refuses. */
  readonly body: (request: Request, model: string) => unknown
  /** What the request counts toward `limits.maxInputs` (embedding inputs); 1 by default. */
  readonly inputs?: ((request: Request) => number) | undefined
  /** A 2xx reply's body, decoded. */
  readonly decode: (request: Request, model: string, body: string) => Response | Err.LlmError
}

interface Core {
  readonly provider: string
  readonly wire: WireBatchApi
  readonly readError: ReadError
  readonly auth: (key: Redacted.Redacted<string>) => Record<string, string>
  readonly headers: Record<string, string>
}

const makeWith = <Request extends { readonly model?: string | undefined }, Response>(
  api: Api | "embeddings",
  options: EmbeddingsOptions,
  core: Core,
  codec: Codec<Request, Response>
): Effect.Effect<Service<Request, Response>, ConfigError.ConfigError, HttpClient.HttpClient | KeyPool.KeyPool> =>
  Effect.gen(function* () {
    const { provider, wire } = core
    const limits: Limits = {
      maxItems: yield* positive("maxItems", options.limits?.maxItems, wire.limits.maxItems),
      maxBytes: yield* positive("maxBytes", options.limits?.maxBytes, wire.limits.maxBytes),
      ...(wire.limits.maxInputs === undefined ? {} : { maxInputs: yield* positive("maxInputs", options.limits?.maxInputs, wire.limits.maxInputs) })
    }
    const read = core.readError
    const base = yield* http.make({ provider, model: options.model, auth: core.auth, headers: { ...core.headers, ...options.headers }, readError: read })
    // errors name the model of the batch they are about
    const httpFor = (model: string): http.BatchHttp => (model === base.model ? base : { ...base, model })
    const modelOf = (request: Request) => request.model ?? options.model
    const inputsOf = codec.inputs ?? (() => 1)

    const decode = (raw: Exclude<RawResult, { _tag: "Unparseable" }>, model: string, batchId: string, request: Request): ItemExit<Response> => {
      switch (raw._tag) {
        case "Reply": {
          const decoded = codec.decode(request, model, raw.body)
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

    interface Line {
      readonly customId: string
      readonly line: string
      readonly inputs: number
    }

    const service: Service<Request, Response> = {
      api,
      provider,
      model: options.model,
      limits,
      pollInterval: Duration.decode(options.pollInterval ?? Duration.seconds(10)),
      maxPollInterval: Duration.decode(options.maxPollInterval ?? Duration.seconds(60)),
      refuses: (request) => codec.refuses(request) ?? wire.refuses(modelOf(request)),
      prepare: (entries) => {
        const rejected: Array<ItemResult<Response>> = []
        const byModel = new Map<string, Array<Line>>()
        for (const entry of entries) {
          const model = modelOf(entry.request)
          const body = codec.body(entry.request, model)
          if (Err.isLlmError(body)) {
            rejected.push({ customId: entry.customId, result: Exit.fail(body) })
            continue
          }
          const group = byModel.get(model) ?? []
          group.push({ customId: entry.customId, line: wire.entry(entry.customId, body, model), inputs: inputsOf(entry.request) })
          byModel.set(model, group)
        }
        const maxInputs = limits.maxInputs ?? Infinity
        const chunks: Array<Chunk> = []
        for (const [model, group] of byModel) {
          let current: Array<Line> = []
          let bytes = 0
          let inputs = 0
          const flush = () => {
            if (current.length === 0) return
            chunks.push({ model, customIds: current.map((e) => e.customId), lines: current.map((e) => e.line), bytes: bytes + wire.overhead(current.length) })
            current = []
            bytes = 0
            inputs = 0
          }
          const over = (message: string, customId: string) =>
            rejected.push({ customId, result: Exit.fail(new Err.InvalidRequestError({ provider, model, message: `${provider}: ${message}` })) })
          for (const entry of group) {
            const size = Buffer.byteLength(entry.line)
            if (
              current.length > 0 &&
              (current.length + 1 > limits.maxItems || bytes + size + wire.overhead(current.length + 1) > limits.maxBytes || inputs + entry.inputs > maxInputs)
            ) flush()
            if (size + wire.overhead(1) > limits.maxBytes) {
              over(`this request is ${size} bytes, over the batch API's ${limits.maxBytes} bytes per batch`, entry.customId)
              continue
            }
            if (entry.inputs > maxInputs) {
              over(`this request has ${entry.inputs} inputs, over the batch API's ${maxInputs} inputs per batch`, entry.customId)
              continue
            }
            current.push(entry)
            bytes += size
            inputs += entry.inputs
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
            Stream.filterMap((raw): Option.Option<ItemResult<Response>> => {
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
              [...requests.keys()].filter((id) => !seen.has(id)).map((customId): ItemResult<Response> => ({ customId, result: Exit.fail(unanswered(status, model, unparseable)) }))
            )
          )
          return Stream.concat(answered, rest)
        })
    }
    return service
  })

/** A chat batch service: the live provider's request mapping and decoding of `options.api`. */
export const make = (options: Options): Effect.Effect<Service, ConfigError.ConfigError, HttpClient.HttpClient | KeyPool.KeyPool> => {
  const provider = options.provider ?? vendors[options.api]
  const spec: Spec = registry.specOf(provider, options.api, options.baseUrl)
  return makeWith(options.api, options, {
    provider,
    wire: wireApiOf(options.api, options.baseUrl),
    readError: spec.readError ?? readErrorBody,
    auth: spec.auth,
    headers: { ...spec.headers }
  }, {
    refuses: (request) => (streams(request) ? `a streaming request cannot go through a batch API (the batch answers whole); drop "stream"` : undefined),
    body: (request, model) => spec.body(request, model, false),
    decode: (request, model, body) => spec.decode(request, model, body, 200)
  })
}

/** Most texts in one `/v1/embeddings` request, as a live call takes them. */
const maxTextsPerRequest = 2048

/** Why an embeddings request cannot be sent, as the live `embed` would refuse it, or undefined. */
const refusesEmbeddings = (request: EmbeddingsRequest): string | undefined => {
  if (!Array.isArray(request.texts) || request.texts.length === 0) return "an embeddings request needs at least one text"
  if (request.texts.length > maxTextsPerRequest) return `${request.texts.length} texts, over the ${maxTextsPerRequest} one embeddings request takes; split the item`
  const bad = request.texts.findIndex((text) => typeof text !== "string" || text.length === 0)
  if (bad >= 0) return `texts[${bad}] is ${typeof request.texts[bad] === "string" ? "empty" : "not a string"}`
  if (request.dimensions !== undefined && (!Number.isInteger(request.dimensions) || request.dimensions <= 0)) {
    return `dimensions must be a positive integer, got ${request.dimensions}`
  }
  return undefined
}

/** An embeddings batch service: OpenAI's Batch API over `/v1/embeddings`, decoded as the live `/embeddings` call. */
export const makeEmbeddings = (
  options: EmbeddingsOptions
): Effect.Effect<Service<EmbeddingsRequest, EmbedResult>, ConfigError.ConfigError, HttpClient.HttpClient | KeyPool.KeyPool> => {
  const provider = options.provider ?? "openai"
  const spec: EmbeddingsSpec = embeddingsSpec({ provider, baseUrl: options.baseUrl })
  return makeWith("embeddings", options, {
    provider,
    wire: openaiBatch.batchApi(options.baseUrl, "/v1/embeddings"),
    readError: spec.readError ?? readErrorBody,
    auth: spec.auth,
    headers: { ...spec.headers }
  }, {
    refuses: refusesEmbeddings,
    body: (request, model) => spec.body(request.texts, model, { dimensions: request.dimensions }),
    inputs: (request) => request.texts.length,
    decode: (request, model, body): EmbedResult | Err.LlmError => {
      const decoded = spec.decode(request.texts, model, body, 200)
      if (Err.isLlmError(decoded)) return decoded
      if (decoded.vectors.length !== request.texts.length) {
        return new Err.MalformedResponseError({ provider, model, message: `${provider} returned ${decoded.vectors.length} embeddings for ${request.texts.length} inputs`, excerpt: Err.excerptOf(body) })
      }
      const estimated = decoded.inputTokens === undefined
      const tokens = decoded.inputTokens ?? request.texts.reduce((n, text) => n + estimateTokens(text), 0)
      return { embeddings: decoded.vectors, model, provider, usage: { inputTokens: tokens, outputTokens: 0, totalTokens: tokens, estimated } }
    }
  })
}
