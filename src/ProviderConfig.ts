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
import * as Effect from "effect/Effect"
import type * as Either from "effect/Either"
import type * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import * as fileError from "./internal/fileError.js"
import * as detect from "./internal/providerConfig/detect.js"
import * as json from "./internal/providerConfig/json.js"
import * as keys from "./internal/providerConfig/keys.js"
import * as schema from "./internal/providerConfig/schema.js"
import * as stack from "./internal/providerConfig/stack.js"
import type * as KeyPool from "./KeyPool.js"
import type { LanguageModel } from "./LanguageModel.js"

// ---------------------------------------------------------------------------
// The file format
// ---------------------------------------------------------------------------

/**
 * The wire APIs: `chat` (Chat Completions), `responses`, `anthropic`, `gemini`, `ollama`.
 * @since 0.1.0 @category schemas
 */
export const Api = schema.Api
/** @since 0.1.0 @category schemas */
export type Api = typeof Api.Type

/** @since 0.1.0 @category schemas */
export const BaseUrl = schema.BaseUrl

/**
 * A key that can go in an HTTP header; a pasted line break is refused here, by path, never by value.
 * @since 0.1.0 @category schemas
 */
export const ApiKey = schema.ApiKey

/**
 * One model: `model_name`, and optionally `api_keys`, `base_url`, `max_retries`, `retry_delay`
 * (seconds), `rate_limit_capacity`, `rate_limit_refill_rate` (requests per second),
 * `context_window`, `api`, and `auth` (`bearer`, or `zhipu` for signed tokens).
 * @since 0.1.0 @category schemas
 */
export const ModelEntry = schema.ModelEntry
/** @since 0.1.0 @category schemas */
export type ModelEntry = typeof ModelEntry.Type

/** @since 0.1.0 @category schemas */
export const ProviderFile = schema.ProviderFile
/** @since 0.1.0 @category schemas */
export type ProviderFile = typeof ProviderFile.Type

/**
 * A bad file, an unknown provider or model, or a missing key. `path` is the file (when
 * there is one) and `jsonPath` the place in it, like `$.openai[0].max_retries`. The
 * message never holds a key: values are echoed only where they cannot be one.
 * @since 0.1.0 @category errors
 */
export const ProviderConfigError = schema.ProviderConfigError
/** @since 0.1.0 @category errors */
export type ProviderConfigError = schema.ProviderConfigError

// ---------------------------------------------------------------------------
// The registry
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
  readonly auth: "bearer" | "zhipu"
}

/** @since 0.1.0 @category models */
export interface Registry {
  readonly providers: ReadonlyArray<string>
  readonly entries: ReadonlyArray<ResolvedModel>
  readonly models: {
    /**
     * The ready stack for one model: provider adapter, the pool of its keys, its own limiter,
     * and retry (`max_retries`, unless `options.maxRetries` says otherwise: `0` for none, when
     * the caller retries itself). A model whose keys are missing or unusable fails here, with
     * the error that names its entry; the file's other models are not affected.
     */
    readonly layer: (
      provider: string,
      model: string,
      options?: { readonly maxRetries?: number | undefined }
    ) => Layer.Layer<LanguageModel, ProviderConfigError, HttpClient.HttpClient>
    readonly get: (provider: string, model: string) => Option.Option<ResolvedModel>
  }
  /**
   * The pool that serves `model` of `provider` (without `model`: its first entry's); none for
   * a model without usable keys. Models listing the same keys share one pool; a model never
   * leases another entry's keys.
   */
  readonly keyPool: (provider: string, model?: string) => Option.Option<KeyPool.Service>
}

/**
 * A provider's keys from its variable (`OPENAI_API_KEY`, `<NAME>_API_KEY` for a name the
 * provider table does not know): one key, or a comma-separated list. Missing, or set but
 * empty, it is an error naming it, unless the provider takes no key (a local server).
 * @since 0.1.0 @category keys
 */
export const envKeys: (provider: string) => Effect.Effect<ReadonlyArray<Redacted.Redacted<string>>, ProviderConfigError> =
  keys.readDefault

/**
 * Builds a registry from an already-parsed file. Each model is served with its own entry's
 * `api_keys`, else with its provider's variable (see `envKeys`). A model that needs keys and
 * has none fails when it is asked for (`models.layer`), with an error naming its entry, so
 * that one keyless entry never stops the others. Unknown fields, a bad value and a
 * `model_name` given twice under one provider fail the whole file.
 * @since 0.1.0 @category constructors
 */
export const fromJson: (json: unknown, path?: string) => Effect.Effect<Registry, ProviderConfigError> = stack.fromJson

/**
 * Parses a `provider.json`'s text: strict JSON, and no key given twice in one object.
 * Errors give the line and column, never an excerpt of the text (it may hold keys).
 * @since 0.1.0 @category constructors
 */
export const parseText: (text: string, path?: string) => Either.Either<unknown, ProviderConfigError> = json.parseText

/**
 * Reads and decodes a `provider.json`. A missing file, bad JSON, a key given twice or a
 * bad field fails with a `ProviderConfigError` naming the file and the place in it.
 * @since 0.1.0 @category constructors
 */
export const load = (path: string): Effect.Effect<Registry, ProviderConfigError, FileSystem.FileSystem> =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const text = yield* fs.readFileString(path).pipe(
      Effect.mapError((error) => schema.fail(`cannot read the file: ${fileError.describe(error)}`, undefined, path))
    )
    return yield* stack.fromJson(yield* json.parseText(text, path), path)
  }).pipe(Effect.withSpan("ProviderConfig.load", { attributes: { path } }))

// ---------------------------------------------------------------------------
// Detection from a model name
// ---------------------------------------------------------------------------

/**
 * The provider a model name belongs to: `gpt-*`, `o1`…, `chatgpt-*` → openai; `claude-*` →
 * anthropic; `gemini-*` → gemini; `vendor/model` → openrouter; `deepseek-*` → deepseek.
 * @since 0.1.0 @category detection
 */
export const detectProvider = (model: string): Option.Option<string> => Option.fromNullable(detect.detect(model))

/**
 * A ready stack for a model name alone, with keys from the provider's variable (see
 * `envKeys`): `forModel("claude-3-5-sonnet-latest")`. `provider` overrides detection. Without
 * a key, building it fails with an error that names the variable to set
 * (`no API key for openai: set OPENAI_API_KEY …`).
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
): Layer.Layer<LanguageModel, ProviderConfigError, HttpClient.HttpClient> => detect.forModel(model, options)
