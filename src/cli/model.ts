/** What every command shares: the model options, how they choose a model stack, and the CLI's error. */
import { HelpDoc, Options, ValidationError } from "@effect/cli"
import type * as FileSystem from "@effect/platform/FileSystem"
import type * as HttpClient from "@effect/platform/HttpClient"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as FiberRef from "effect/FiberRef"
import * as Layer from "effect/Layer"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import { closest } from "../internal/closest.js"
import * as envKeys from "../internal/envKeys.js"
import * as providerKeys from "../internal/providerConfig/keys.js"
import * as registry from "../internal/providers/registry.js"
import * as KeyPool from "../KeyPool.js"
import type { LanguageModel } from "../LanguageModel.js"
import * as LlmError from "../LlmError.js"
import * as OpenAiCompatible from "../OpenAiCompatible.js"
import * as ProviderConfig from "../ProviderConfig.js"
import * as RateLimiter from "../RateLimiter.js"
import * as Testing from "../Testing.js"
import * as Transport from "../Transport.js"
import { optionHelp } from "./help.js"

/**
 * A failure the CLI reports as one line, never a stack trace: exit code 1 for a failed run,
 * 2 for a command line that cannot run (`usage`).
 */
export class CliError extends Schema.TaggedError<CliError>()("CliError", {
  message: Schema.String,
  usage: Schema.optional(Schema.Boolean)
}) {}

const providerNames = Object.keys(registry.providers) as ReadonlyArray<registry.ProviderName>

export const model = Options.text("model").pipe(Options.withAlias("m"), Options.optional, Options.withDescription(optionHelp.model.text))

/** A name of the provider table (or an alias); else a usage error naming the flag, the value and the nearest name. */
export const parseProvider = (name: string): Either.Either<registry.ProviderName, string> => {
  const known = registry.lookup(name)
  if (known !== undefined) return Either.right(known.name)
  const near = closest(name, providerNames)
  return Either.left(
    `--provider ${JSON.stringify(name)} is not a provider this CLI knows${near === undefined ? "" : `; did you mean "${near}"?`} ` +
      `(known: ${providerNames.join(", ")}; for another server, use --config)`
  )
}

export const provider = Options.text("provider").pipe(
  Options.mapEffect((name) =>
    Either.match(parseProvider(name), {
      onLeft: (message) => Effect.fail(ValidationError.invalidValue(HelpDoc.p(message))),
      onRight: Effect.succeed
    })),
  Options.optional,
  Options.withDescription(optionHelp.provider.text)
)
export const baseUrl = Options.text("base-url").pipe(Options.optional, Options.withDescription(optionHelp.baseUrl.text))
export const config = Options.text("config").pipe(Options.optional, Options.withDescription(optionHelp.config.text))
export const fake = Options.boolean("fake").pipe(Options.withDescription(optionHelp.fake.text))

export interface ModelChoice {
  readonly model: Option.Option<string>
  readonly provider: Option.Option<registry.ProviderName>
  readonly baseUrl: Option.Option<string>
  readonly config: Option.Option<string>
  readonly fake: boolean
}

/** What a run talks to, for messages that say what to check. */
export interface Target {
  readonly provider: string
  readonly baseUrl: string | undefined
  /** Where its keys come from, and their fingerprints (never the keys). */
  readonly keys: { readonly source: string; readonly fingerprints: ReadonlyArray<string> } | undefined
  /** The retries its `--config` entry asks for (`max_retries`), when it has one. */
  readonly maxRetries?: number | undefined
}

/**
 * Whether the model stack retries on its own (`chat`), or each call is one HTTP request and
 * the caller retries (`batch`, whose `--retries` counts every retry).
 */
export type StackRetries = "stack" | "none"

/**
 * `provider:model` when the prefix names a known provider, so that a model name with a colon
 * of its own (`llama3:8b`) stays whole.
 */
export const splitModel = (name: string): { readonly provider?: string; readonly model: string } => {
  const at = name.indexOf(":")
  if (at <= 0) return { model: name }
  const known = registry.lookup(name.slice(0, at))
  return known === undefined ? { model: name } : { provider: known.name, model: name.slice(at + 1) }
}

/** The fake answers by echoing the last user message, so runs are checkable. */
const fakeEcho: Testing.Responder = (request) => {
  const body = request.body as { messages?: Array<{ role?: string; content?: unknown }> } | undefined
  const last = [...(body?.messages ?? [])].reverse().find((m) => m.role === "user")
  const text = typeof last?.content === "string" ? last.content : JSON.stringify(last?.content ?? "")
  return { text: `echo: ${text}`, chunks: 8, delayMs: Number(process.env.EFFECT_LLM_FAKE_DELAY_MS ?? 0) }
}

/** The error of a file without the model asked for (or, with no --model, without one to choose). */
const noSuchModel = (path: string, wanted: string | undefined, known: ReadonlyArray<ProviderConfig.ResolvedModel>) => {
  const names = known.map((e) => `${e.provider}:${e.model}`).join(", ") || "none"
  return new CliError({
    usage: true,
    message: wanted === undefined
      ? `${path} has ${known.length} models and none is gpt-4o-mini: pass --model with one of: ${names}`
      : `no model "${wanted}" in ${path} (configured: ${names})`
  })
}

const toCliError = (error: ProviderConfig.ProviderConfigError) => new CliError({ message: error.message })

/** The entry of `--config` for the model asked for (without --model: the file's only one, else gpt-4o-mini). */
export const configEntry = (path: string, wanted: string | undefined, provider: string | undefined) =>
  Effect.gen(function* () {
    const config = yield* ProviderConfig.load(path).pipe(Effect.mapError(toCliError))
    const ofProvider = config.entries.filter((e) => provider === undefined || registry.lookup(e.provider)?.name === provider || e.provider === provider)
    const named = (name: string) =>
      ofProvider.filter((e) => e.model === name || `${e.provider}/${e.model}` === name || `${e.provider}:${e.model}` === name)
    // without --model: the file's only model, else the default the help names
    const matches = wanted !== undefined ? named(wanted) : ofProvider.length === 1 ? ofProvider : named("gpt-4o-mini")
    if (matches.length === 0) return yield* Effect.fail(noSuchModel(path, wanted, ofProvider))
    if (matches.length > 1) {
      return yield* Effect.fail(
        new CliError({
          usage: true,
          message: `--model ${wanted ?? "gpt-4o-mini"} is in ${path} under ${matches.length} providers: ` +
            `pass one of ${matches.map((e) => `${e.provider}:${e.model}`).join(", ")}`
        })
      )
    }
    return { config, entry: matches[0]! }
  })

const fromConfig = (path: string, wanted: string | undefined, provider: string | undefined, retries: StackRetries) =>
  Effect.gen(function* () {
    const { config, entry } = yield* configEntry(path, wanted, provider)
    const target: Target = {
      provider: entry.provider,
      baseUrl: entry.baseUrl ?? registry.defaultBaseUrl(entry.provider, entry.api),
      keys: { source: `the api_keys of ${path} (or ${providerKeys.variableOf(entry.provider)})`, fingerprints: [] },
      maxRetries: entry.maxRetries
    }
    const layer = config.models.layer(entry.provider, entry.model, retries === "none" ? { maxRetries: 0 } : undefined)
    return [layer.pipe(Layer.mapError(toCliError)), target] as const
  })

/** A model by name alone, keys from the provider's env vars; the provider from `--provider`, `provider:` or the name. */
const fromEnv = (name: string, choice: ModelChoice, retries: StackRetries) =>
  Effect.gen(function* () {
    const split = splitModel(name)
    const model = split.model
    const provider = Option.getOrUndefined(choice.provider) ?? split.provider ?? registry.detect(model)
    if (provider === undefined) {
      return yield* Effect.fail(
        new CliError({
          usage: true,
          message: `cannot tell the provider of model "${model}": pass --provider (one of ${providerNames.join(", ")}) or write --model provider:${model}; ` +
            `keys come from ${Object.entries(registry.providers).map(([name, row]) => `${name} (${row.envVar})`).join(", ")}`
        })
      )
    }
    const row = registry.lookup(provider)!.row
    const url = Option.getOrUndefined(choice.baseUrl) ?? registry.baseUrlOf(row)
    // the rule forModel reads them by, read here first for a message that names the CLI's options
    const keys = yield* providerKeys.read(provider, registry.inferApi(provider, url) ?? row.api, url).pipe(
      Effect.mapError((error) =>
        new CliError({
          message: `${envKeys.isMissing(error) ? `no API key for ${provider}: ` : ""}${envKeys.describe(error)}; ` +
            `or pass --config provider.json, or try --fake (the built-in fake provider: no key, no network)`
        })
      )
    )
    const target: Target = {
      provider,
      baseUrl: url,
      keys: keys.length === 0
        ? undefined
        : { source: providerKeys.variableOf(provider), fingerprints: [...new Set(keys.map((key) => KeyPool.fingerprint(Redacted.value(key))))] }
    }
    const layer = ProviderConfig.forModel(model, {
      provider,
      ...(Option.isSome(choice.baseUrl) ? { baseUrl: choice.baseUrl.value } : {}),
      ...(retries === "none" ? { maxRetries: 0 } : {})
    }).pipe(
      Layer.mapError((error) => new CliError({ message: error.message }))
    )
    return [layer, target] as const
  })

/** One line that says what failed and what to check. */
export const explain = (error: LlmError.LlmError, target: Target): string => {
  const where = target.baseUrl === undefined ? target.provider : `${target.provider} at ${target.baseUrl}`
  const keys = target.keys === undefined
    ? "check its keys"
    : `check ${target.keys.fingerprints.length === 0 ? "" : `${target.keys.fingerprints.join(", ")} (key fingerprint) from `}${target.keys.source}`
  switch (error._tag) {
    case "NetworkError": {
      const host = hostOf(target.baseUrl)
      return `cannot reach ${host ?? target.provider} (${error.message}): check the base_url ${target.baseUrl ?? "(the provider's default)"}, ` +
        `and that the server is up and reachable`
    }
    case "AuthenticationError":
    case "PermissionError":
      return `${where} rejected the key (${error.message}): ${keys}`
    case "QuotaExceededError":
      return `${where}: the key is out of quota (${error.message}): ${keys}`
    case "NoKeyAvailableError":
      return `no key of ${target.provider} can serve (${error.message}): ${keys}`
    case "TimeoutError":
      return `${where} did not answer in time (${error.message}): check the base_url and the server's load`
    default:
      return `${where}: ${error._tag}: ${error.message}`
  }
}

const hostOf = (url: string | undefined): string | undefined => {
  if (url === undefined) return undefined
  try {
    return new URL(url).host
  } catch {
    return undefined
  }
}

const modelLayer = (
  choice: ModelChoice,
  retries: StackRetries
): Effect.Effect<
  readonly [Layer.Layer<LanguageModel, CliError, HttpClient.HttpClient | Transport.Transport>, Target],
  CliError,
  FileSystem.FileSystem | Scope.Scope
> =>
  Effect.gen(function* () {
    if (choice.fake) {
      const fake = yield* Testing.FakeProvider.make({ respond: fakeEcho, record: false })
      const layer = OpenAiCompatible.layer({ model: Option.getOrElse(choice.model, () => "fake-model"), baseUrl: fake.baseUrl, provider: "fake" }).pipe(
        Layer.provide(KeyPool.layer({ providerId: "fake", keys: ["fake-key-1", "fake-key-2"] })),
        Layer.provide(RateLimiter.layer({ capacity: 100, refillPerSecond: 100 })),
        Layer.mapError((error) => new CliError({ message: String(error) }))
      )
      return [layer, { provider: "fake", baseUrl: fake.baseUrl, keys: undefined }] as const
    }
    if (Option.isSome(choice.config)) {
      return yield* fromConfig(choice.config.value, Option.getOrUndefined(choice.model), Option.getOrUndefined(choice.provider), retries)
    }
    return yield* fromEnv(Option.getOrElse(choice.model, () => "gpt-4o-mini"), choice, retries)
  })

/**
 * The HTTP requests of the calls that run with it set: every request a transport sends
 * (a retry, another key after a 429) adds one.
 */
export const httpRequests = FiberRef.unsafeMake<{ count: number } | undefined>(undefined)

const counting = (inner: Transport.Service): Transport.Service => {
  const count = FiberRef.getWith(httpRequests, (box) => Effect.sync(() => box !== undefined && box.count++))
  return {
    ...inner,
    text: (request) => Effect.zipRight(count, inner.text(request)),
    stream: (request) => Effect.zipRight(count, inner.stream(request))
  }
}

/** undici, with each request counted in `httpRequests`. */
const transport = Layer.effectContext(
  Effect.map(Effect.context<Transport.Transport | HttpClient.HttpClient>(), (context) =>
    Context.add(context, Transport.Transport, counting(Context.get(context, Transport.Transport))))
).pipe(Layer.provide(Transport.layerUndici))

/**
 * Runs `program` with the chosen model over undici. A provider's failure becomes one line
 * that says what failed and what to check.
 */
export const withModel = <A, E, R>(
  choice: ModelChoice,
  program: (target: Target) => Effect.Effect<A, E, R | LanguageModel>,
  retries: StackRetries = "stack"
) =>
  Effect.scoped(
    Effect.flatMap(modelLayer(choice, retries), ([layer, target]) =>
      Effect.provide(program(target), layer.pipe(Layer.provide(transport))).pipe(
        Effect.catchIf(
          (error): error is Extract<E, LlmError.LlmError> => LlmError.isLlmError(error),
          (error) => Effect.fail(new CliError({ message: explain(error, target) }))
        )
      ))
  )
