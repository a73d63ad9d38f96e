/**
 * A connection's options checked once, before anything starts: an option the user got wrong
 * is a `ConfigError` naming it, with no secret in it. Also the server's name and the secrets
 * of the connection, read from the options.
 */
import * as ConfigError from "effect/ConfigError"
import * as Duration from "effect/Duration"
import * as Either from "effect/Either"
import { basename } from "node:path"
import type * as Mcp from "../../Mcp.js"
import { Secrets } from "./secrets.js"

export interface Settings {
  readonly name: string
  readonly server: Mcp.Server
  readonly secrets: Secrets
  /** Header or environment values in clear, for the SDK only. */
  readonly clear: Readonly<Record<string, string>>
  readonly url: URL | undefined
  readonly timeoutMillis: number
  readonly connectTimeoutMillis: number
  readonly maxResultBytes: number
  /** The largest message read from the wire. */
  readonly maxMessageBytes: number
}

export const defaults = {
  timeout: Duration.seconds(60),
  connectTimeout: Duration.seconds(10),
  maxResultBytes: 1024 * 1024
}

const invalid = (path: ReadonlyArray<string>, message: string) => Either.left(ConfigError.InvalidData([...path], `Mcp: ${message}`))

const durationOf = (name: string, input: Duration.DurationInput | undefined, fallback: Duration.Duration) => {
  const decoded = input === undefined ? Either.right(fallback) : Either.try(() => Duration.decode(input))
  const millis = Either.isRight(decoded) ? Duration.toMillis(decoded.right) : NaN
  return Number.isFinite(millis) && millis > 0
    ? Either.right(Math.ceil(millis))
    : invalid([name], `${name} must be a positive, finite duration, got ${String(input)}`)
}

/** The default name of a server: the command's file name, or the URL's host; never a secret. */
const defaultName = (server: Mcp.Server, url: URL | undefined): string =>
  server._tag === "Stdio" ? basename(server.command) : url?.host ?? "mcp"

export const settingsOf = (server: Mcp.Server, options: Mcp.ConnectOptions = {}): Either.Either<Settings, ConfigError.ConfigError> => {
  const secrets = new Secrets()
  const clear: Record<string, string> = {}
  let url: URL | undefined
  if (server._tag === "Stdio") {
    if (typeof server.command !== "string" || server.command.length === 0) return invalid(["command"], "command must be a non-empty string")
    if (server.args !== undefined && (!Array.isArray(server.args) || server.args.some((arg) => typeof arg !== "string"))) {
      return invalid(["args"], "args must be an array of strings")
    }
    for (const [name, value] of Object.entries(server.env ?? {})) clear[name] = secrets.named(name, value)
  } else {
    try {
      url = new URL(server.url)
    } catch {
      return invalid(["url"], "url must be an http or https URL")
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") return invalid(["url"], `url must be an http or https URL, got ${url.protocol}`)
    secrets.url(url)
    for (const [name, value] of Object.entries(server.headers ?? {})) clear[name] = secrets.named(name, value)
    if (url.username !== "" || url.password !== "") {
      // fetch refuses a URL with credentials: they go as Basic authorization, unless one is given
      const basic = `Basic ${Buffer.from(`${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`).toString("base64")}`
      if (!Object.keys(clear).some((name) => name.toLowerCase() === "authorization")) clear.authorization = secrets.named("authorization", basic)
      url = new URL(url)
      url.username = ""
      url.password = ""
    }
  }
  const name = options.name ?? defaultName(server, url)
  if (typeof name !== "string" || name.length === 0) return invalid(["name"], "name must be a non-empty string")
  const maxResultBytes = options.maxResultBytes ?? defaults.maxResultBytes
  if (!Number.isSafeInteger(maxResultBytes) || maxResultBytes <= 0) {
    return invalid(["maxResultBytes"], `maxResultBytes must be a positive whole number of bytes, got ${String(options.maxResultBytes)}`)
  }
  return Either.flatMap(durationOf("timeout", options.timeout, defaults.timeout), (timeoutMillis) =>
    Either.map(durationOf("connectTimeout", options.connectTimeout, defaults.connectTimeout), (connectTimeoutMillis): Settings => ({
      name,
      server,
      secrets,
      clear,
      url,
      timeoutMillis,
      connectTimeoutMillis,
      maxResultBytes,
      maxMessageBytes: 4 * maxResultBytes + 1024 * 1024
    })))
}

/** A toolkit's options checked: an allow-list of strings, a prefix of name characters. */
export const toolkitOptionsOf = (options: Mcp.ToolkitOptions = {}): Either.Either<{ readonly allow: ReadonlySet<string> | undefined; readonly prefix: string }, ConfigError.ConfigError> => {
  if (options.allow !== undefined && (!Array.isArray(options.allow) || options.allow.some((name) => typeof name !== "string"))) {
    return invalid(["allow"], "allow must be an array of tool names")
  }
  const prefix = options.prefix ?? ""
  if (typeof prefix !== "string" || !/^[A-Za-z0-9_-]*$/.test(prefix) || prefix.length > 32) {
    return invalid(["prefix"], "prefix must be at most 32 letters, digits, _ or -")
  }
  return Either.right({ allow: options.allow === undefined ? undefined : new Set(options.allow), prefix })
}
