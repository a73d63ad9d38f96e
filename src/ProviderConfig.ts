/**
 * Loads the widely used `provider.json` layout into ready model stacks, and detects a
 * provider from a model name for env-var-only setups.
 *
 * ```json
 * { "openai": [ { "model_name": "gpt-4o", "api_keys": ["k1", "k2"], "base_url": "https://api.openai.com/v1",
 *                 "max_retries": 5, "retry_delay": 1.0, "rate_limit_capacity": 20,
 *                 "rate_limit_refill_rate": 3.0, "context_window": 128000 } ] }
 * ```
 *
 * @since 0.1.0
 */
import * as FileSystem from "@effect/platform/FileSystem"
import type * as HttpClient from "@effect/platform/HttpClient"
import * as Config from "effect/Config"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as Adapters from "./internal/providerAdapters.js"
import * as KeyPool from "./KeyPool.js"
import type { LanguageModel } from "./LanguageModel.js"
import * as RateLimiter from "./RateLimiter.js"

// ---------------------------------------------------------------------------
// The file format
// ---------------------------------------------------------------------------

/** @since 0.1.0 @category schemas */
export const Api = Schema.Literal("chat", "responses", "anthropic", "gemini", "ollama")
/** @since 0.1.0 @category schemas */
export type Api = typeof Api.Type

/** @since 0.1.0 @category schemas */
export const ModelEntry = Schema.Struct({
  model_name: Schema.NonEmptyTrimmedString,
  api_keys: Schema.optional(Schema.Array(Schema.String)),
  base_url: Schema.optional(Schema.NonEmptyTrimmedString),
  max_retries: Schema.optional(Schema.NonNegativeInt),
  /** Seconds before the first retry. */
  retry_delay: Schema.optional(Schema.NonNegative),
  rate_limit_capacity: Schema.optional(Schema.Positive),
  /** Requests per second. */
  rate_limit_refill_rate: Schema.optional(Schema.Positive),
  context_window: Schema.optional(Schema.Int.pipe(Schema.positive())),
  api: Schema.optional(Api)
})
/** @since 0.1.0 @category schemas */
export type ModelEntry = typeof ModelEntry.Type

/** @since 0.1.0 @category schemas */
export const ProviderFile = Schema.Record({ key: Schema.String, value: Schema.Array(ModelEntry) })
/** @since 0.1.0 @category schemas */
export type ProviderFile = typeof ProviderFile.Type

/**
 * A bad file, an unknown provider or model, or a missing key. `path` is the file (when
 * there is one) and `jsonPath` the place in it, like `$.openai[0].max_retries`.
 * @since 0.1.0 @category errors
 */
export class ProviderConfigError extends Schema.TaggedError<ProviderConfigError>()("ProviderConfigError", {
  message: Schema.String,
  path: Schema.optional(Schema.String),
  jsonPath: Schema.optional(Schema.String)
}) {}

const jsonPathOf = (path: ReadonlyArray<PropertyKey>): string =>
  "$" + path.map((key) => (typeof key === "number" ? `[${key}]` : /^[A-Za-z_][\w-]*$/.test(String(key)) ? `.${String(key)}` : `[${JSON.stringify(String(key))}]`)).join("")

const fail = (message: string, jsonPath: string | undefined, path: string | undefined) =>
  new ProviderConfigError({
    message: `${path ?? "provider config"}${jsonPath ? ` at ${jsonPath}` : ""}: ${message}`,
    ...(path === undefined ? {} : { path }),
    ...(jsonPath === undefined ? {} : { jsonPath })
  })

// ---------------------------------------------------------------------------
// Resolution
// ---------------------------------------------------------------------------

/**
 * One configured model, resolved: which adapter, where, with which limits.
 * @since 0.1.0 @category models
 */
export interface ResolvedModel {
  readonly provider: string
  readonly model: string
  readonly api: Api
  readonly baseUrl: string | undefined
  readonly maxRetries: number
  readonly retryDelaySeconds: number
  readonly rateLimit: { readonly capacity: number; readonly refillPerSecond: number } | undefined
  readonly contextWindow: number | undefined
}

/** @since 0.1.0 @category models */
export interface Registry {
  readonly providers: ReadonlyArray<string>
  readonly entries: ReadonlyArray<ResolvedModel>
  readonly models: {
    /** The ready stack for one model: provider adapter, the provider's shared key pool, its own limiter, and retry. */
    readonly layer: (
      provider: string,
      model: string
    ) => Layer.Layer<LanguageModel, ProviderConfigError, HttpClient.HttpClient>
    readonly get: (provider: string, model: string) => Option.Option<ResolvedModel>
  }
  /** The provider's shared pool. */
  readonly keyPool: (provider: string) => Option.Option<KeyPool.Service>
}

/** The env var that holds a provider's keys: `OPENAI_API_KEYS` (a list) or `OPENAI_API_KEY`. */
const envPrefix = (provider: string) => provider.toUpperCase().replace(/[^A-Z0-9]+/g, "_")

/**
 * A provider's keys from the environment: `<PROVIDER>_API_KEYS`, else `<PROVIDER>_API_KEY`,
 * each possibly a comma-separated list.
 * @since 0.1.0 @category keys
 */
export const envKeys = (provider: string): Effect.Effect<ReadonlyArray<Redacted.Redacted<string>>> => {
  const prefix = envPrefix(provider)
  return Config.redacted(`${prefix}_API_KEYS`).pipe(
    Config.orElse(() => Config.redacted(`${prefix}_API_KEY`)),
    Config.option,
    Effect.map(Option.match({
      onNone: () => [],
      onSome: (value) =>
        Redacted.value(value).split(",").map((k) => k.trim()).filter((k) => k.length > 0).map((k) => Redacted.make(k))
    })),
    Effect.orElseSucceed(() => [])
  )
}

const resolveEntry = (provider: string, entry: ModelEntry, index: number, path: string | undefined) => {
  const api = entry.api ?? Adapters.inferApi(provider, entry.base_url)
  if (api === undefined) {
    return Either.left(
      fail(
        `unknown provider "${provider}": set "api" to one of chat, responses, anthropic, gemini, ollama (or a known provider name or base_url)`,
        jsonPathOf([provider, index]),
        path
      )
    )
  }
  const resolved: ResolvedModel = {
    provider,
    model: entry.model_name,
    api,
    baseUrl: entry.base_url ?? Adapters.defaultBaseUrl(provider, api),
    maxRetries: entry.max_retries ?? 3,
    retryDelaySeconds: entry.retry_delay ?? 0.5,
    rateLimit: entry.rate_limit_capacity === undefined && entry.rate_limit_refill_rate === undefined
      ? undefined
      : {
        capacity: entry.rate_limit_capacity ?? Math.max(1, entry.rate_limit_refill_rate ?? 1),
        refillPerSecond: entry.rate_limit_refill_rate ?? entry.rate_limit_capacity ?? 1
      },
    contextWindow: entry.context_window
  }
  return Either.right(resolved)
}

/**
 * Builds a registry from an already-parsed file. Keys come from `api_keys`, else from
 * the provider's env vars; a provider that needs keys and has none is an error.
 * @since 0.1.0 @category constructors
 */
export const fromJson = (json: unknown, path?: string): Effect.Effect<Registry, ProviderConfigError> =>
  Effect.gen(function* () {
    const decoded = Schema.decodeUnknownEither(ProviderFile, { errors: "all", onExcessProperty: "ignore" })(json)
    if (Either.isLeft(decoded)) {
      // an optional field's failure also reports its "undefined" branch: noise for a reader
      const all = ParseResult.ArrayFormatter.formatErrorSync(decoded.left)
      const useful = all.filter((issue) => !issue.message.startsWith("Expected undefined"))
      const issues = useful.length > 0 ? useful : all
      const first = issues[0]
      const firstPath = first === undefined ? undefined : jsonPathOf(first.path)
      const others = issues.slice(1, 5).filter((issue) => jsonPathOf(issue.path) !== firstPath)
      const message = [first?.message ?? "invalid", ...others.map((issue) => `also at ${jsonPathOf(issue.path)}: ${issue.message}`)].join("; ")
      return yield* Effect.fail(fail(message, firstPath, path))
    }
    const file = decoded.right
    const entries: Array<ResolvedModel> = []
    const pools = new Map<string, KeyPool.Service>()
    const limiters = new Map<string, RateLimiter.Service>()
    for (const [provider, models] of Object.entries(file)) {
      const fileKeys = models.flatMap((entry) => entry.api_keys ?? [])
      const keys = fileKeys.length > 0 ? fileKeys.map((k) => Redacted.make(k)) : yield* envKeys(provider)
      const resolvedHere: Array<ResolvedModel> = []
      for (const [index, entry] of models.entries()) {
        const resolved = resolveEntry(provider, entry, index, path)
        if (Either.isLeft(resolved)) return yield* Effect.fail(resolved.left)
        resolvedHere.push(resolved.right)
      }
      if (keys.length === 0 && resolvedHere.some((m) => Adapters.needsKey(m.api, m.baseUrl))) {
        return yield* Effect.fail(
          fail(
            `no API key for "${provider}": add "api_keys" or set ${envPrefix(provider)}_API_KEY (or ${envPrefix(provider)}_API_KEYS=k1,k2)`,
            jsonPathOf([provider, 0, "api_keys"]),
            path
          )
        )
      }
      // one pool per provider, shared by all its models
      pools.set(provider, yield* KeyPool.make({ providerId: provider, keys }))
      for (const resolved of resolvedHere) {
        entries.push(resolved)
        if (resolved.rateLimit !== undefined) {
          limiters.set(
            `${provider}\u0000${resolved.model}`,
            yield* RateLimiter.make({ ...resolved.rateLimit, provider })
          )
        }
      }
    }
    return makeRegistry(entries, pools, limiters, path)
  })

const makeRegistry = (
  entries: ReadonlyArray<ResolvedModel>,
  pools: ReadonlyMap<string, KeyPool.Service>,
  limiters: ReadonlyMap<string, RateLimiter.Service>,
  path: string | undefined
): Registry => {
  const get = (provider: string, model: string) =>
    Option.fromNullable(entries.find((e) => e.provider === provider && e.model === model))
  const unlimited = RateLimiter.unlimited
  return {
    providers: [...pools.keys()],
    entries,
    keyPool: (provider) => Option.fromNullable(pools.get(provider)),
    models: {
      get,
      layer: (provider, model) => {
        const resolved = get(provider, model)
        const pool = pools.get(provider)
        if (Option.isNone(resolved) || pool === undefined) {
          const known = entries.map((e) => `${e.provider}/${e.model}`).join(", ")
          return Layer.fail(
            fail(
              pool === undefined
                ? `unknown provider "${provider}" (configured: ${[...pools.keys()].join(", ") || "none"})`
                : `unknown model "${model}" for provider "${provider}" (configured: ${known})`,
              pool === undefined ? `$.${provider}` : `$.${provider}`,
              path
            )
          )
        }
        const limiter = limiters.get(`${provider}\u0000${model}`)
        return Adapters.stack(resolved.value).pipe(
          Layer.provide(Layer.succeed(KeyPool.KeyPool, pool)),
          Layer.provide(limiter === undefined ? unlimited : Layer.succeed(RateLimiter.RateLimiter, limiter))
        )
      }
    }
  }
}

/**
 * Reads and decodes a `provider.json`. A missing file, bad JSON or a bad field fails with
 * a `ProviderConfigError` naming the file and the JSON path.
 * @since 0.1.0 @category constructors
 */
export const load = (path: string): Effect.Effect<Registry, ProviderConfigError, FileSystem.FileSystem> =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const text = yield* fs.readFileString(path).pipe(
      Effect.mapError((error) => fail(`cannot read the file (${error.message})`, undefined, path))
    )
    let json: unknown
    try {
      json = JSON.parse(text)
    } catch (error) {
      return yield* Effect.fail(fail(`not valid JSON (${(error as Error).message})`, undefined, path))
    }
    return yield* fromJson(json, path)
  }).pipe(Effect.withSpan("ProviderConfig.load", { attributes: { path } }))

// ---------------------------------------------------------------------------
// Detection from a model name
// ---------------------------------------------------------------------------

/**
 * The provider a model name belongs to: `gpt-*`, `o1`…, `chatgpt-*` → openai; `claude-*` →
 * anthropic; `gemini-*` → gemini; `vendor/model` → openrouter; `deepseek-*` → deepseek.
 * @since 0.1.0 @category detection
 */
export const detectProvider = (model: string): Option.Option<string> => {
  const name = model.trim().toLowerCase()
  if (name.includes("/")) return Option.some("openrouter")
  if (/^(gpt-|chatgpt-|o\d|text-embedding-|davinci|babbage|codex-)/.test(name)) return Option.some("openai")
  if (name.startsWith("claude-")) return Option.some("anthropic")
  if (name.startsWith("gemini-") || name.startsWith("gemma-") || name.startsWith("text-embedding-00")) return Option.some("gemini")
  if (name.startsWith("deepseek-")) return Option.some("deepseek")
  return Option.none()
}

/**
 * A ready stack for a model name alone, with keys from the provider's env vars:
 * `forModel("claude-3-5-sonnet-latest")`. `provider` overrides detection.
 * @since 0.1.0 @category constructors
 */
export const forModel = (
  model: string,
  options: {
    readonly provider?: string
    readonly baseUrl?: string
    readonly maxRetries?: number
    readonly retryDelaySeconds?: number
    readonly contextWindow?: number
  } = {}
): Layer.Layer<LanguageModel, ProviderConfigError, HttpClient.HttpClient> =>
  Layer.unwrapEffect(
    Effect.gen(function* () {
      const provider = options.provider ?? Option.getOrUndefined(detectProvider(model))
      if (provider === undefined) {
        return yield* Effect.fail(
          fail(`cannot tell the provider of model "${model}": pass { provider } explicitly`, undefined, undefined)
        )
      }
      const entry: ModelEntry = {
        model_name: model,
        ...(options.baseUrl === undefined ? {} : { base_url: options.baseUrl }),
        ...(options.maxRetries === undefined ? {} : { max_retries: options.maxRetries }),
        ...(options.retryDelaySeconds === undefined ? {} : { retry_delay: options.retryDelaySeconds }),
        ...(options.contextWindow === undefined ? {} : { context_window: options.contextWindow })
      }
      const registry = yield* fromJson({ [provider]: [entry] })
      return registry.models.layer(provider, model)
    })
  )
