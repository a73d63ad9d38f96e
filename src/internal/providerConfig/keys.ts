/**
 * Where a provider's keys come from, by the provider table: its variable, and whether it may
 * go without. The reading itself is `envKeys`'s one rule.
 */
import type * as ConfigError from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as envKeys from "../envKeys.js"
import * as registry from "../providers/registry.js"
import { fail, type ProviderConfigError } from "./schema.js"

/** `OPENAI_API_KEY` for a known provider (its row's); `<NAME>_API_KEY` for another name. */
export const variableOf = (provider: string): string =>
  registry.lookup(provider)?.row.envVar ?? `${provider.toUpperCase().replace(/[^A-Z0-9]+/g, "_")}_API_KEY`

/**
 * A local server takes no key: a provider whose row says so (vLLM, Ollama), an API whose
 * servers take none (Ollama's own), or a provider the table does not know served on
 * loopback. A hosted provider needs its key wherever it is pointed.
 */
export const keyOptional = (provider: string, api: registry.Api, baseUrl: string | undefined): boolean => {
  const known = registry.lookup(provider)
  return known?.row.keyOptional === true || !registry.needsKey(api, known === undefined ? baseUrl : undefined)
}

/** The keys of `provider` served by `api` at `baseUrl`, from its variable. */
export const read = (provider: string, api: registry.Api, baseUrl: string | undefined): Effect.Effect<envKeys.Keys, ConfigError.ConfigError> =>
  envKeys.readVariable(variableOf(provider), keyOptional(provider, api, baseUrl))

/** The keys of `provider` at its default place, as `ProviderConfig.envKeys` gives them. */
export const readDefault = (provider: string): Effect.Effect<envKeys.Keys, ProviderConfigError> => {
  const api = registry.inferApi(provider, undefined) ?? "chat"
  return Effect.mapError(
    read(provider, api, registry.defaultBaseUrl(provider, api)),
    (error) => fail(`${envKeys.isMissing(error) ? `no API key for "${provider}": ` : ""}${envKeys.describe(error)}`, undefined, undefined)
  )
}
