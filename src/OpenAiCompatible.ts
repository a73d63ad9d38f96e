/**
 * OpenAI Chat Completions (`/chat/completions`) and every endpoint that speaks it:
 * OpenAI, OpenRouter, DeepSeek, Groq, Together, vLLM, Ollama's `/v1`, Zhipu, DashScope's
 * compatible mode and Volcano Ark. Options, presets and layers; the wire format lives in
 * `internal/providers/openaiChat`.
 *
 * @since 0.1.0
 */
import type * as HttpClient from "@effect/platform/HttpClient"
import * as Config from "effect/Config"
import type { ConfigError } from "effect/ConfigError"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import type * as Budget from "./Budget.js"
import * as openrouterKey from "./internal/providers/openaiChat/openrouterKey.js"
import * as internal from "./internal/providers/openaiChat/spec.js"
import * as registry from "./internal/providers/registry.js"
import * as KeyPool from "./KeyPool.js"
import type { LanguageModel } from "./LanguageModel.js"
import * as Provider from "./Provider.js"
import type * as RateLimiter from "./RateLimiter.js"

// ---------------------------------------------------------------------------
// Options and presets
// ---------------------------------------------------------------------------

/** @since 0.1.0 @category models */
export interface Options extends Provider.CommonOptions {
  /** Defaults to `https://api.openai.com/v1`. */
  readonly baseUrl?: string | undefined
  /** The provider id used in errors, spans and usage. Default `openai`. */
  readonly provider?: string | undefined
  /**
   * Which field carries `maxTokens`. OpenAI now wants `max_completion_tokens` (reasoning
   * models reject `max_tokens`); most compatible servers only know `max_tokens`.
   */
  readonly maxTokensField?: "max_tokens" | "max_completion_tokens" | undefined
  /**
   * How a key is sent. `bearer` (default): as is. `zhipu`: an `id.secret` key is signed into
   * a short-lived JWT per request (cached per key until a minute before it expires), so the
   * secret never travels; a key without a dot still goes as a Bearer token.
   */
  readonly auth?: "bearer" | "zhipu" | undefined
  /** How long a signed Zhipu token lives. Default 30 minutes. */
  readonly zhipuTokenTtl?: Duration.DurationInput | undefined
}

/** @since 0.1.0 @category presets */
export interface Preset {
  readonly provider: string
  readonly baseUrl: string
  /** The env var holding the key, or a comma-separated list of keys. */
  readonly envVar: string
  readonly maxTokensField: "max_tokens" | "max_completion_tokens"
  /** Local servers (vLLM, Ollama) usually need no key: an unset env var means a keyless pool. */
  readonly keyOptional?: boolean
}

/**
 * Every provider that speaks Chat Completions, with its documented base URL and key env var
 * (from the one provider table, which `ProviderConfig` reads too).
 * @since 0.1.0 @category presets
 */
export const presets: { readonly [K in PresetName]: Preset & { readonly provider: K } } = registry.chatPresets()

/** @since 0.1.0 @category presets */
export type PresetName = registry.ChatProvider

// ---------------------------------------------------------------------------
// Layers
// ---------------------------------------------------------------------------

/** @since 0.1.0 @category constructors */
export const make = (options: Options): Effect.Effect<LanguageModel["Type"], ConfigError, Provider.Requirements> =>
  Provider.make(internal.spec(options), options)

const providerLayers = Provider.layers(make)

/**
 * @since 0.1.0 @category layers
 */
export const layer = providerLayers.layer

/**
 * Options read from config, e.g. `layerConfig({ model: Config.string("OPENAI_MODEL") })`.
 * @since 0.1.0 @category layers
 */
export const layerConfig = providerLayers.layerConfig

/**
 * A preset provider with its key pool built from the preset's env var (one key, or a
 * comma-separated list): `layerPreset("openrouter", { model: "openai/gpt-4o-mini" })`.
 * @since 0.1.0 @category layers
 */
export const layerPreset = (
  name: PresetName,
  options: Omit<Options, "provider">
): Layer.Layer<LanguageModel, ConfigError, HttpClient.HttpClient | RateLimiter.RateLimiter> => {
  const preset: Preset = presets[name]
  return layer({ baseUrl: preset.baseUrl, maxTokensField: preset.maxTokensField, ...options, provider: preset.provider }).pipe(
    Layer.provide(KeyPool.layerConfig({ providerId: preset.provider, keys: Config.redacted(preset.envVar), optional: preset.keyOptional === true }))
  )
}

/** @since 0.1.0 @category models */
export interface OpenRouterLimitsOptions {
  /** Default OpenRouter's, `https://openrouter.ai/api/v1`. */
  readonly baseUrl?: string | undefined
  /** How often to read the key endpoint again. Default 5 minutes. */
  readonly every?: Duration.DurationInput | undefined
  /** The budget that gets the remaining credit: requests it cannot pay for fail before sending. */
  readonly budget?: Budget.Controller | undefined
  /** The longest wait for one reading. Default 10 seconds. */
  readonly timeout?: Duration.DurationInput | undefined
}

/**
 * OpenRouter's limits and credit, read from its key endpoint (`GET /key`) with a key of the
 * pool when the layer is built, then every `every` in the background (stopped with the
 * layer's scope). The request rate goes to the `RateLimiter` (`learnLimits`: lowered, never
 * raised; visible in `status().reported` with the credit), and the remaining credit to
 * `budget`. A reading that fails is logged (never with the key) and changes nothing:
 * the layer never fails. Other providers report limits in response headers only, which the
 * limiter reads on every reply (`observe`).
 * @since 0.1.0 @category layers
 */
export const layerOpenRouterLimits = (
  options: OpenRouterLimitsOptions = {}
): Layer.Layer<never, never, KeyPool.KeyPool | RateLimiter.RateLimiter | HttpClient.HttpClient> => {
  const reading = openrouterKey.poll({
    baseUrl: options.baseUrl ?? presets.openrouter.baseUrl,
    budget: options.budget,
    timeout: Duration.decode(options.timeout ?? "10 seconds")
  })
  return Layer.scopedDiscard(
    Effect.zipRight(reading, Effect.forkScoped(Effect.schedule(reading, Schedule.spaced(options.every ?? "5 minutes"))))
  )
}
