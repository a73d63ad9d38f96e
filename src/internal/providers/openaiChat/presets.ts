/**
 * The Chat Completions presets: every provider of the table that speaks it, natively or
 * beside its own API, with where, which key and which `maxTokens` field.
 */
import { baseUrlOf, type ProviderName, type providers, rows } from "../registry.js"
import type { MaxTokensField } from "./request.js"

/** The providers that speak Chat Completions, natively or beside their own API. */
export type ChatProvider = {
  [K in ProviderName]: (typeof providers)[K] extends { readonly api: "chat" } | { readonly chatBaseUrl: string } ? K : never
}[ProviderName]

export type Presets = {
  readonly [K in ChatProvider]: {
    readonly provider: K
    readonly baseUrl: string
    readonly envVar: string
    readonly maxTokensField: MaxTokensField
    readonly keyOptional?: boolean
  }
}

/** Each provider that speaks Chat Completions, read from its row. */
export const chatPresets = (): Presets => {
  const presets: Record<string, unknown> = {}
  for (const [name, row] of rows) {
    const baseUrl = row.api === "chat" ? baseUrlOf(row) : row.chatBaseUrl
    if (baseUrl === undefined) continue
    presets[name] = {
      provider: name,
      baseUrl,
      envVar: row.envVar,
      // the row's own setting only where Chat Completions is its API (a /v1 beside another API takes the default)
      maxTokensField: (row.api === "chat" ? row.settings?.maxTokensField : undefined) ?? "max_tokens",
      ...(row.keyOptional === true ? { keyOptional: true } : {})
    }
  }
  return presets as Presets
}
