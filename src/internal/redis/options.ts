/**
 * What the Redis stores share that does not need ioredis: the options, the error a layer
 * fails with, and the URL masking. Kept apart from the connection so that `KeyPool`,
 * `RateLimiter` and the index can name `RedisError` without loading ioredis.
 */
import type * as Duration from "effect/Duration"
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

/** `{ url, prefix?, commandTimeout? }`: what every Redis-backed layer takes. */
export interface RedisOptions {
  /** Like `redis://127.0.0.1:6379/0`. */
  readonly url: string
  /** Prepended to every key this layer writes. Default `effect-llm:`. */
  readonly prefix?: string | undefined
  /**
   * The longest wait for one Redis command. A command that needs its answer (leasing a
   * key, admitting a request, reading status) then fails with `StoreUnavailableError`;
   * bookkeeping is given up. Default 1 second.
   */
  readonly commandTimeout?: Duration.DurationInput | undefined
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
