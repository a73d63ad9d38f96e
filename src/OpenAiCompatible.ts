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
import type * as Budget from "./Budget.js"
import type * as Embeddings from "./Embeddings.js"
import * as embeddings from "./internal/providers/openaiChat/embeddings.js"
import * as openrouterKey from "./internal/providers/openaiChat/openrouterKey.js"
import * as chatPresets from "./internal/providers/openaiChat/presets.js"
import * as internal from "./internal/providers/openaiChat/spec.js"
import * as zhipu from "./internal/providers/openaiChat/zhipu.js"
import * as providerKeys from "./internal/providerConfig/keys.js"
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
   * a short-lived JWT per request (cached per key until a minute before it expires, signed anew
   * after a 401 that says it expired), so the secret never travels; a key without a dot still
   * goes as a Bearer token, and one with nothing before or after its dot fails the layer.
   */
  readonly auth?: "bearer" | "zhipu" | undefined
  /** How long a signed Zhipu token lives: from 1 minute to 24 hours. Default 30 minutes. */
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
export const presets: { readonly [K in PresetName]: Preset & { readonly provider: K } } = chatPresets.chatPresets()

/** @since 0.1.0 @category presets */
export type PresetName = chatPresets.ChatProvider

// ---------------------------------------------------------------------------
// Layers
// ---------------------------------------------------------------------------

/**
 * With `auth: "zhipu"`, a `zhipuTokenTtl` outside 1 minute to 24 hours, or a key of the pool
 * with nothing before or after its dot, fails with a `ConfigError` (the key named by position).
 * @since 0.1.0 @category constructors
 */
export const make = (options: Options): Effect.Effect<LanguageModel["Type"], ConfigError, Provider.Requirements> =>
  options.auth === "zhipu"
    ? Effect.flatMap(KeyPool.KeyPool, (pool) =>
      Effect.zipRight(zhipu.check(options.zhipuTokenTtl, pool), Effect.suspend(() => Provider.make(internal.spec(options), options))))
    : Provider.make(internal.spec(options), options)

const providerLayers = Provider.layers(make)

/**
 * The model as a layer. Only `auth: "zhipu"` checks anything as it builds (see `make`), so
 * only a layer that may sign keys can fail.
 * @since 0.1.0 @category layers
 */
export const layer: {
  (options: Options & { readonly auth: "zhipu" }): Layer.Layer<LanguageModel, ConfigError, Provider.Requirements>
  (options: Options & { readonly auth?: "bearer" | undefined }): Layer.Layer<LanguageModel, never, Provider.Requirements>
  (options: Options): Layer.Layer<LanguageModel, ConfigError, Provider.Requirements>
  // `make` fails only on the zhipu path, which the overloads above type as failing
} = providerLayers.layer as (options: Options) => Layer.Layer<LanguageModel, never, Provider.Requirements>

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
  const baseUrl = options.baseUrl ?? preset.baseUrl
  return layer({ baseUrl, maxTokensField: preset.maxTokensField, ...options, provider: preset.provider }).pipe(
    Layer.provide(KeyPool.layerConfig({ providerId: preset.provider, keys: Config.redacted(preset.envVar), optional: providerKeys.keyOptional(preset.provider, "chat", baseUrl) }))
  )
}

// ---------------------------------------------------------------------------
// Embeddings
// ---------------------------------------------------------------------------

/**
 * `/embeddings`: `baseUrl` defaults to `https://api.openai.com/v1`, `provider` to `openai`,
 * `maxBatchSize` to OpenAI's 2048.
 * @since 0.1.0 @category embeddings
 */
export type EmbeddingsOptions = Provider.EmbeddingsOptions

/**
 * OpenAI-compatible `/embeddings` (OpenAI, OpenRouter, Together, vLLM, Ollama's `/v1`, …).
 * @since 0.1.0 @category embeddings
 */
export const makeEmbeddings = (options: EmbeddingsOptions): Effect.Effect<Embeddings.Service, ConfigError, Provider.Requirements> =>
  Provider.makeEmbeddings(embeddings.embeddingsSpec(options), options)

const embeddingsLayers = Provider.embeddingsLayers(makeEmbeddings)

/**
 * `Embeddings` over `/embeddings`: `layerEmbeddings({ model: "text-embedding-3-small" })`.
 * @since 0.1.0 @category embeddings
 */
export const layerEmbeddings = embeddingsLayers.layer

/** @since 0.1.0 @category embeddings */
export const layerEmbeddingsConfig = embeddingsLayers.layerConfig

// ---------------------------------------------------------------------------
// OpenRouter's key endpoint
// ---------------------------------------------------------------------------

/** @since 0.1.0 @category models */
export interface OpenRouterLimitsOptions {
  /** Default OpenRouter's, `https://openrouter.ai/api/v1`. */
  readonly baseUrl?: string | undefined
  /** How often to read the key endpoint again: at least 10 seconds. Default 5 minutes. */
  readonly every?: Duration.DurationInput | undefined
  /** The budget that gets the remaining credit: requests it cannot pay for fail before sending. */
  readonly budget?: Budget.Controller | undefined
  /** The longest wait for one reading: finite. Default 10 seconds. */
  readonly timeout?: Duration.DurationInput | undefined
}

/**
 * OpenRouter's credit, read from its key endpoint (`GET /key`) with a key of the pool when the
 * layer is built, then every `every` in the background (stopped with the layer's scope). The
 * credit (`limit`, `limit_remaining`, `usage`, each read on its own) shows in the limiter's
 * `status().reported`, and the remaining credit goes to `budget`. The endpoint's `rate_limit`
 * is not used: OpenRouter documents it as deprecated and safe to ignore, paid models have no
 * platform request cap, and its free-model caps hold for `:free` variants only; set the limiter
 * to your own rate. A reading that fails is logged (never with the key) and changes nothing.
 * Options out of range (`every` under 10 seconds, an infinite `timeout`, a `baseUrl` that is
 * not http(s)) fail the layer with a `ConfigError` naming the option. Other providers report
 * limits in response headers only, which the limiter reads on every reply (`observe`).
 * @since 0.1.0 @category layers
 */
export const layerOpenRouterLimits = (
  options: OpenRouterLimitsOptions = {}
): Layer.Layer<never, ConfigError, KeyPool.KeyPool | RateLimiter.RateLimiter | HttpClient.HttpClient> =>
  openrouterKey.layer({ ...options, baseUrl: options.baseUrl ?? presets.openrouter.baseUrl })
