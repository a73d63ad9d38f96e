/**
 * Ollama's native API: `/api/chat` (JSON, and NDJSON streaming), and `/api/embed` for
 * `Embeddings` (`layerEmbeddings`). A local Ollama needs no key: provide `KeyPool.layerKeyless("ollama")`. A key,
 * when the pool has one (Ollama behind a proxy, or ollama.com), is sent as a bearer token.
 * Options and layers; the wire format lives in `internal/providers/ollama`.
 *
 * @since 0.1.0
 */
import type { ConfigError } from "effect/ConfigError"
import type * as Effect from "effect/Effect"
import type * as Embeddings from "./Embeddings.js"
import * as embeddings from "./internal/providers/ollama/embeddings.js"
import * as internal from "./internal/providers/ollama/spec.js"
import type { LanguageModel } from "./LanguageModel.js"
import * as Provider from "./Provider.js"

/** @since 0.1.0 @category models */
export interface Options extends Provider.CommonOptions {
  /** Defaults to `http://localhost:11434`. */
  readonly baseUrl?: string | undefined
  /** The provider id used in errors, spans and usage. Default `ollama`. */
  readonly provider?: string | undefined
  /** How long Ollama keeps the model loaded after a call, e.g. `"10m"`; Ollama's default when absent. */
  readonly keepAlive?: string | undefined
}

/** @since 0.1.0 @category constants */
export const defaultBaseUrl: string = internal.defaultBaseUrl

/** @since 0.1.0 @category constructors */
export const make = (options: Options): Effect.Effect<LanguageModel["Type"], ConfigError, Provider.Requirements> =>
  Provider.make(internal.spec(options), options)

const providerLayers = Provider.layers(make)

/** @since 0.1.0 @category layers */
export const layer = providerLayers.layer

/**
 * Options read from config, e.g. `layerConfig({ model: Config.string("OLLAMA_MODEL") })`.
 * @since 0.1.0 @category layers
 */
export const layerConfig = providerLayers.layerConfig

/**
 * `/api/embed`: `baseUrl` and `provider` as for chat, `maxBatchSize` defaults to 2048.
 * @since 0.1.0 @category embeddings
 */
export interface EmbeddingsOptions extends Provider.EmbeddingsOptions {
  /** How long Ollama keeps the model loaded after a call, e.g. `"10m"`; Ollama's default when absent. */
  readonly keepAlive?: string | undefined
}

/** @since 0.1.0 @category embeddings */
export const makeEmbeddings = (options: EmbeddingsOptions): Effect.Effect<Embeddings.Service, ConfigError, Provider.Requirements> =>
  Provider.makeEmbeddings(embeddings.embeddingsSpec(options), options)

const embeddingsLayers = Provider.embeddingsLayers(makeEmbeddings)

/**
 * `Embeddings` over `/api/embed`: `layerEmbeddings({ model: "nomic-embed-text" })`.
 * @since 0.1.0 @category embeddings
 */
export const layerEmbeddings = embeddingsLayers.layer

/** @since 0.1.0 @category embeddings */
export const layerEmbeddingsConfig = embeddingsLayers.layerConfig
