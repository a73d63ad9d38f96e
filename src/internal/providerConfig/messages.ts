/**
 * A decode failure of a `provider.json` as one message that says where, suggests the field
 * meant by an unknown name, and never echoes a value that could be a key.
 */
import * as Effect from "effect/Effect"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import type { ProviderFile as File } from "../../ProviderConfig.js"
import { editDistance } from "../closest.js"
import { fail, jsonPathOf, ModelEntry, ProviderFile, type ProviderConfigError } from "./schema.js"

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

const decodeFile = Schema.decodeUnknown(ProviderFile, { errors: "all", onExcessProperty: "error" })

/** The file's JSON decoded, unknown fields refused, or the first problems as one message. */
export const decode = (json: unknown, path: string | undefined): Effect.Effect<File, ProviderConfigError> =>
  Effect.mapError(decodeFile(json), (error) => decodeError(error, json, path))
