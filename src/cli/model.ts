/** What every command shares: the model options, how they choose a model stack, and the CLI's error. */
import { Options } from "@effect/cli"
import type * as FileSystem from "@effect/platform/FileSystem"
import type * as HttpClient from "@effect/platform/HttpClient"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as registry from "../internal/providers/registry.js"
import * as KeyPool from "../KeyPool.js"
import type { LanguageModel } from "../LanguageModel.js"
import * as OpenAiCompatible from "../OpenAiCompatible.js"
import * as ProviderConfig from "../ProviderConfig.js"
import * as RateLimiter from "../RateLimiter.js"
import * as Testing from "../Testing.js"
import * as Transport from "../Transport.js"

/** A failure the CLI reports as a message and exit code 1, never a stack trace. */
export class CliError extends Schema.TaggedError<CliError>()("CliError", { message: Schema.String }) {}

export const model = Options.text("model").pipe(
  Options.withAlias("m"),
  Options.optional,
  Options.withDescription("model name, or provider:model (a known provider, or one of the --config file)")
)
export const config = Options.text("config").pipe(Options.optional, Options.withDescription("a provider.json file"))
export const fake = Options.boolean("fake").pipe(Options.withDescription("use the built-in fake provider (no key, no network)"))

export interface ModelChoice {
  readonly model: Option.Option<string>
  readonly config: Option.Option<string>
  readonly fake: boolean
}

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

const fromConfig = (path: string, wanted: string | undefined) =>
  Effect.gen(function* () {
    const toCliError = (error: ProviderConfig.ProviderConfigError) => new CliError({ message: error.message })
    const config = yield* ProviderConfig.load(path).pipe(Effect.mapError(toCliError))
    const matches = config.entries.filter((e) =>
      wanted === undefined || e.model === wanted || `${e.provider}/${e.model}` === wanted || `${e.provider}:${e.model}` === wanted
    )
    if (matches.length !== 1) {
      const known = config.entries.map((e) => `${e.provider}:${e.model}`).join(", ")
      return yield* Effect.fail(
        new CliError({
          message: matches.length === 0
            ? `no model ${wanted === undefined ? "" : `"${wanted}" `}in ${path} (configured: ${known || "none"})`
            : `--model is ambiguous or missing; choose one of: ${matches.map((e) => `${e.provider}:${e.model}`).join(", ")}`
        })
      )
    }
    const entry = matches[0]!
    return config.models.layer(entry.provider, entry.model).pipe(Layer.mapError(toCliError))
  })

/** A model by name alone, keys from the provider's env vars; the provider from `provider:` or the name. */
const fromEnv = (name: string) => {
  const { model, provider } = splitModel(name)
  if (provider === undefined && registry.detect(model) === undefined) {
    const known = Object.entries(registry.providers).map(([name, row]) => `${name} (${row.envVar})`).join(", ")
    return Effect.fail(
      new CliError({ message: `cannot tell the provider of model "${model}": write --model provider:${model}, the provider one of ${known}` })
    )
  }
  return Effect.succeed(
    ProviderConfig.forModel(model, provider === undefined ? {} : { provider }).pipe(
      Layer.mapError((error) => new CliError({ message: error.message }))
    )
  )
}

const modelLayer = (
  choice: ModelChoice
): Effect.Effect<Layer.Layer<LanguageModel, CliError, HttpClient.HttpClient>, CliError, FileSystem.FileSystem | Scope.Scope> =>
  Effect.gen(function* () {
    if (choice.fake) {
      const fake = yield* Testing.FakeProvider.make({ respond: fakeEcho, record: false })
      return OpenAiCompatible.layer({ model: Option.getOrElse(choice.model, () => "fake-model"), baseUrl: fake.baseUrl, provider: "fake" }).pipe(
        Layer.provide(KeyPool.layer({ providerId: "fake", keys: ["fake-key-1", "fake-key-2"] })),
        Layer.provide(RateLimiter.layer({ capacity: 100, refillPerSecond: 100 }))
      )
    }
    if (Option.isSome(choice.config)) return yield* fromConfig(choice.config.value, Option.getOrUndefined(choice.model))
    return yield* fromEnv(Option.getOrElse(choice.model, () => "gpt-4o-mini"))
  })

/** Runs `program` with the chosen model over undici. */
export const withModel = <A, E, R>(choice: ModelChoice, program: Effect.Effect<A, E, R | LanguageModel>) =>
  Effect.scoped(
    Effect.flatMap(modelLayer(choice), (layer) => Effect.provide(program, layer.pipe(Layer.provide(Transport.layerUndici))))
  )
