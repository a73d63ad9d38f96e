/**
 * Text embeddings: one service, `embed(texts, { dimensions? })`. Long input lists are split
 * into calls under the provider's per-call limit and reassembled in order. The providers
 * are `Provider.EmbeddingsSpec`s made into this service by `Provider.makeEmbeddings`:
 * `OpenAiCompatible.layerEmbeddings` (`/embeddings`), `Gemini.layerEmbeddings`
 * (`batchEmbedContents`), `Ollama.layerEmbeddings` (`/api/embed`), or one of your own. Every
 * call goes through the same `KeyPool` and `RateLimiter` as chat, and fails with typed
 * `LlmError`s (with `retryable` set) that `Retry` can act on.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Metric from "effect/Metric"
import * as internal from "./internal/embeddings.js"
import type * as Err from "./LlmError.js"
import type { Usage } from "./Message.js"

// ---------------------------------------------------------------------------
// The service
// ---------------------------------------------------------------------------

/** @since 0.1.0 @category models */
export interface EmbedOptions {
  /** Vector length, for models that can shorten their output (text-embedding-3, Gemini, some Ollama models). */
  readonly dimensions?: number | undefined
}

/** @since 0.1.0 @category models */
export interface EmbedResult {
  /** One vector per input text, in input order. */
  readonly embeddings: ReadonlyArray<ReadonlyArray<number>>
  readonly model: string
  readonly provider: string
  /** Input tokens over every call; `outputTokens` is 0. `estimated` when the provider reported none. */
  readonly usage: Usage
}

/** @since 0.1.0 @category models */
export interface Service {
  readonly provider: string
  readonly model: string
  /** The most inputs sent in one call. */
  readonly maxBatchSize: number
  readonly embed: (texts: ReadonlyArray<string>, options?: EmbedOptions) => Effect.Effect<EmbedResult, Err.LlmError>
}

/** @since 0.1.0 @category tags */
export class Embeddings extends Context.Tag("effect-llm/Embeddings")<Embeddings, Service>() {}

/** @since 0.1.0 @category accessors */
export const embed = (texts: ReadonlyArray<string>, options?: EmbedOptions): Effect.Effect<EmbedResult, Err.LlmError, Embeddings> =>
  Effect.flatMap(Embeddings, (service) => service.embed(texts, options))

/** @since 0.1.0 @category layers */
export const layer = (service: Service): Layer.Layer<Embeddings> => Layer.succeed(Embeddings, service)

/**
 * What one call returns, before batches are joined: what an `EmbeddingsSpec` decodes.
 * @since 0.1.0 @category models
 */
export interface BatchResult {
  readonly vectors: ReadonlyArray<ReadonlyArray<number>>
  /** Input tokens of the call, when the provider reported them. */
  readonly inputTokens: number | undefined
}

/** @since 0.1.0 @category models */
export interface MakeOptions {
  readonly provider: string
  readonly model: string
  /** Default 2048 inputs per call. */
  readonly maxBatchSize?: number | undefined
  /** Calls in flight at once for one `embed`. Default 4. */
  readonly concurrency?: number | undefined
  /** Embeds one batch, already under the size limit. */
  readonly embedBatch: (texts: ReadonlyArray<string>, options: EmbedOptions) => Effect.Effect<BatchResult, Err.LlmError>
}

/** @since 0.1.0 @category metrics */
export const inputsCounter: Metric.Metric.Counter<number> = internal.inputsCounter

/**
 * The service from a per-batch call: checks the input, splits it under `maxBatchSize`,
 * runs the calls, checks each returned the right number of vectors, and joins results
 * and usage in input order.
 * @since 0.1.0 @category constructors
 */
export const make: (options: MakeOptions) => Service = internal.make
