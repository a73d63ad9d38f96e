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
