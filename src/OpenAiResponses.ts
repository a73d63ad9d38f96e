/**
 * OpenAI Responses (`/v1/responses`): the system prompt goes to `instructions`, reasoning
 * summaries and function calls come back as their own items. Options and layers; the wire
 * format lives in `internal/providers/openaiResponses`.
 *
 * @since 0.1.0
 */
import type { ConfigError } from "effect/ConfigError"
import type * as Effect from "effect/Effect"
import * as internal from "./internal/providers/openaiResponses/spec.js"
import * as registry from "./internal/providers/registry.js"
import type { LanguageModel } from "./LanguageModel.js"
import * as Provider from "./Provider.js"

/** @since 0.1.0 @category models */
export interface Options extends Provider.CommonOptions {
  /** Defaults to `https://api.openai.com/v1`. */
  readonly baseUrl?: string | undefined
  /** The provider id used in errors, spans and usage. Default `openai`. */
  readonly provider?: string | undefined
  /**
   * Asks for reasoning summaries (`reasoning.summary`) when a request sets `reasoningEffort`;
   * without it OpenAI sends none, and `reasoning` stays empty.
   */
  readonly reasoningSummary?: "auto" | "concise" | "detailed" | undefined
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
 * Options read from config, e.g. `layerConfig({ model: Config.string("OPENAI_MODEL") })`.
 * @since 0.1.0 @category layers
 */
export const layerConfig = providerLayers.layerConfig

/**
 * The model with its key pool read from `OPENAI_API_KEY` (one key, or a comma-separated list).
 * @since 0.1.0 @category layers
 */
export const layerFromEnv = (options: Omit<Options, "provider">) =>
  Provider.withEnvKeys(layer({ ...options, provider: "openai" }), "openai", registry.providers.openai.envVar)
