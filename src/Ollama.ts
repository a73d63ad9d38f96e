/**
 * Ollama's native API: `/api/chat` (JSON, and NDJSON streaming); `/api/embed` is served by
 * `Embeddings`. A local Ollama needs no key: provide `KeyPool.layerKeyless("ollama")`. A key,
 * when the pool has one (Ollama behind a proxy, or ollama.com), is sent as a bearer token.
 * Options and layers; the wire format lives in `internal/providers/ollama`.
 *
 * @since 0.1.0
 */
import type { ConfigError } from "effect/ConfigError"
import type * as Effect from "effect/Effect"
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
