/** The `provider.json` format as Schemas, and the error that says where a file is wrong. */
import * as Schema from "effect/Schema"
import { keyProblem } from "../envKeys.js"
import * as registry from "../providers/registry.js"

export const Api = Schema.Literal(...registry.apiNames)

const isHttpUrl = (value: string): boolean => {
  if (!URL.canParse(value)) return false
  const url = new URL(value)
  return (url.protocol === "http:" || url.protocol === "https:") && url.hostname.length > 0
}

export const BaseUrl = Schema.NonEmptyTrimmedString.pipe(
  Schema.filter((value) => isHttpUrl(value) || "must be an http(s) URL, like https://api.openai.com/v1")
)

/** A pasted line break is refused here, by path, never by value. */
export const ApiKey = Schema.String.pipe(
  Schema.filter((value) => {
    const problem = keyProblem(value)
    return problem === undefined || `a key that ${problem}, so it cannot go in an HTTP header`
  })
)

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

export const ProviderFile = Schema.Record({
  key: Schema.String,
  value: Schema.Array(ModelEntry).annotations({ title: "a list of model entries" })
}).annotations({ title: "an object of provider names to lists of model entries" })

/**
 * A bad file, an unknown provider or model, or a missing key. `path` is the file (when
 * there is one) and `jsonPath` the place in it, like `$.openai[0].max_retries`. The
 * message never holds a key: values are echoed only where they cannot be one.
 */
export class ProviderConfigError extends Schema.TaggedError<ProviderConfigError>()("ProviderConfigError", {
  message: Schema.String,
  path: Schema.optional(Schema.String),
  jsonPath: Schema.optional(Schema.String)
}) {}

/** `$.openai[0].max_retries`; a name that is not an identifier goes in brackets. */
export const jsonPathOf = (path: ReadonlyArray<PropertyKey>): string =>
  "$" + path.map((key) => (typeof key === "number" ? `[${key}]` : /^[A-Za-z_][\w-]*$/.test(String(key)) ? `.${String(key)}` : `[${JSON.stringify(String(key))}]`)).join("")

/**
 * The error, its message starting with where: `provider.json at $.openai[0]: …`; `source`
 * names what it came from when there is no file (`ProviderConfig.forModel("gpt-4o")`).
 */
export const fail = (message: string, jsonPath: string | undefined, path: string | undefined, source?: string) =>
  new ProviderConfigError({
    message: `${path ?? source ?? "provider config"}${jsonPath ? ` at ${jsonPath}` : ""}: ${message}`,
    ...(path === undefined ? {} : { path }),
    ...(jsonPath === undefined ? {} : { jsonPath })
  })
