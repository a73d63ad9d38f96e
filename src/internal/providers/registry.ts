/**
 * The one table of providers, as data: which wire API each speaks, where, with which key,
 * and which model names are its; and per API, what builds its `Spec`. `ProviderConfig`,
 * `OpenAiCompatible`'s presets, the CLI and the fake server read it. A provider of a known
 * API is one row; a new API is one folder and one entry (and its fake routes, which
 * `internal/testing/routes.ts` collects: this table names no fake).
 */
import type { Spec } from "../../Provider.js"
import * as anthropic from "./anthropic/spec.js"
import * as gemini from "./gemini/spec.js"
import * as ollama from "./ollama/spec.js"
import type { MaxTokensField } from "./openaiChat/request.js"
import * as openaiChat from "./openaiChat/spec.js"
import * as openaiResponses from "./openaiResponses/spec.js"

// ---------------------------------------------------------------------------
// Wire APIs
// ---------------------------------------------------------------------------

export const apiNames = ["chat", "responses", "anthropic", "gemini", "ollama"] as const
export type Api = (typeof apiNames)[number]

/** What a configured model tells its API's spec. */
export interface SpecOptions {
  readonly provider?: string | undefined
  readonly baseUrl?: string | undefined
  readonly maxTokensField?: MaxTokensField | undefined
  /** Chat Completions only: `zhipu` signs keys into tokens. */
  readonly auth?: "bearer" | "zhipu" | undefined
}

export interface ApiEntry {
  /** The base URL as the vendor documents it. */
  readonly baseUrl: string
  readonly spec: (options: SpecOptions) => Spec
  /** Recognises this API's servers by base URL, for a provider name the table does not know. */
  readonly servedAt?: RegExp
  /** Its servers run locally and take no key. */
  readonly keyless?: boolean
}

export const apis: { readonly [A in Api]: ApiEntry } = {
  chat: {
    baseUrl: openaiChat.defaultBaseUrl,
    spec: openaiChat.spec
  },
  responses: {
    baseUrl: openaiResponses.defaultBaseUrl,
    spec: openaiResponses.spec
  },
  anthropic: {
    baseUrl: anthropic.defaultBaseUrl,
    spec: anthropic.spec,
    servedAt: /anthropic/
  },
  gemini: {
    baseUrl: gemini.defaultBaseUrl,
    spec: gemini.spec,
    servedAt: /generativelanguage\.googleapis\.com/
  },
  ollama: {
    baseUrl: ollama.defaultBaseUrl,
    spec: ollama.spec,
    servedAt: /:11434\/?$/,
    keyless: true
  }
}

// ---------------------------------------------------------------------------
// Providers
// ---------------------------------------------------------------------------

export interface ProviderRow {
  readonly api: Api
  /** Where it is served; its API's default when absent. */
  readonly baseUrl?: string
  /** The env var holding its key, or a comma-separated list of keys. */
  readonly envVar: string
  /** Model names that are its: the first row in table order whose rule matches wins. */
  readonly detect?: RegExp
  /** Local servers usually need no key: an unset env var means a keyless pool. */
  readonly keyOptional?: boolean
  /** Which field carries `maxTokens` on Chat Completions; `max_tokens` when absent. */
  readonly maxTokensField?: MaxTokensField
  /** Where it also speaks Chat Completions, when its own API is another (Ollama's `/v1`). */
  readonly chatBaseUrl?: string
  /** Other names for it in a `provider.json`. */
  readonly aliases?: ReadonlyArray<string>
}

export const providers = {
  // first: a vendor/model id is OpenRouter's, whoever the vendor
  openrouter: { api: "chat", baseUrl: "https://openrouter.ai/api/v1", envVar: "OPENROUTER_API_KEY", detect: /\// },
  openai: {
    api: "chat",
    envVar: "OPENAI_API_KEY",
    // reasoning models reject max_tokens
    maxTokensField: "max_completion_tokens",
    detect: /^(gpt-|chatgpt-|o\d|text-embedding-|davinci|babbage|codex-)/
  },
  anthropic: { api: "anthropic", envVar: "ANTHROPIC_API_KEY", detect: /^claude-/, aliases: ["claude"] },
  gemini: { api: "gemini", envVar: "GEMINI_API_KEY", detect: /^(gemini-|gemma-|text-embedding-00)/, aliases: ["google"] },
  deepseek: { api: "chat", baseUrl: "https://api.deepseek.com/v1", envVar: "DEEPSEEK_API_KEY", detect: /^deepseek-/ },
  groq: { api: "chat", baseUrl: "https://api.groq.com/openai/v1", envVar: "GROQ_API_KEY" },
  together: { api: "chat", baseUrl: "https://api.together.xyz/v1", envVar: "TOGETHER_API_KEY" },
  vllm: { api: "chat", baseUrl: "http://localhost:8000/v1", envVar: "VLLM_API_KEY", keyOptional: true },
  ollama: { api: "ollama", envVar: "OLLAMA_API_KEY", keyOptional: true, chatBaseUrl: "http://localhost:11434/v1" },
  zhipu: { api: "chat", baseUrl: "https://open.bigmodel.cn/api/paas/v4", envVar: "ZHIPU_API_KEY" },
  dashscope: { api: "chat", baseUrl: "https://dashscope.aliyuncs.com/compatible-mode/v1", envVar: "DASHSCOPE_API_KEY" },
  ark: { api: "chat", baseUrl: "https://ark.cn-beijing.volces.com/api/v3", envVar: "ARK_API_KEY" }
} as const satisfies Record<string, ProviderRow>

export type ProviderName = keyof typeof providers

/** The providers that speak Chat Completions, natively or beside their own API. */
export type ChatProvider = {
  [K in ProviderName]: (typeof providers)[K] extends { readonly api: "chat" } | { readonly chatBaseUrl: string } ? K : never
}[ProviderName]

const rows: ReadonlyArray<readonly [string, ProviderRow]> = Object.entries(providers)

/** A provider's row by its name or an alias, in any case. */
export const lookup = (name: string): { readonly name: ProviderName; readonly row: ProviderRow } | undefined => {
  const wanted = name.toLowerCase()
  const found = rows.find(([key, row]) => key === wanted || row.aliases?.includes(wanted) === true)
  return found === undefined ? undefined : { name: found[0] as ProviderName, row: found[1] }
}

/** Where a provider's API is served: its row's URL, or the API's default. */
export const baseUrlOf = (row: ProviderRow): string => row.baseUrl ?? apis[row.api].baseUrl

/** The Chat Completions presets: every provider that speaks it, with where and which field. */
export const chatPresets = (): {
  readonly [K in ChatProvider]: {
    readonly provider: K
    readonly baseUrl: string
    readonly envVar: string
    readonly maxTokensField: MaxTokensField
    readonly keyOptional?: boolean
  }
} => {
  const presets: Record<string, unknown> = {}
  for (const [name, row] of rows) {
    const baseUrl = row.api === "chat" ? baseUrlOf(row) : row.chatBaseUrl
    if (baseUrl === undefined) continue
    presets[name] = {
      provider: name,
      baseUrl,
      envVar: row.envVar,
      maxTokensField: row.maxTokensField ?? "max_tokens",
      ...(row.keyOptional === true ? { keyOptional: true } : {})
    }
  }
  return presets as ReturnType<typeof chatPresets>
}

/** The provider a model name belongs to, by the rows' detection rules. */
export const detect = (model: string): ProviderName | undefined => {
  const name = model.trim().toLowerCase()
  return rows.find(([, row]) => row.detect?.test(name) === true)?.[0] as ProviderName | undefined
}

/** Which API serves `provider` at `baseUrl`; undefined for an unknown name without a URL. */
export const inferApi = (provider: string, baseUrl: string | undefined): Api | undefined => {
  const known = lookup(provider)?.row
  if (known !== undefined) {
    return known.chatBaseUrl !== undefined && baseUrl !== undefined && /\/v1\/?$/.test(baseUrl) ? "chat" : known.api
  }
  if (baseUrl === undefined) return undefined
  // an unknown name with a URL: the OpenAI-compatible protocol is the common denominator
  return apiNames.find((api) => apis[api].servedAt?.test(baseUrl) === true) ?? "chat"
}

/** Where `provider` serves `api` when the configuration names no URL. */
export const defaultBaseUrl = (provider: string, api: Api): string => {
  const known = lookup(provider)?.row
  if (known?.api === api) return baseUrlOf(known)
  if (api === "chat" && known?.chatBaseUrl !== undefined) return known.chatBaseUrl
  return apis[api].baseUrl
}

/** Local servers need no key. */
export const needsKey = (api: Api, baseUrl: string | undefined): boolean =>
  apis[api].keyless !== true && !(baseUrl !== undefined && /^https?:\/\/(localhost|127\.0\.0\.1|\[::1\])[:/]/.test(baseUrl))

/** The spec of `provider`'s model on `api`, with its row's Chat Completions field. */
export const specOf = (provider: string, api: Api, baseUrl: string | undefined, auth?: "bearer" | "zhipu"): Spec =>
  apis[api].spec({ provider, baseUrl, maxTokensField: lookup(provider)?.row.maxTokensField ?? "max_tokens", auth })
