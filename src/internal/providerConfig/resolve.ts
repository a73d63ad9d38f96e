/**
 * One entry of a `provider.json` resolved: which API, where, with which retries, limits and
 * keys; and the file-wide rule that a model is listed once per provider.
 */
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import type { ModelEntry, ProviderFile, ResolvedModel } from "../../ProviderConfig.js"
import * as envKeys from "../envKeys.js"
import * as zhipu from "../providers/openaiChat/zhipu.js"
import * as registry from "../providers/registry.js"
import * as keys from "./keys.js"
import { fail, jsonPathOf, type ProviderConfigError } from "./schema.js"

export const resolveEntry = (
  provider: string,
  entry: ModelEntry,
  index: number,
  path: string | undefined
): Effect.Effect<ResolvedModel, ProviderConfigError> => {
  const api = entry.api ?? registry.inferApi(provider, entry.base_url)
  if (api === undefined) {
    return Effect.fail(
      fail(
        `unknown provider "${provider}": set "api" to one of ${registry.apiNames.join(", ")} (or a known provider name or base_url)`,
        jsonPathOf([provider, index]),
        path
      )
    )
  }
  if (entry.auth === "zhipu" && api !== "chat") {
    return Effect.fail(fail(`"auth": "zhipu" is for Chat Completions ("api": "chat"), not ${api}`, jsonPathOf([provider, index, "auth"]), path))
  }
  return Effect.succeed({
    provider,
    model: entry.model_name,
    api,
    auth: entry.auth ?? "bearer",
    baseUrl: entry.base_url ?? registry.defaultBaseUrl(provider, api),
    maxRetries: entry.max_retries ?? 3,
    retryDelaySeconds: entry.retry_delay ?? 0.5,
    rateLimit: entry.rate_limit_capacity === undefined && entry.rate_limit_refill_rate === undefined
      ? undefined
      : {
        capacity: entry.rate_limit_capacity ?? Math.max(1, entry.rate_limit_refill_rate ?? 1),
        refillPerSecond: entry.rate_limit_refill_rate ?? entry.rate_limit_capacity ?? 1
      },
    contextWindow: entry.context_window
  })
}

/**
 * The keys that serve an entry: its own `api_keys`, else its provider's variable, read by the
 * one rule (`envKeys`). A problem with the variable is the entry's, named by its path; for a
 * model named alone (`source`, as `forModel` gives one), by the variable only: there is no
 * file to point into.
 */
export const entryKeys = (
  model: ResolvedModel,
  entry: ModelEntry,
  index: number,
  path: string | undefined,
  source?: string
): Effect.Effect<envKeys.Keys, ProviderConfigError> => {
  const own = entry.api_keys ?? []
  const read: Effect.Effect<envKeys.Keys, ProviderConfigError> = own.length > 0
    ? Effect.succeed(own.map((key) => Redacted.make(key)))
    : keys.read(model.provider, model.api, model.baseUrl).pipe(
      Effect.mapError((error) =>
        source !== undefined
          ? fail(`${envKeys.isMissing(error) ? `no API key for ${model.provider}: ` : ""}${envKeys.describe(error)}`, undefined, undefined, source)
          : fail(
            envKeys.isMissing(error)
              ? `no API key for "${model.provider}" model ${JSON.stringify(model.model)}: add "api_keys" to this entry, or ${envKeys.describe(error)}`
              : `no usable API key for "${model.provider}" model ${JSON.stringify(model.model)}: ${envKeys.describe(error)}`,
            jsonPathOf([model.provider, index, "api_keys"]),
            path
          )
      )
    )
  return Effect.flatMap(read, (found) => {
    // a Zhipu key with nothing before or after its dot would travel raw, secret and all
    const broken = model.auth === "zhipu" ? zhipu.firstKeyProblem(found.map(Redacted.value)) : undefined
    if (broken === undefined) return Effect.succeed(found)
    return Effect.fail(fail(
      `"auth": "zhipu" signs id.secret keys: key ${broken.index + 1} of ${found.length}${own.length > 0 ? "" : ` in ${keys.variableOf(model.provider)}`} ${broken.problem}`,
      source !== undefined ? undefined : jsonPathOf(own.length > 0 ? [model.provider, index, "api_keys", broken.index] : [model.provider, index, "auth"]),
      path,
      source
    ))
  })
}

/** The first `model_name` given twice under one provider, as an error naming both paths. */
export const duplicateModel = (file: ProviderFile, path: string | undefined): ProviderConfigError | undefined => {
  for (const [provider, models] of Object.entries(file)) {
    const seen = new Map<string, number>()
    for (const [index, entry] of models.entries()) {
      const first = seen.get(entry.model_name)
      if (first !== undefined) {
        const at = (i: number) => jsonPathOf([provider, i, "model_name"])
        return fail(
          `duplicate model_name ${JSON.stringify(entry.model_name)} under "${provider}": at ${at(first)} and ${at(index)}; keep one entry (list all its keys in its api_keys)`,
          at(index),
          path
        )
      }
      seen.set(entry.model_name, index)
    }
  }
  return undefined
}
