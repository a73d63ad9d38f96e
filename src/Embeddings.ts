/**
 * Text embeddings: one service, `embed(texts, { dimensions? })`, over OpenAI-compatible
 * `/embeddings`, Gemini `batchEmbedContents` and Ollama `/api/embed`. Long input lists
 * are split into calls under the provider's per-call limit and reassembled in order.
 * Every call goes through the same `KeyPool` and `RateLimiter` as chat, and fails with
 * typed `LlmError`s (with `retryable` set) that `Retry` can act on.
 *
 * @since 0.1.0
 */
import * as Config from "effect/Config"
import type { ConfigError } from "effect/ConfigError"
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Metric from "effect/Metric"
import * as internal from "./internal/embeddings.js"
import * as GeminiWire from "./internal/providers/gemini/embeddings.js"
import * as OllamaWire from "./internal/providers/ollama/embeddings.js"
import * as OpenAiWire from "./internal/providers/openaiChat/embeddings.js"
import type * as Err from "./LlmError.js"
import type { Usage } from "./Message.js"
import type { Requirements } from "./Provider.js"

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
 * What one call returns, before batches are joined.
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

// ---------------------------------------------------------------------------
// The wire APIs
// ---------------------------------------------------------------------------

/**
 * Options common to the embeddings layers.
 * @since 0.1.0 @category models
 */
export interface ProviderOptions {
  readonly model: string
  readonly baseUrl?: string | undefined
  /** The provider id used in errors, spans and usage. */
  readonly provider?: string | undefined
  readonly headers?: Record<string, string> | undefined
  /** Total time for one call. Default 10 minutes. */
  readonly timeout?: Duration.DurationInput | undefined
  /**
   * The largest reply read, in bytes; past it the call fails with `ResponseTooLargeError`.
   * Default 256 MiB (2048 vectors of 3072 floats as JSON text are about 130 MB).
   */
  readonly maxResponseBytes?: number | undefined
  /** The most inputs per call; the provider's limit by default (OpenAI 2048, Gemini 100, Ollama 2048). */
  readonly maxBatchSize?: number | undefined
  /** Calls in flight at once for one `embed`. Default 4. */
  readonly concurrency?: number | undefined
}

/**
 * OpenAI-compatible `/embeddings` (OpenAI, OpenRouter, Together, vLLM, Ollama's `/v1`, …).
 * @since 0.1.0 @category constructors
 */
export const makeOpenAiCompatible = (options: ProviderOptions): Effect.Effect<Service, ConfigError, Requirements> =>
  internal.fromWire(OpenAiWire.embeddings(options), options)

/**
 * Gemini `batchEmbedContents`; `taskType` (e.g. `RETRIEVAL_DOCUMENT`) is sent with each text.
 * @since 0.1.0 @category constructors
 */
export const makeGemini = (
  options: ProviderOptions & { readonly taskType?: string | undefined }
): Effect.Effect<Service, ConfigError, Requirements> => internal.fromWire(GeminiWire.embeddings(options), options)

/**
 * Ollama `/api/embed`.
 * @since 0.1.0 @category constructors
 */
export const makeOllama = (
  options: ProviderOptions & { readonly keepAlive?: string | undefined }
): Effect.Effect<Service, ConfigError, Requirements> => internal.fromWire(OllamaWire.embeddings(options), options)

/** A maker's `layer` (options given) and `layerConfig` (options read from config). */
const layers = <Options>(make: (options: Options) => Effect.Effect<Service, ConfigError, Requirements>) => ({
  layer: (options: Options): Layer.Layer<Embeddings, ConfigError, Requirements> => Layer.effect(Embeddings, make(options)),
  layerConfig: (options: Config.Config.Wrap<Options>): Layer.Layer<Embeddings, ConfigError, Requirements> =>
    Layer.effect(Embeddings, Effect.flatMap(Config.unwrap(options), make))
})

const openAiCompatible = layers(makeOpenAiCompatible)
const gemini = layers(makeGemini)
const ollama = layers(makeOllama)

/** @since 0.1.0 @category layers */
export const layerOpenAiCompatible = openAiCompatible.layer

/** @since 0.1.0 @category layers */
export const layerOpenAiCompatibleConfig = openAiCompatible.layerConfig

/** @since 0.1.0 @category layers */
export const layerGemini = gemini.layer

/** @since 0.1.0 @category layers */
export const layerGeminiConfig = gemini.layerConfig

/** @since 0.1.0 @category layers */
export const layerOllama = ollama.layer

/** @since 0.1.0 @category layers */
export const layerOllamaConfig = ollama.layerConfig
