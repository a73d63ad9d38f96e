/**
 * What the Redis stores share that does not need ioredis: the error a layer fails with and
 * the URL masking. The options are `effect-llm/Redis`'s contract (`Redis.RedisOptions`).
 */
import * as Schema from "effect/Schema"

/**
 * Redis could not be reached when the layer was built (or the url is malformed): the
 * layer fails with it. Later failures are `StoreUnavailableError`s. The URL is reported
 * without its password.
 */
export class RedisError extends Schema.TaggedError<RedisError>()("RedisError", {
  message: Schema.String,
  url: Schema.String,
  operation: Schema.String
}) {}

/**
 * What a failed Redis command says, for a log line or an error: ioredis' own message (a
 * refused connection, a closed one, a server error), with the URL's password masked should
 * it ever appear. Never a stack, never a command's arguments.
 */
export const describeFailure = (cause: unknown, url: string): string => {
  const message = cause instanceof Error ? cause.message : typeof cause === "string" ? cause : "unknown error"
  let password = ""
  try {
    password = decodeURIComponent(new URL(url).password)
  } catch {
    // no password to mask
  }
  return password.length > 0 ? message.split(password).join("***") : message
}

/** The URL with any password masked, for errors. */
export const safeUrl = (url: string): string => {
  try {
    const parsed = new URL(url)
    if (parsed.password !== "") parsed.password = "***"
    return parsed.toString()
  } catch {
    return "<invalid url>"
  }
}
