/** Which adapter serves a configured model, and the stack it builds. */
import type * as HttpClient from "@effect/platform/HttpClient"
import * as Layer from "effect/Layer"
import type * as KeyPool from "../KeyPool.js"
import type { LanguageModel } from "../LanguageModel.js"
import * as Anthropic from "../Anthropic.js"
import * as Gemini from "../Gemini.js"
import * as Ollama from "../Ollama.js"
import * as OpenAiCompatible from "../OpenAiCompatible.js"
import * as OpenAiResponses from "../OpenAiResponses.js"
import type { Api, ResolvedModel } from "../ProviderConfig.js"
import type * as RateLimiter from "../RateLimiter.js"
import * as Retry from "../Retry.js"

const chatProviders: ReadonlySet<string> = new Set(Object.keys(OpenAiCompatible.presets))

export const inferApi = (provider: string, baseUrl: string | undefined): Api | undefined => {
  const name = provider.toLowerCase()
  if (name === "anthropic" || name === "claude") return "anthropic"
  if (name === "gemini" || name === "google") return "gemini"
  if (name === "ollama") return baseUrl !== undefined && /\/v1\/?$/.test(baseUrl) ? "chat" : "ollama"
  if (chatProviders.has(name)) return "chat"
  if (baseUrl === undefined) return undefined
  if (baseUrl.includes("anthropic")) return "anthropic"
  if (baseUrl.includes("generativelanguage.googleapis.com")) return "gemini"
  if (/:11434\/?$/.test(baseUrl)) return "ollama"
  // an unknown name with a URL: the OpenAI-compatible protocol is the common denominator
  return "chat"
}

export const defaultBaseUrl = (provider: string, api: Api): string | undefined => {
  const preset = (OpenAiCompatible.presets as Record<string, OpenAiCompatible.Preset>)[provider.toLowerCase()]
  if (api === "chat" && preset !== undefined) return preset.baseUrl
  switch (api) {
    case "responses":
      return "https://api.openai.com/v1"
    case "anthropic":
      return "https://api.anthropic.com"
    case "gemini":
      return "https://generativelanguage.googleapis.com/v1beta"
    case "ollama":
      return "http://localhost:11434"
    default:
      return undefined
  }
}

/** Local servers need no key. */
export const needsKey = (api: Api, baseUrl: string | undefined): boolean =>
  api !== "ollama" && !(baseUrl !== undefined && /^https?:\/\/(localhost|127\.0\.0\.1|\[::1\])[:/]/.test(baseUrl))

const adapter = (
  model: ResolvedModel
): Layer.Layer<LanguageModel, never, HttpClient.HttpClient | KeyPool.KeyPool | RateLimiter.RateLimiter> => {
  const common = { model: model.model, baseUrl: model.baseUrl, contextWindow: model.contextWindow }
  switch (model.api) {
    case "responses":
      return OpenAiResponses.layer({ ...common, provider: model.provider })
    case "anthropic":
      return Anthropic.layer({ ...common, provider: model.provider })
    case "gemini":
      return Gemini.layer({ ...common, provider: model.provider })
    case "ollama":
      return Ollama.layer({ ...common, provider: model.provider })
    case "chat":
    default: {
      const preset = (OpenAiCompatible.presets as Record<string, OpenAiCompatible.Preset>)[model.provider.toLowerCase()]
      return OpenAiCompatible.layer({
        ...common,
        provider: model.provider,
        maxTokensField: preset?.maxTokensField ?? "max_tokens"
      })
    }
  }
}

/** The adapter with the entry's retries: `max_retries` and `retry_delay` feed `Retry.schedule`. */
export const stack = (
  model: ResolvedModel
): Layer.Layer<LanguageModel, never, HttpClient.HttpClient | KeyPool.KeyPool | RateLimiter.RateLimiter> =>
  model.maxRetries === 0
    ? adapter(model)
    : Retry.layer(Retry.schedule({ maxRetries: model.maxRetries, initialDelay: `${model.retryDelaySeconds * 1000} millis` })).pipe(
      Layer.provide(adapter(model))
    )
