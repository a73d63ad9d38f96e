/**
 * The one table of providers, as data: which wire API each speaks, where, with which key,
 * and which model names are its; and per API, what builds its `Spec`. `ProviderConfig`,
 * `OpenAiCompatible`'s presets, the CLI and the fake server read it. A provider of a known
 * API is one row; a new API is one folder and one entry (and its fake routes, which
 * `internal/testing/routes.ts` collects: this table names no fake).
 */
import type { Spec } from "../../Provider.js"
import type { WireOptions } from "./apiSpec.js"
import * as anthropic from "./anthropic/spec.js"
import * as gemini from "./gemini/spec.js"
import * as ollama from "./ollama/spec.js"
import * as openaiChat from "./openaiChat/spec.js"
import * as openaiResponses from "./openaiResponses/spec.js"

// ---------------------------------------------------------------------------
// Wire APIs
// ---------------------------------------------------------------------------

export const apiNames = ["chat", "responses", "anthropic", "gemini", "ollama"] as const
export type Api = (typeof apiNames)[number]

/**
 * Each API's own settings, as its folder defines them: what a provider's row or a configured
 * model may set for that API alone (Chat Completions' `maxTokensField` and `auth`).
 */
export interface Settings {
  readonly chat: openaiChat.Settings
  readonly responses: None
  readonly anthropic: None
  readonly gemini: None
  readonly ollama: None
}

/** An API with no settings of its own. */
type None = object

export interface ApiEntry<A extends Api> {
  /** The base URL as the vendor documents it. */
  readonly baseUrl: string
  /** The spec for a provider of this API, where it is served, with the API's own settings. */
  readonly spec: (options: WireOptions & Settings[A]) => Spec
  /** Recognises this API's servers by base URL, for a provider name the table does not know. */
  readonly servedAt?: RegExp
  /** Its servers run locally and take no key. */
  readonly keyless?: boolean
}

export const apis: { readonly [A in Api]: ApiEntry<A> } = {
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

interface Row<A extends Api> {
  readonly api: A
  /** Where it is served; its API's default when absent. */
  readonly baseUrl?: string
  /** The env var holding its key, or a comma-separated list of keys. */
  readonly envVar: string
  /** Model names that are its: the first row in table order whose rule matches wins. */
  readonly detect?: RegExp
  /** Local servers usually need no key: an unset env var means a keyless pool. */
  readonly keyOptional?: boolean
  /** Its API's own settings, where its defaults do not fit this provider. */
  readonly settings?: Settings[A]
  /** Where it also speaks Chat Completions, when its own API is another (Ollama's `/v1`). */
  readonly chatBaseUrl?: string
  /** Other names for it in a `provider.json`. */
  readonly aliases?: ReadonlyArray<string>
}

/** One provider of the table: the API it speaks, where, with which key, which models are its. */
export type ProviderRow = { readonly [A in Api]: Row<A> }[Api]

export const providers = {
  // first: a vendor/model id is OpenRouter's, whoever the vendor
  openrouter: { api: "chat", baseUrl: "https://openrouter.ai/api/v1", envVar: "OPENROUTER_API_KEY", detect: /\// },
  openai: {
    api: "chat",
    envVar: "OPENAI_API_KEY",
    // reasoning models reject max_tokens
    settings: { maxTokensField: "max_completion_tokens" },
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

export const rows: ReadonlyArray<readonly [string, ProviderRow]> = Object.entries(providers)

/** A provider's row by its name or an alias, in any case. */
export const lookup = (name: string): { readonly name: ProviderName; readonly row: ProviderRow } | undefined => {
  const wanted = name.toLowerCase()
  const found = rows.find(([key, row]) => key === wanted || row.aliases?.includes(wanted) === true)
  return found === undefined ? undefined : { name: found[0] as ProviderName, row: found[1] }
}

/** Where a provider's API is served: its row's URL, or the API's default. */
export const baseUrlOf = (row: ProviderRow): string => row.baseUrl ?? apis[row.api].baseUrl

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

/** The spec of `provider`'s model on `api`: its row's settings for that API, under the configured ones. */
export const specOf = <A extends Api>(provider: string, api: A, baseUrl: string | undefined, settings?: Settings[A]): Spec => {
  const row = lookup(provider)?.row
  const rowSettings = row?.api === api ? (row.settings as Settings[A] | undefined) : undefined
  const entry: ApiEntry<A> = apis[api]
  return entry.spec({ ...rowSettings, ...settings, provider, baseUrl } as WireOptions & Settings[A])
}
