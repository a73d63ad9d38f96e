/**
 * The one reader of API keys from configuration (the environment, unless a `ConfigProvider`
 * says otherwise). `KeyPool.layerConfig`, the presets and `layerFromEnv`s through it,
 * `ProviderConfig` and the CLI all read keys here, by one rule:
 *
 * - the variable (`OPENAI_API_KEY`) holds one key or a comma-separated list; blank entries are
 *   ignored;
 * - missing, or set but holding no key (`""`, `" , "`), it is an error that names it, unless the
 *   provider takes no key (a local server): then there are none;
 * - a key that cannot go in an HTTP header is an error naming its position, never its value.
 */
import * as Config from "effect/Config"
import * as ConfigError from "effect/ConfigError"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import { headerProblem } from "./keyPool.js"

export type Keys = ReadonlyArray<Redacted.Redacted<string>>

/**
 * Why a key cannot go in an HTTP header (a pasted line break, a control or non-ASCII
 * character), or undefined. The key itself is never part of the answer.
 */
export const keyProblem = (key: string): string | undefined => headerProblem(key)

/** The keys of a variable's text: comma-separated, trimmed, blank entries dropped. */
export const split = (text: string): ReadonlyArray<string> =>
  text.split(",").map((key) => key.trim()).filter((key) => key.length > 0)

const emptyKeys = "effect-llm/envKeys/empty"

const parse = (text: string): Either.Either<Keys, ConfigError.ConfigError> => {
  const keys = split(text)
  if (keys.length === 0) return Either.left(ConfigError.InvalidData([], emptyKeys))
  // named by position, never by value: a config error is printed whole
  for (const [index, key] of keys.entries()) {
    const problem = keyProblem(key)
    if (problem !== undefined) {
      return Either.left(ConfigError.InvalidData([], `key ${index + 1} of ${keys.length} ${problem}, so it cannot go in an HTTP header`))
    }
  }
  return Either.right(keys.map((key) => Redacted.make(key)))
}

/**
 * The keys `config` holds, by the rule. `optional`: the provider takes no key, so a missing
 * or blank variable gives none instead of an error. A missing variable whose plural
 * (`OPENAI_API_KEYS`) is set says that the plural is not read.
 */
export const read = (config: Config.Config<Redacted.Redacted<string>>, optional: boolean): Effect.Effect<Keys, ConfigError.ConfigError> => {
  const parsed = Config.mapOrFail(config, (redacted) => parse(Redacted.value(redacted)))
  if (optional) {
    return Effect.catchIf(Effect.map(load(Config.option(parsed)), Option.getOrElse((): Keys => [])), isEmpty, () => Effect.succeed([]))
  }
  return Effect.catchAll(load(parsed), (error) =>
    Effect.gen(function* () {
      // the variable's name: the path of the config, as a provider with nothing in it reports it
      const path = yield* Effect.match(Effect.withConfigProvider(load(config), ConfigProvider.fromMap(new Map())), {
        onFailure: (probe): ReadonlyArray<string> => (probe._op === "MissingData" ? probe.path : []),
        onSuccess: (): ReadonlyArray<string> => []
      })
      const plural = error._op === "MissingData" && error.path.length > 0
        ? Option.isSome(yield* load(Config.option(Config.string(`${variableOf(error.path)}S`))))
        : false
      return yield* Effect.fail(explainError(error, path, plural))
    }))
}

/** A Config read as an Effect, by `yield*` (a Config is an Effect in Effect 3 only). */
const load = <A>(config: Config.Config<A>): Effect.Effect<A, ConfigError.ConfigError> =>
  Effect.gen(function* () {
    return yield* config
  })

/** The keys in the variable `name`, by the rule. */
export const readVariable = (name: string, optional: boolean): Effect.Effect<Keys, ConfigError.ConfigError> =>
  read(Config.redacted(name), optional)

/** The error says the variable is missing (not blank, not a bad key). */
export const isMissing = (error: ConfigError.ConfigError): boolean =>
  error._op === "MissingData" || ((error._op === "And" || error._op === "Or") && isMissing(error.left) && isMissing(error.right))

/** What a key error says, as one sentence, for callers that report it in their own words. */
export const describe = (error: ConfigError.ConfigError): string => {
  switch (error._op) {
    case "And":
    case "Or":
      return [...new Set([describe(error.left), describe(error.right)])].join("; ")
    default:
      return error.message
  }
}

const isEmpty = (error: ConfigError.ConfigError): boolean =>
  error._op === "InvalidData" ? error.message === emptyKeys : error._op === "And" || error._op === "Or" ? isEmpty(error.left) && isEmpty(error.right) : false

// the variable by its config path (an env var's name), and what to do about it
const explainError = (error: ConfigError.ConfigError, path: ReadonlyArray<string>, plural: boolean): ConfigError.ConfigError => {
  switch (error._op) {
    case "And":
      return ConfigError.And(explainError(error.left, path, plural), explainError(error.right, path, plural))
    case "Or":
      return ConfigError.Or(explainError(error.left, path, plural), explainError(error.right, path, plural))
    case "MissingData": {
      const name = variableOf(error.path)
      return ConfigError.MissingData(
        error.path,
        `set ${name} to an API key, or a comma-separated list of keys${plural ? ` (${name}S is not read: move its keys to ${name})` : ""}`
      )
    }
    case "InvalidData": {
      const at = error.path.length > 0 ? error.path : [...path]
      return ConfigError.InvalidData(
        at,
        error.message === emptyKeys
          ? `${variableOf(at)} is set but empty: set it to an API key, or a comma-separated list of keys`
          : `${variableOf(at)}: ${error.message}`
      )
    }
    default:
      return error
  }
}

const variableOf = (path: ReadonlyArray<string>): string => (path.length === 0 ? "the key variable" : path.join("_"))
