/**
 * Google Gemini: `generateContent`, `streamGenerateContent?alt=sse`, `systemInstruction`
 * and `functionCall`. Gemini has no tool-call ids: calls get stable synthetic ids
 * (`<responseId>-call-<n>`), and tool results are paired by function name, taken from
 * `ToolMessage.name` or from the assistant's earlier call with the same id. Options and
 * layers; the wire format lives in `internal/providers/gemini`.
 *
 * @since 0.1.0
 */
import type { ConfigError } from "effect/ConfigError"
import type * as Effect from "effect/Effect"
import type * as Embeddings from "./Embeddings.js"
import * as embeddings from "./internal/providers/gemini/embeddings.js"
import * as internal from "./internal/providers/gemini/spec.js"
import * as registry from "./internal/providers/registry.js"
import type { LanguageModel } from "./LanguageModel.js"
import * as Provider from "./Provider.js"

/** @since 0.1.0 @category models */
export interface Options extends Provider.CommonOptions {
  /** e.g. `gemini-2.5-flash`; `models/…` and `tunedModels/…` names are used as given. */
  readonly model: string
  /** Defaults to `https://generativelanguage.googleapis.com/v1beta`. */
  readonly baseUrl?: string | undefined
  /** The provider id used in errors, spans and usage. Default `gemini`. */
  readonly provider?: string | undefined
}

/** @since 0.1.0 @category constants */
export const defaultBaseUrl: string = internal.defaultBaseUrl

/**
 * The env var that conventionally holds Gemini keys (one, or a comma-separated list).
 * @since 0.1.0 @category constants
 */
export const envVar: string = registry.providers.gemini.envVar

/** @since 0.1.0 @category constructors */
export const make = (options: Options): Effect.Effect<LanguageModel["Type"], ConfigError, Provider.Requirements> =>
  Provider.make(internal.spec(options), options)

const providerLayers = Provider.layers(make)

/** @since 0.1.0 @category layers */
export const layer = providerLayers.layer

/**
 * Options read from config, e.g. `layerConfig({ model: Config.string("GEMINI_MODEL") })`.
 * @since 0.1.0 @category layers
 */
export const layerConfig = providerLayers.layerConfig

/**
 * `batchEmbedContents`: `baseUrl` and `provider` as for chat, `maxBatchSize` defaults to
 * Gemini's 100.
 * @since 0.1.0 @category embeddings
 */
export interface EmbeddingsOptions extends Provider.EmbeddingsOptions {
  /** Sent with each text, e.g. `RETRIEVAL_DOCUMENT` or `RETRIEVAL_QUERY`. */
  readonly taskType?: string | undefined
}

/** @since 0.1.0 @category embeddings */
export const makeEmbeddings = (options: EmbeddingsOptions): Effect.Effect<Embeddings.Service, ConfigError, Provider.Requirements> =>
  Provider.makeEmbeddings(embeddings.embeddingsSpec(options), options)

const embeddingsLayers = Provider.embeddingsLayers(makeEmbeddings)

/**
 * `Embeddings` over `batchEmbedContents`: `layerEmbeddings({ model: "gemini-embedding-001" })`.
 * @since 0.1.0 @category embeddings
 */
export const layerEmbeddings = embeddingsLayers.layer

/** @since 0.1.0 @category embeddings */
export const layerEmbeddingsConfig = embeddingsLayers.layerConfig
