/**
 * Bulk runs through the providers' batch APIs, at their batch prices (about half the live
 * ones) and their own, larger limits, for work that can wait up to a day: OpenAI's Batch API
 * (Chat Completions, Responses and embeddings), Anthropic's Message Batches and Gemini's Batch Mode.
 *
 * `run` takes the same items as `Batch.run` and streams one `Batch.Result` per item, as each
 * batch ends. Each reply is decoded by the same code as a live call of the API, and each item
 * ends exactly once: a `ChatResponse`, the `LlmError` a live call would have given, or one of
 * this module's errors (its batch expired, was cancelled or failed; its result line could
 * not be read; the results left it out). Items are split across batches by model and at the
 * API's documented limits; custom ids map results back whatever their order; polls back off
 * to once a minute, each on a key leased from the `KeyPool` for that call.
 *
 * ```ts
 * const results = ProviderBatch.run(["one prompt", "another"]).pipe(
 *   Stream.provideLayer(ProviderBatch.layer({ api: "anthropic", model: "claude-3-5-haiku-latest" }))
 * )
 * ```
 *
 * `runEmbeddings` does the same for embeddings, through OpenAI's `/v1/embeddings` batches
 * (`layerEmbeddings`): each item's vectors decoded as a live `Embeddings.embed` decodes them.
 *
 * The CLI's `effect-llm batch --batch-api` adds a state file, so that a killed run resumes.
 *
 * @since 0.1.0
 */
import type * as HttpClient from "@effect/platform/HttpClient"
import type * as ConfigError from "effect/ConfigError"
import type * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Stream from "effect/Stream"
import type * as Batch from "./Batch.js"
import type { EmbedResult } from "./Embeddings.js"
import type * as api from "./internal/providerBatch/api.js"
import * as client from "./internal/providerBatch/client.js"
import * as errors from "./internal/providerBatch/errors.js"
import * as internal from "./internal/providerBatch/run.js"
import type * as KeyPool from "./KeyPool.js"
import type { LlmError } from "./LlmError.js"
import type * as Message from "./Message.js"

/**
 * The wire APIs with a batch API: `chat` (OpenAI Chat Completions), `responses` (OpenAI
 * Responses), `anthropic`, `gemini`.
 * @since 0.1.0 @category models
 */
export type Api = client.Api

/**
 * `api`, the default `model`, and where and as whom it is served (`baseUrl`, `provider`,
 * `headers`, as the live provider takes them); `pollInterval` (default 10 s) and
 * `maxPollInterval` (default 60 s) pace the polls; `limits` may be tighter than the API's.
 * @since 0.1.0 @category models
 */
export type Options = client.Options

/**
 * A batch API's documented limits per batch: requests, bytes of input, and for embeddings
 * batches the embedding inputs across their requests.
 * @since 0.1.0 @category models
 */
export type Limits = api.Limits

/**
 * Where a batch is, by the provider's own counts: `phase` (`validating`, `in_progress`,
 * `finalizing`, `ended`), `outcome` once ended, `counts` and the provider's `reason`.
 * @since 0.1.0 @category models
 */
export type Status = api.Status

/**
 * What identifies a submission for `Service.find`: a name the batch carries, its size, and
 * when it was sent.
 * @since 0.1.0 @category models
 */
export type Marker = api.Marker

/**
 * The steps of a run, for callers that keep their own state (the CLI's resumable runs):
 * `refuses`, `prepare` (map to the wire and cut at the limits), `submit`, `find`, `poll`,
 * `results` (each item exactly once), `cancel`. Chat by default; `Service<EmbeddingsRequest,
 * Embeddings.EmbedResult>` for embeddings.
 * @since 0.1.0 @category models
 */
export type Service<Request = Message.ChatRequest, Response = Message.ChatResponse> = client.Service<Request, Response>

/** @since 0.1.0 @category models */
export type Entry<Request = Message.ChatRequest> = client.Entry<Request>
/** @since 0.1.0 @category models */
export type Chunk = client.Chunk
/** @since 0.1.0 @category models */
export type ItemResult<Response = Message.ChatResponse> = client.ItemResult<Response>

/** @since 0.1.0 @category tags */
export const ProviderBatch: typeof client.ProviderBatch = client.ProviderBatch
/** @since 0.1.0 @category tags */
export type ProviderBatch = client.ProviderBatch

/**
 * A batch API's service, from the live provider's mapping of its `api`. A limit that is not a
 * positive integer fails with a `ConfigError` naming it.
 * @since 0.1.0 @category constructors
 */
export const make: (options: Options) => Effect.Effect<Service, ConfigError.ConfigError, HttpClient.HttpClient | KeyPool.KeyPool> = client.make

/** @since 0.1.0 @category layers */
export const layer = (options: Options): Layer.Layer<ProviderBatch, ConfigError.ConfigError, HttpClient.HttpClient | KeyPool.KeyPool> =>
  Layer.effect(client.ProviderBatch, client.make(options))

/** @since 0.1.0 @category running */
export type RunOptions = internal.RunOptions

// ---------------------------------------------------------------------------
// Embeddings
// ---------------------------------------------------------------------------

/**
 * The options of an embeddings batch service: those of `layer` but the `api`, which is
 * OpenAI's `/v1/embeddings` (or a compatible server's, with `baseUrl` and `provider`).
 * @since 0.1.0 @category models
 */
export type EmbeddingsOptions = client.EmbeddingsOptions

/**
 * One embeddings request: its texts (at most 2048, as one live call takes), and optionally a
 * `model` and `dimensions`.
 * @since 0.1.0 @category models
 */
export type EmbeddingsRequest = client.EmbeddingsRequest

/**
 * An item of `runEmbeddings`: one text, or an `EmbeddingsRequest` with an optional `id`.
 * @since 0.1.0 @category models
 */
export type EmbeddingsItem = internal.EmbeddingsItem

/**
 * One embeddings item's outcome, in `Batch`'s shape: its vectors, model and usage as
 * `Embeddings.embed` gives them.
 * @since 0.1.0 @category models
 */
export type EmbeddingsResult = internal.EmbeddingsResult

/** @since 0.1.0 @category tags */
export const EmbeddingsBatch: typeof client.EmbeddingsBatch = client.EmbeddingsBatch
/** @since 0.1.0 @category tags */
export type EmbeddingsBatch = client.EmbeddingsBatch

/**
 * The embeddings batch service. Batches are cut at 50,000 requests, 200 MB and 50,000
 * embedding inputs; a limit that is not a positive integer fails with a `ConfigError`.
 * @since 0.1.0 @category constructors
 */
export const makeEmbeddings: (
  options: EmbeddingsOptions
) => Effect.Effect<Service<EmbeddingsRequest, EmbedResult>, ConfigError.ConfigError, HttpClient.HttpClient | KeyPool.KeyPool> = client.makeEmbeddings

/** @since 0.1.0 @category layers */
export const layerEmbeddings = (options: EmbeddingsOptions): Layer.Layer<EmbeddingsBatch, ConfigError.ConfigError, HttpClient.HttpClient | KeyPool.KeyPool> =>
  Layer.effect(client.EmbeddingsBatch, client.makeEmbeddings(options))

/**
 * `run` for embeddings: every item once, as its vectors or a typed failure. An item a batch
 * cannot take (no texts, an empty text, more than 2048 texts) fails the run with
 * `BatchInputError` naming it, before anything is uploaded.
 * @since 0.1.0 @category running
 */
export const runEmbeddings: <E = never, R = never>(
  items: Iterable<EmbeddingsItem> | Stream.Stream<EmbeddingsItem, E, R>,
  options?: RunOptions
) => Stream.Stream<EmbeddingsResult, E | LlmError | BatchInputError, R | EmbeddingsBatch> = internal.runEmbeddings

/**
 * One item's outcome, in `Batch`'s shape.
 * @since 0.1.0 @category models
 */
export type Result = Batch.Result<Message.ChatResponse, LlmError | ItemError>

/**
 * Submits every item, polls, and streams one `Result` per item as its batch ends. A request a
 * batch API cannot take (a streaming one, a model it does not batch) fails the run with
 * `BatchInputError` naming the item, before anything is uploaded. Interrupting the stream
 * leaves submitted batches running at the provider (cancel them with `Service.cancel`).
 * @since 0.1.0 @category running
 */
export const run: <E = never, R = never>(
  items: Iterable<Batch.Item> | Stream.Stream<Batch.Item, E, R>,
  options?: RunOptions
) => Stream.Stream<Result, E | LlmError | BatchInputError, R | ProviderBatch> = internal.run

/** @since 0.1.0 @category errors */
export const BatchExpiredError: typeof errors.BatchExpiredError = errors.BatchExpiredError
/** @since 0.1.0 @category errors */
export type BatchExpiredError = errors.BatchExpiredError
/** @since 0.1.0 @category errors */
export const BatchCancelledError: typeof errors.BatchCancelledError = errors.BatchCancelledError
/** @since 0.1.0 @category errors */
export type BatchCancelledError = errors.BatchCancelledError
/** @since 0.1.0 @category errors */
export const BatchFailedError: typeof errors.BatchFailedError = errors.BatchFailedError
/** @since 0.1.0 @category errors */
export type BatchFailedError = errors.BatchFailedError
/** @since 0.1.0 @category errors */
export const UnparseableResultError: typeof errors.UnparseableResultError = errors.UnparseableResultError
/** @since 0.1.0 @category errors */
export type UnparseableResultError = errors.UnparseableResultError
/** @since 0.1.0 @category errors */
export const MissingResultError: typeof errors.MissingResultError = errors.MissingResultError
/** @since 0.1.0 @category errors */
export type MissingResultError = errors.MissingResultError
/** @since 0.1.0 @category errors */
export const BatchInputError: typeof errors.BatchInputError = errors.BatchInputError
/** @since 0.1.0 @category errors */
export type BatchInputError = errors.BatchInputError

/**
 * How an item can end in a batch besides a live call's `LlmError`s.
 * @since 0.1.0 @category errors
 */
export type ItemError = errors.ItemError

/**
 * The batch price rule when the price data has no batch rates: every API documents its batch
 * price as half the live one.
 * @since 0.1.0 @category prices
 */
export const batchDiscount = 0.5
