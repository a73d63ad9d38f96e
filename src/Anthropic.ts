/**
 * Anthropic Messages (`/v1/messages`): the system prompt lifted out, `tool_use`, thinking,
 * and the SSE event set. Options and layers; the wire format lives in
 * `internal/providers/anthropic`.
 *
 * @since 0.1.0
 */
import type { ConfigError } from "effect/ConfigError"
import type * as Effect from "effect/Effect"
import { defaultMaxTokens as maxTokens } from "./internal/providers/anthropic/request.js"
import * as internal from "./internal/providers/anthropic/spec.js"
import * as registry from "./internal/providers/registry.js"
import type { LanguageModel } from "./LanguageModel.js"
import type * as Message from "./Message.js"
import * as Provider from "./Provider.js"

/** @since 0.1.0 @category models */
export interface Options extends Provider.CommonOptions {
  /** Defaults to `https://api.anthropic.com`. */
  readonly baseUrl?: string | undefined
  /** The provider id used in errors, spans and usage. Default `anthropic`. */
  readonly provider?: string | undefined
  /** The `anthropic-version` header. Default `2023-06-01`. */
  readonly version?: string | undefined
  /** `max_tokens` when a request sets none: Anthropic requires it. Default 4096. */
  readonly defaultMaxTokens?: number | undefined
  /**
   * Thinking budgets (tokens) per `reasoningEffort`. Defaults: minimal 1024, low 2048,
   * medium 8192, high 24576; `none` turns thinking off.
   */
  readonly thinkingBudgets?: Partial<Record<Exclude<Message.ReasoningEffort, "none">, number>> | undefined
}

/** @since 0.1.0 @category constants */
export const defaultBaseUrl: string = internal.defaultBaseUrl

/** @since 0.1.0 @category constants */
export const defaultVersion: string = internal.defaultVersion

/** @since 0.1.0 @category constants */
export const defaultMaxTokens: number = maxTokens

/** @since 0.1.0 @category constructors */
export const make = (options: Options): Effect.Effect<LanguageModel["Type"], ConfigError, Provider.Requirements> =>
  Provider.make(internal.spec(options), options)

const providerLayers = Provider.layers(make)

/** @since 0.1.0 @category layers */
export const layer = providerLayers.layer

/**
 * Options read from config, e.g. `layerConfig({ model: Config.string("ANTHROPIC_MODEL") })`.
 * @since 0.1.0 @category layers
 */
export const layerConfig = providerLayers.layerConfig

/**
 * The model with its key pool read from `ANTHROPIC_API_KEY` (one key, or a comma-separated list).
 * @since 0.1.0 @category layers
 */
export const layerFromEnv = (options: Omit<Options, "provider">) =>
  Provider.withEnvKeys(layer({ ...options, provider: "anthropic" }), "anthropic", registry.providers.anthropic.envVar)
