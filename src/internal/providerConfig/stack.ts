/**
 * A decoded `provider.json` built into a registry: one key pool per distinct key set, one
 * limiter per model with `rate_limit_*`, and a ready stack per model (adapter, retries).
 */
import type { ConfigError } from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as KeyPool from "../../KeyPool.js"
import type { LanguageModel } from "../../LanguageModel.js"
import * as Provider from "../../Provider.js"
import type { Registry, ResolvedModel } from "../../ProviderConfig.js"
import * as RateLimiter from "../../RateLimiter.js"
import * as Retry from "../../Retry.js"
import * as registry from "../providers/registry.js"
import { decode } from "./messages.js"
import { duplicateModel, entryKeys, resolveEntry } from "./resolve.js"
import { fail, jsonPathOf, type ProviderConfigError } from "./schema.js"

const modelKey = (provider: string, model: string) => `${provider}\u0000${model}`

/** One pool per distinct key set: models listing the same keys share their load and health. */
const keySetId = (keys: ReadonlyArray<Redacted.Redacted<string>>): string =>
  [...new Set(keys.map((key) => KeyPool.fingerprint(Redacted.value(key))))].sort().join(",")

/**
 * The registry of a file. A problem with an entry's keys (none where the provider needs
 * some, an unusable one) is kept as that entry's: asking for its model fails with it, and
 * the other entries serve. `source` names a model named alone (`forModel`), which has no file.
 */
export const fromJson = (json: unknown, path?: string, source?: string): Effect.Effect<Registry, ProviderConfigError> =>
  Effect.gen(function* () {
    const file = yield* decode(json, path)
    const duplicate = duplicateModel(file, path)
    if (duplicate !== undefined) return yield* Effect.fail(duplicate)
    const entries: Array<ResolvedModel> = []
    const pools = new Map<string, KeyPool.Service>()
    const keyProblems = new Map<string, ProviderConfigError>()
    const limiters = new Map<string, RateLimiter.Service>()
    for (const [provider, models] of Object.entries(file)) {
      const poolsByKeySet = new Map<string, KeyPool.Service>()
      for (const [index, entry] of models.entries()) {
        const model = yield* resolveEntry(provider, entry, index, path)
        entries.push(model)
        const pool = yield* Effect.either(Effect.flatMap(entryKeys(model, entry, index, path, source), (keys) => {
          const setId = keySetId(keys)
          const shared = poolsByKeySet.get(setId)
          if (shared !== undefined) return Effect.succeed(shared)
          // no keys here means a provider that takes none (entryKeys above)
          return KeyPool.make({ providerId: provider, keys, keyless: keys.length === 0 }).pipe(
            Effect.tap((made) => Effect.sync(() => poolsByKeySet.set(setId, made))),
            Effect.mapError((error) => fail(String(error), jsonPathOf([provider, index, "api_keys"]), path, source))
          )
        }))
        if (Either.isLeft(pool)) keyProblems.set(modelKey(provider, model.model), pool.left)
        else pools.set(modelKey(provider, model.model), pool.right)
        if (model.rateLimit !== undefined) {
          limiters.set(
            modelKey(provider, model.model),
            yield* RateLimiter.make({ ...model.rateLimit, provider }).pipe(
              Effect.mapError((error) => fail(String(error), jsonPathOf([provider, index]), path, source))
            )
          )
        }
      }
    }
    return makeRegistry(Object.keys(file), entries, pools, keyProblems, limiters, path, source)
  })

/** The model over its API's spec, with the entry's retries: `max_retries` and `retry_delay` feed `Retry.schedule`. */
const stackOf = (model: ResolvedModel, maxRetries: number): Layer.Layer<LanguageModel, ConfigError, Provider.Requirements> => {
  const adapter = Provider.layer(registry.specOf(model.provider, model.api, model.baseUrl, { auth: model.auth }), {
    model: model.model,
    baseUrl: model.baseUrl,
    contextWindow: model.contextWindow
  })
  if (maxRetries === 0) return adapter
  const schedule = Retry.schedule({ maxRetries, initialDelay: `${model.retryDelaySeconds * 1000} millis` })
  return Retry.layer(schedule).pipe(Layer.provide(adapter))
}

const makeRegistry = (
  providers: ReadonlyArray<string>,
  entries: ReadonlyArray<ResolvedModel>,
  pools: ReadonlyMap<string, KeyPool.Service>,
  keyProblems: ReadonlyMap<string, ProviderConfigError>,
  limiters: ReadonlyMap<string, RateLimiter.Service>,
  path: string | undefined,
  source: string | undefined
): Registry => {
  const get = (provider: string, model: string) =>
    Option.fromNullable(entries.find((e) => e.provider === provider && e.model === model))
  const unlimited = RateLimiter.unlimited
  return {
    providers,
    entries,
    keyPool: (provider, model) => {
      const name = model ?? entries.find((e) => e.provider === provider)?.model
      return Option.fromNullable(name === undefined ? undefined : pools.get(modelKey(provider, name)))
    },
    models: {
      get,
      layer: (provider, model, options) => {
        const resolved = get(provider, model)
        const keyProblem = keyProblems.get(modelKey(provider, model))
        if (keyProblem !== undefined) return Layer.fail(keyProblem)
        const pool = pools.get(modelKey(provider, model))
        if (Option.isNone(resolved) || pool === undefined) {
          const known = entries.map((e) => `${e.provider}/${e.model}`).join(", ")
          return Layer.fail(
            fail(
              !providers.includes(provider)
                ? `unknown provider "${provider}" (configured: ${providers.join(", ") || "none"})`
                : `unknown model "${model}" for provider "${provider}" (configured: ${known})`,
              jsonPathOf([provider]),
              path,
              source
            )
          )
        }
        const limiter = limiters.get(modelKey(provider, model))
        return stackOf(resolved.value, options?.maxRetries ?? resolved.value.maxRetries).pipe(
          Layer.provide(Layer.succeed(KeyPool.KeyPool, pool)),
          Layer.provide(limiter === undefined ? unlimited : Layer.succeed(RateLimiter.RateLimiter, limiter)),
          Layer.mapError((error) => fail(String(error), jsonPathOf([provider]), path, source))
        )
      }
    }
  }
}
