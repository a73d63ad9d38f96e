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
import type * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as internal from "./internal/providers/openaiChat/spec.js"
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

/** @since 0.1.0 @category presets */
export const presets = {
  openai: { provider: "openai", baseUrl: "https://api.openai.com/v1", envVar: "OPENAI_API_KEY", maxTokensField: "max_completion_tokens" },
  openrouter: { provider: "openrouter", baseUrl: "https://openrouter.ai/api/v1", envVar: "OPENROUTER_API_KEY", maxTokensField: "max_tokens" },
  deepseek: { provider: "deepseek", baseUrl: "https://api.deepseek.com/v1", envVar: "DEEPSEEK_API_KEY", maxTokensField: "max_tokens" },
  groq: { provider: "groq", baseUrl: "https://api.groq.com/openai/v1", envVar: "GROQ_API_KEY", maxTokensField: "max_tokens" },
  together: { provider: "together", baseUrl: "https://api.together.xyz/v1", envVar: "TOGETHER_API_KEY", maxTokensField: "max_tokens" },
  vllm: { provider: "vllm", baseUrl: "http://localhost:8000/v1", envVar: "VLLM_API_KEY", maxTokensField: "max_tokens", keyOptional: true },
  ollama: {
    provider: "ollama",
    baseUrl: "http://localhost:11434/v1",
    envVar: "OLLAMA_API_KEY",
    maxTokensField: "max_tokens",
    keyOptional: true
  },
  zhipu: { provider: "zhipu", baseUrl: "https://open.bigmodel.cn/api/paas/v4", envVar: "ZHIPU_API_KEY", maxTokensField: "max_tokens" },
  dashscope: {
    provider: "dashscope",
    baseUrl: "https://dashscope.aliyuncs.com/compatible-mode/v1",
    envVar: "DASHSCOPE_API_KEY",
    maxTokensField: "max_tokens"
  },
  ark: { provider: "ark", baseUrl: "https://ark.cn-beijing.volces.com/api/v3", envVar: "ARK_API_KEY", maxTokensField: "max_tokens" }
} as const satisfies Record<string, Preset>

/** @since 0.1.0 @category presets */
export type PresetName = keyof typeof presets

// ---------------------------------------------------------------------------
// Layers
// ---------------------------------------------------------------------------

/** @since 0.1.0 @category constructors */
export const make = (options: Options): Effect.Effect<LanguageModel["Type"], never, Provider.Requirements> =>
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
  const keys = preset.keyOptional === true
    ? Config.redacted(preset.envVar).pipe(Config.withDefault(Redacted.make("")))
    : Config.redacted(preset.envVar)
  return layer({ baseUrl: preset.baseUrl, maxTokensField: preset.maxTokensField, ...options, provider: preset.provider }).pipe(
    Layer.provide(KeyPool.layerConfig({ providerId: preset.provider, keys }))
  )
}
