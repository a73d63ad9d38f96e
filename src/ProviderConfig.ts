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
import type { ConfigError } from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { type Node as JsonNode, type ParseError as JsonParseError, parseTree, printParseErrorCode } from "jsonc-parser"
import { headerProblem } from "./internal/keyPool.js"
import * as registry from "./internal/providers/registry.js"
import * as KeyPool from "./KeyPool.js"
import type { LanguageModel } from "./LanguageModel.js"
import * as Provider from "./Provider.js"
import * as RateLimiter from "./RateLimiter.js"
import * as Retry from "./Retry.js"

// ---------------------------------------------------------------------------
// The file format
// ---------------------------------------------------------------------------

/**
 * The wire APIs: `chat` (Chat Completions), `responses`, `anthropic`, `gemini`, `ollama`.
 * @since 0.1.0 @category schemas
 */
export const Api = Schema.Literal(...registry.apiNames)
/** @since 0.1.0 @category schemas */
export type Api = typeof Api.Type

const isHttpUrl = (value: string): boolean => {
  if (!URL.canParse(value)) return false
  const url = new URL(value)
  return (url.protocol === "http:" || url.protocol === "https:") && url.hostname.length > 0
}

/** @since 0.1.0 @category schemas */
export const BaseUrl = Schema.NonEmptyTrimmedString.pipe(
  Schema.filter((value) => isHttpUrl(value) || "must be an http(s) URL, like https://api.openai.com/v1")
)

/**
 * A key that can go in an HTTP header; a pasted line break is refused here, by path, never by value.
 * @since 0.1.0 @category schemas
 */
export const ApiKey = Schema.String.pipe(
  Schema.filter((value) => {
    const problem = headerProblem(value)
    return problem === undefined || `a key that ${problem}, so it cannot go in an HTTP header`
  })
)

/** @since 0.1.0 @category schemas */
export const ModelEntry = Schema.Struct({
  model_name: Schema.NonEmptyTrimmedString,
  api_keys: Schema.optional(Schema.Array(ApiKey).annotations({ title: "a list of key strings" })),
  base_url: Schema.optional(BaseUrl),
  max_retries: Schema.optional(Schema.NonNegativeInt),
  /** Seconds before the first retry. */
  retry_delay: Schema.optional(Schema.NonNegative),
  rate_limit_capacity: Schema.optional(Schema.Positive),
  /** Requests per second. */
  rate_limit_refill_rate: Schema.optional(Schema.Positive),
  context_window: Schema.optional(Schema.Int.pipe(Schema.positive())),
  api: Schema.optional(Api),
  /** How keys are sent on Chat Completions: `bearer` (default), or `zhipu` (signed tokens). */
  auth: Schema.optional(Schema.Literal("bearer", "zhipu"))
}).annotations({ title: "a model entry ({ \"model_name\": …, \"api_keys\": […], … })" })
/** @since 0.1.0 @category schemas */
export type ModelEntry = typeof ModelEntry.Type

/** @since 0.1.0 @category schemas */
export const ProviderFile = Schema.Record({
  key: Schema.String,
  value: Schema.Array(ModelEntry).annotations({ title: "a list of model entries" })
}).annotations({ title: "an object of provider names to lists of model entries" })
/** @since 0.1.0 @category schemas */
export type ProviderFile = typeof ProviderFile.Type

/**
 * A bad file, an unknown provider or model, or a missing key. `path` is the file (when
 * there is one) and `jsonPath` the place in it, like `$.openai[0].max_retries`. The
 * message never holds a key: values are echoed only where they cannot be one.
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
// Error messages that say where, and never echo a key
// ---------------------------------------------------------------------------

const knownFields: ReadonlyArray<string> = Object.keys(ModelEntry.fields)

/** Names other tools use for our fields, squashed (see `squash`). */
const aliases: Readonly<Record<string, string>> = {
  model: "model_name",
  name: "model_name",
  key: "api_keys",
  token: "api_keys",
  url: "base_url",
  apibase: "base_url",
  apiurl: "base_url",
  endpoint: "base_url",
  retrie: "max_retries",
  contextlength: "context_window",
  contextsize: "context_window",
  maxcontext: "context_window",
  provider: "api"
}

/** `baseUrl`, `base-url` and `BASE_URL` read alike; so do `api_key` and `api_keys`. */
const squash = (name: string) => name.toLowerCase().replace(/[^a-z0-9]/g, "").replace(/s$/, "")

const editDistance = (a: string, b: string): number => {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const current = [i]
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1))
    }
    previous = current
  }
  return previous[b.length]!
}

const suggestField = (name: string): string | undefined => {
  const squashed = squash(name)
  const exact = knownFields.find((known) => squash(known) === squashed) ??
    (Object.hasOwn(aliases, squashed) ? aliases[squashed] : undefined)
  if (exact !== undefined) return exact
  const ranked = knownFields
    .map((known) => [known, editDistance(squash(known), squashed)] as const)
    .filter(([, distance]) => distance <= 2)
    .sort((a, b) => a[1] - b[1])
  return ranked[0]?.[0]
}

const unknownFieldMessage = (name: string): string => {
  const suggestion = suggestField(name)
  return suggestion === undefined
    ? `unknown field ${JSON.stringify(name)} (known fields: ${knownFields.join(", ")})`
    : `unknown field ${JSON.stringify(name)}; did you mean ${JSON.stringify(suggestion)}?`
}

/** Fields whose string values are safe to repeat back; any other string may be a key. */
const echoedStrings: ReadonlySet<string> = new Set(["model_name", "api"])

const valueAt = (json: unknown, path: ReadonlyArray<PropertyKey>): unknown =>
  path.reduce<unknown>(
    (value, key) => (typeof value === "object" && value !== null ? (value as Record<PropertyKey, unknown>)[key] : undefined),
    json
  )

/**
 * What a reader needs to see of a wrong value. Strings, lists and objects are described,
 * not shown: a key pasted into any of them would otherwise end up in a log.
 */
const describeActual = (value: unknown, path: ReadonlyArray<PropertyKey>): string => {
  if (value === null || typeof value === "number" || typeof value === "boolean") return String(value)
  if (typeof value === "string") {
    return echoedStrings.has(String(path[path.length - 1])) ? JSON.stringify(value) : `a string (${value.length} characters)`
  }
  if (Array.isArray(value)) return `a list of ${value.length}`
  if (typeof value === "object") return "an object"
  return typeof value
}

const issueMessage = (issue: ParseResult.ArrayFormatterIssue, json: unknown): string => {
  if (issue._tag === "Unexpected") return unknownFieldMessage(String(issue.path[issue.path.length - 1]))
  const at = issue.message.indexOf(", actual ")
  return at < 0 ? issue.message : `${issue.message.slice(0, at)}, actual ${describeActual(valueAt(json, issue.path), issue.path)}`
}

const decodeFile = Schema.decodeUnknownEither(ProviderFile, { errors: "all", onExcessProperty: "error" })

const decodeError = (error: ParseResult.ParseError, json: unknown, path: string | undefined): ProviderConfigError => {
  // an optional field's failure also reports its "undefined" branch: noise for a reader
  const all = ParseResult.ArrayFormatter.formatErrorSync(error)
  const useful = all.filter((issue) => !issue.message.startsWith("Expected undefined"))
  const issues = useful.length > 0 ? useful : all
  const first = issues[0]
  const firstPath = first === undefined ? undefined : jsonPathOf(first.path)
  const others = issues.slice(1, 5).filter((issue) => jsonPathOf(issue.path) !== firstPath)
  const message = [
    first === undefined ? "invalid" : issueMessage(first, json),
    ...others.map((issue) => `also at ${jsonPathOf(issue.path)}: ${issueMessage(issue, json)}`)
  ].join("; ")
  return fail(message, firstPath, path)
}

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
  readonly auth: "bearer" | "zhipu"
}

/** @since 0.1.0 @category models */
export interface Registry {
  readonly providers: ReadonlyArray<string>
  readonly entries: ReadonlyArray<ResolvedModel>
  readonly models: {
    /** The ready stack for one model: provider adapter, the pool of its keys, its own limiter, and retry. */
    readonly layer: (
      provider: string,
      model: string
    ) => Layer.Layer<LanguageModel, ProviderConfigError, HttpClient.HttpClient>
    readonly get: (provider: string, model: string) => Option.Option<ResolvedModel>
  }
  /**
   * The pool that serves `model` of `provider` (without `model`: its first entry's). Models
   * listing the same keys share one pool; a model never leases another entry's keys.
   */
  readonly keyPool: (provider: string, model?: string) => Option.Option<KeyPool.Service>
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
  const api = entry.api ?? registry.inferApi(provider, entry.base_url)
  if (api === undefined) {
    return Either.left(
      fail(
        `unknown provider "${provider}": set "api" to one of ${registry.apiNames.join(", ")} (or a known provider name or base_url)`,
        jsonPathOf([provider, index]),
        path
      )
    )
  }
  if (entry.auth === "zhipu" && api !== "chat") {
    return Either.left(fail(`"auth": "zhipu" is for Chat Completions ("api": "chat"), not ${api}`, jsonPathOf([provider, index, "auth"]), path))
  }
  const resolved: ResolvedModel = {
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
  }
  return Either.right(resolved)
}

/** The first `model_name` given twice under one provider, as the two JSON paths. */
const duplicateModel = (file: ProviderFile): { readonly provider: string; readonly model: string; readonly first: number; readonly second: number } | undefined => {
  for (const [provider, models] of Object.entries(file)) {
    const seen = new Map<string, number>()
    for (const [index, entry] of models.entries()) {
      const first = seen.get(entry.model_name)
      if (first !== undefined) return { provider, model: entry.model_name, first, second: index }
      seen.set(entry.model_name, index)
    }
  }
  return undefined
}

/** One pool per distinct key set: models listing the same keys share their load and health. */
const keySetId = (keys: ReadonlyArray<Redacted.Redacted<string>>): string =>
  [...new Set(keys.map((key) => KeyPool.fingerprint(Redacted.value(key))))].sort().join(",")

/**
 * Builds a registry from an already-parsed file. Each model is served with its own entry's
 * `api_keys`, else with the provider's env vars; a model that needs keys and has none is
 * an error naming its entry. Unknown fields and a `model_name` given twice under one
 * provider are errors too.
 * @since 0.1.0 @category constructors
 */
export const fromJson = (json: unknown, path?: string): Effect.Effect<Registry, ProviderConfigError> =>
  Effect.gen(function* () {
    const decoded = decodeFile(json)
    if (Either.isLeft(decoded)) return yield* Effect.fail(decodeError(decoded.left, json, path))
    const file = decoded.right
    const duplicate = duplicateModel(file)
    if (duplicate !== undefined) {
      const at = (index: number) => jsonPathOf([duplicate.provider, index, "model_name"])
      return yield* Effect.fail(
        fail(
          `duplicate model_name ${JSON.stringify(duplicate.model)} under "${duplicate.provider}": at ${at(duplicate.first)} and ${at(duplicate.second)}; keep one entry (list all its keys in its api_keys)`,
          at(duplicate.second),
          path
        )
      )
    }
    const entries: Array<ResolvedModel> = []
    const pools = new Map<string, KeyPool.Service>()
    const limiters = new Map<string, RateLimiter.Service>()
    for (const [provider, models] of Object.entries(file)) {
      const poolsByKeySet = new Map<string, KeyPool.Service>()
      let env: ReadonlyArray<Redacted.Redacted<string>> | undefined
      for (const [index, entry] of models.entries()) {
        const resolved = resolveEntry(provider, entry, index, path)
        if (Either.isLeft(resolved)) return yield* Effect.fail(resolved.left)
        const model = resolved.right
        const own = entry.api_keys ?? []
        const keys = own.length > 0 ? own.map((key) => Redacted.make(key)) : (env ??= yield* envKeys(provider))
        if (keys.length === 0 && registry.needsKey(model.api, model.baseUrl)) {
          return yield* Effect.fail(
            fail(
              `no API key for "${provider}" model ${JSON.stringify(model.model)}: add "api_keys" to this entry or set ${envPrefix(provider)}_API_KEY (or ${envPrefix(provider)}_API_KEYS=k1,k2)`,
              jsonPathOf([provider, index, "api_keys"]),
              path
            )
          )
        }
        const setId = keySetId(keys)
        // no keys here means a provider that takes none (needsKey above)
        const pool = poolsByKeySet.get(setId) ??
          (yield* KeyPool.make({ providerId: provider, keys, keyless: keys.length === 0 }).pipe(
            Effect.mapError((error) => fail(String(error), jsonPathOf([provider, index, "api_keys"]), path))
          ))
        poolsByKeySet.set(setId, pool)
        pools.set(modelKey(provider, model.model), pool)
        entries.push(model)
        if (model.rateLimit !== undefined) {
          limiters.set(
            modelKey(provider, model.model),
            yield* RateLimiter.make({ ...model.rateLimit, provider }).pipe(
              Effect.mapError((error) => fail(String(error), jsonPathOf([provider, index]), path))
            )
          )
        }
      }
    }
    return makeRegistry(Object.keys(file), entries, pools, limiters, path)
  })

const modelKey = (provider: string, model: string) => `${provider}\u0000${model}`

/** The model over its API's spec, with the entry's retries: `max_retries` and `retry_delay` feed `Retry.schedule`. */
const stackOf = (model: ResolvedModel): Layer.Layer<LanguageModel, ConfigError, Provider.Requirements> => {
  const adapter = Provider.layer(registry.specOf(model.provider, model.api, model.baseUrl, model.auth), {
    model: model.model,
    baseUrl: model.baseUrl,
    contextWindow: model.contextWindow
  })
  if (model.maxRetries === 0) return adapter
  const schedule = Retry.schedule({ maxRetries: model.maxRetries, initialDelay: `${model.retryDelaySeconds * 1000} millis` })
  return Retry.layer(schedule).pipe(Layer.provide(adapter))
}

const makeRegistry = (
  providers: ReadonlyArray<string>,
  entries: ReadonlyArray<ResolvedModel>,
  pools: ReadonlyMap<string, KeyPool.Service>,
  limiters: ReadonlyMap<string, RateLimiter.Service>,
  path: string | undefined
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
      layer: (provider, model) => {
        const resolved = get(provider, model)
        const pool = pools.get(modelKey(provider, model))
        if (Option.isNone(resolved) || pool === undefined) {
          const known = entries.map((e) => `${e.provider}/${e.model}`).join(", ")
          return Layer.fail(
            fail(
              !providers.includes(provider)
                ? `unknown provider "${provider}" (configured: ${providers.join(", ") || "none"})`
                : `unknown model "${model}" for provider "${provider}" (configured: ${known})`,
              jsonPathOf([provider]),
              path
            )
          )
        }
        const limiter = limiters.get(modelKey(provider, model))
        return stackOf(resolved.value).pipe(
          Layer.provide(Layer.succeed(KeyPool.KeyPool, pool)),
          Layer.provide(limiter === undefined ? unlimited : Layer.succeed(RateLimiter.RateLimiter, limiter)),
          Layer.mapError((error) => fail(String(error), jsonPathOf([provider]), path))
        )
      }
    }
  }
}

// ---------------------------------------------------------------------------
// The file's text
// ---------------------------------------------------------------------------

const lineAt = (text: string, offset: number): { readonly line: number; readonly column: number } => {
  const before = text.slice(0, offset)
  const lastBreak = before.lastIndexOf("\n")
  return { line: before.split("\n").length, column: offset - lastBreak }
}

/** jsonc-parser's codes in words; the parser's own messages are never used as they quote the text. */
const syntaxMessages: Readonly<Record<string, string>> = {
  InvalidSymbol: "unexpected character (strings need double quotes)",
  InvalidNumberFormat: "invalid number",
  PropertyNameExpected: "a property name in double quotes was expected (no trailing commas in JSON)",
  ValueExpected: "a value was expected (no trailing commas in JSON)",
  ColonExpected: "':' was expected",
  CommaExpected: "',' was expected",
  CloseBraceExpected: "'}' was expected",
  CloseBracketExpected: "']' was expected",
  EndOfFileExpected: "nothing may follow the top-level object",
  InvalidCommentToken: "comments are not allowed in JSON",
  UnexpectedEndOfComment: "a comment is not closed",
  UnexpectedEndOfString: "a string is not closed",
  UnexpectedEndOfNumber: "a number is cut short",
  InvalidUnicode: "invalid \\u escape",
  InvalidEscapeCharacter: "invalid escape character",
  InvalidCharacter: "a control character inside a string"
}

interface DuplicateKey {
  readonly path: ReadonlyArray<PropertyKey>
  readonly first: number
  readonly second: number
}

/** `JSON.parse` keeps the last of two equal keys without a word; the tree still has both. */
const findDuplicateKey = (node: JsonNode, path: ReadonlyArray<PropertyKey>): DuplicateKey | undefined => {
  if (node.type === "object") {
    const seen = new Map<string, number>()
    for (const property of node.children ?? []) {
      const [keyNode, valueNode] = property.children ?? []
      if (keyNode === undefined) continue
      const key = String(keyNode.value)
      const first = seen.get(key)
      if (first !== undefined) return { path: [...path, key], first, second: keyNode.offset }
      seen.set(key, keyNode.offset)
      const inner = valueNode === undefined ? undefined : findDuplicateKey(valueNode, [...path, key])
      if (inner !== undefined) return inner
    }
  } else if (node.type === "array") {
    for (const [index, child] of (node.children ?? []).entries()) {
      const inner = findDuplicateKey(child, [...path, index])
      if (inner !== undefined) return inner
    }
  }
  return undefined
}

/**
 * Parses a `provider.json`'s text: strict JSON, and no key given twice in one object.
 * Errors give the line and column, never an excerpt of the text (it may hold keys).
 * @since 0.1.0 @category constructors
 */
export const parseText = (text: string, path?: string): Either.Either<unknown, ProviderConfigError> => {
  const errors: Array<JsonParseError> = []
  const tree = parseTree(text, errors, { disallowComments: true, allowTrailingComma: false, allowEmptyContent: false })
  const syntax = errors[0]
  if (syntax !== undefined || tree === undefined) {
    const { line, column } = lineAt(text, syntax?.offset ?? 0)
    const code = syntax === undefined ? "ValueExpected" : printParseErrorCode(syntax.error)
    return Either.left(fail(`not valid JSON at line ${line}, column ${column}: ${syntaxMessages[code] ?? code}`, undefined, path))
  }
  const duplicate = findDuplicateKey(tree, [])
  if (duplicate !== undefined) {
    const where = (offset: number) => {
      const { column, line } = lineAt(text, offset)
      return `line ${line}, column ${column}`
    }
    const name = JSON.stringify(String(duplicate.path[duplicate.path.length - 1]))
    const what = duplicate.path.length === 1 ? `duplicate provider ${name}` : `duplicate field ${name}`
    const hint = duplicate.path.length === 1 ? "merge the two lists into one" : "keep one"
    return Either.left(
      fail(
        `${what} at ${where(duplicate.first)} and ${where(duplicate.second)} (JSON would silently keep only the last; ${hint})`,
        jsonPathOf(duplicate.path),
        path
      )
    )
  }
  try {
    // the same value JSON.parse gives, now that the text is known to be strict JSON
    return Either.right(JSON.parse(text))
  } catch {
    return Either.left(fail("not valid JSON", undefined, path))
  }
}

/**
 * Reads and decodes a `provider.json`. A missing file, bad JSON, a key given twice or a
 * bad field fails with a `ProviderConfigError` naming the file and the place in it.
 * @since 0.1.0 @category constructors
 */
export const load = (path: string): Effect.Effect<Registry, ProviderConfigError, FileSystem.FileSystem> =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const text = yield* fs.readFileString(path).pipe(
      Effect.mapError((error) => fail(`cannot read the file (${error.message})`, undefined, path))
    )
    const json = parseText(text, path)
    if (Either.isLeft(json)) return yield* Effect.fail(json.left)
    return yield* fromJson(json.right, path)
  }).pipe(Effect.withSpan("ProviderConfig.load", { attributes: { path } }))

// ---------------------------------------------------------------------------
// Detection from a model name
// ---------------------------------------------------------------------------

/**
 * The provider a model name belongs to: `gpt-*`, `o1`…, `chatgpt-*` → openai; `claude-*` →
 * anthropic; `gemini-*` → gemini; `vendor/model` → openrouter; `deepseek-*` → deepseek.
 * @since 0.1.0 @category detection
 */
export const detectProvider = (model: string): Option.Option<string> => Option.fromNullable(registry.detect(model))

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
