/**
 * Typed errors. One `Schema.TaggedError` class for each way a call can fail; each
 * carries `provider`, `model`, a human `message`, and a `retryable` flag that `Retry`
 * reads. No error ever contains an API key: messages are built from status codes and
 * provider error bodies, never from requests.
 *
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"

const common = {
  provider: Schema.String,
  model: Schema.String,
  message: Schema.String
}

const retryableDefault = (value: boolean) => Schema.optionalWith(Schema.Boolean, { default: () => value })

/** HTTP status, when the error came from a response. */
const status = Schema.optional(Schema.Number)

/** @since 0.1.0 @category errors */
export class AuthenticationError extends Schema.TaggedError<AuthenticationError>()("AuthenticationError", {
  ...common,
  status,
  retryable: retryableDefault(false)
}) {}

/** @since 0.1.0 @category errors */
export class PermissionError extends Schema.TaggedError<PermissionError>()("PermissionError", {
  ...common,
  status,
  retryable: retryableDefault(false)
}) {}

/** @since 0.1.0 @category errors */
export class QuotaExceededError extends Schema.TaggedError<QuotaExceededError>()("QuotaExceededError", {
  ...common,
  status,
  retryable: retryableDefault(false)
}) {}

/** @since 0.1.0 @category errors */
export class RateLimitError extends Schema.TaggedError<RateLimitError>()("RateLimitError", {
  ...common,
  status,
  retryAfter: Schema.optional(Schema.DurationFromSelf),
  retryable: retryableDefault(true)
}) {}

/** @since 0.1.0 @category errors */
export class InvalidRequestError extends Schema.TaggedError<InvalidRequestError>()("InvalidRequestError", {
  ...common,
  status,
  retryable: retryableDefault(false)
}) {}

/** @since 0.1.0 @category errors */
export class ContextLengthError extends Schema.TaggedError<ContextLengthError>()("ContextLengthError", {
  ...common,
  status,
  retryable: retryableDefault(false)
}) {}

/** @since 0.1.0 @category errors */
export class ContentFilterError extends Schema.TaggedError<ContentFilterError>()("ContentFilterError", {
  ...common,
  status,
  retryable: retryableDefault(false)
}) {}

/** @since 0.1.0 @category errors */
export class ServerError extends Schema.TaggedError<ServerError>()("ServerError", {
  ...common,
  status: Schema.Number,
  /** The server's `retry-after` (a 503 or 529 may send one); `Retry` never retries sooner. */
  retryAfter: Schema.optional(Schema.DurationFromSelf),
  retryable: retryableDefault(true)
}) {}

/** @since 0.1.0 @category errors */
export const TimeoutPhase = Schema.Literal("request", "firstToken", "idle", "server")
/** @since 0.1.0 @category errors */
export type TimeoutPhase = typeof TimeoutPhase.Type

/** @since 0.1.0 @category errors */
export class TimeoutError extends Schema.TaggedError<TimeoutError>()("TimeoutError", {
  ...common,
  phase: TimeoutPhase,
  retryable: retryableDefault(true)
}) {}

/** @since 0.1.0 @category errors */
export class NetworkError extends Schema.TaggedError<NetworkError>()("NetworkError", {
  ...common,
  retryable: retryableDefault(true)
}) {}

/**
 * A stream failed. `partial` is true when events were already delivered to the caller:
 * then `partialText` holds the text received so far and the stream must not be retried
 * or fallen back transparently.
 * @since 0.1.0 @category errors
 */
export class StreamError extends Schema.TaggedError<StreamError>()("StreamError", {
  ...common,
  partial: Schema.Boolean,
  partialText: Schema.optional(Schema.String),
  retryable: retryableDefault(true)
}) {}

/** @since 0.1.0 @category errors */
export class MalformedResponseError extends Schema.TaggedError<MalformedResponseError>()("MalformedResponseError", {
  ...common,
  status,
  /** At most 200 characters of the offending body. */
  excerpt: Schema.String,
  retryable: retryableDefault(true)
}) {}

/**
 * The reply, or one event of a stream, was larger than the configured cap (`maxResponseBytes`,
 * `maxEventBytes`). Not retryable: asking again would download it again.
 * @since 0.1.0 @category errors
 */
export class ResponseTooLargeError extends Schema.TaggedError<ResponseTooLargeError>()("ResponseTooLargeError", {
  ...common,
  status,
  /** What was capped: the whole JSON body, or one stream event. */
  part: Schema.Literal("body", "event"),
  /** The cap, in bytes. */
  limit: Schema.Number,
  retryable: retryableDefault(false)
}) {}

/**
 * A shared store (Redis) behind a key pool, rate limiter, cache or budget did not answer in
 * time or failed. Retryable: the connection reconnects on its own. Nothing is admitted
 * while the store is out, so an outage never over-admits.
 * @since 0.1.0 @category errors
 */
export class StoreUnavailableError extends Schema.TaggedError<StoreUnavailableError>()("StoreUnavailableError", {
  ...common,
  /** Which store: `KeyPool`, `RateLimiter`, `ResponseCache`, … */
  store: Schema.String,
  /** The operation that failed, e.g. `keypool take`. */
  operation: Schema.String,
  retryable: retryableDefault(true)
}) {}

/** @since 0.1.0 @category errors */
export class NoKeyAvailableError extends Schema.TaggedError<NoKeyAvailableError>()("NoKeyAvailableError", {
  ...common,
  /** How long until the earliest key comes back, when one will. */
  retryAfter: Schema.optional(Schema.DurationFromSelf),
  retryable: retryableDefault(true)
}) {}

/** @since 0.1.0 @category errors */
export class RateLimitExceededError extends Schema.TaggedError<RateLimitExceededError>()("RateLimitExceededError", {
  ...common,
  retryAfter: Schema.optional(Schema.DurationFromSelf),
  retryable: retryableDefault(true)
}) {}

/** @since 0.1.0 @category errors */
export class BudgetExceededError extends Schema.TaggedError<BudgetExceededError>()("BudgetExceededError", {
  ...common,
  /** Which limit the request would cross. */
  dimension: Schema.optional(Schema.Literal("tokens", "cost", "credit")),
  limit: Schema.optional(Schema.Number),
  /** Spent (and reserved by requests in flight) in the current period. */
  spent: Schema.optional(Schema.Number),
  /** This request's estimate. */
  requested: Schema.optional(Schema.Number),
  /** How long until the period ends and the budget resets. */
  retryAfter: Schema.optional(Schema.DurationFromSelf),
  retryable: retryableDefault(false)
}) {}

/** @since 0.1.0 @category errors */
export class CircuitOpenError extends Schema.TaggedError<CircuitOpenError>()("CircuitOpenError", {
  ...common,
  retryAfter: Schema.optional(Schema.DurationFromSelf),
  retryable: retryableDefault(true)
}) {}

/**
 * `LanguageModel.generateObject` got no reply its Schema accepts, after its repair attempts:
 * `text` is the last reply, `issues` what was wrong with it, `attempts` the model calls made.
 * Not retryable: the same request would likely get the same answer; another model may not.
 * @since 0.1.0 @category errors
 */
export class StructuredOutputError extends Schema.TaggedError<StructuredOutputError>()("StructuredOutputError", {
  ...common,
  text: Schema.String,
  issues: Schema.Array(Schema.String),
  attempts: Schema.Number,
  retryable: retryableDefault(false)
}) {}

/** @since 0.1.0 @category errors */
export interface Attempt {
  readonly provider: string
  readonly model: string
  readonly error: LlmError
}

/**
 * An attempt's error is checked by its tag rather than decoded, which keeps the union
 * free of a recursive encoded type.
 * @since 0.1.0 @category errors
 */
export const Attempt = Schema.Struct({
  provider: Schema.String,
  model: Schema.String,
  error: Schema.declare((u: unknown): u is LlmError => isLlmError(u), { identifier: "LlmError" })
})

/** @since 0.1.0 @category errors */
export class AllModelsFailedError extends Schema.TaggedError<AllModelsFailedError>()("AllModelsFailedError", {
  ...common,
  attempts: Schema.Array(Attempt),
  retryable: retryableDefault(false)
}) {}

/**
 * Every error class. A new one goes here, into the `LlmError` union and into `classification`
 * below: until all three agree, nothing compiles.
 */
const classes = [
  AuthenticationError,
  PermissionError,
  QuotaExceededError,
  RateLimitError,
  InvalidRequestError,
  ContextLengthError,
  ContentFilterError,
  ServerError,
  TimeoutError,
  NetworkError,
  StreamError,
  MalformedResponseError,
  ResponseTooLargeError,
  NoKeyAvailableError,
  RateLimitExceededError,
  BudgetExceededError,
  CircuitOpenError,
  AllModelsFailedError,
  StoreUnavailableError,
  StructuredOutputError
] as const

/** @since 0.1.0 @category errors */
export type LlmError =
  | AuthenticationError
  | PermissionError
  | QuotaExceededError
  | RateLimitError
  | InvalidRequestError
  | ContextLengthError
  | ContentFilterError
  | ServerError
  | TimeoutError
  | NetworkError
  | StreamError
  | MalformedResponseError
  | ResponseTooLargeError
  | NoKeyAvailableError
  | RateLimitExceededError
  | BudgetExceededError
  | CircuitOpenError
  | AllModelsFailedError
  | StoreUnavailableError
  | StructuredOutputError

// the union above (written out: `AllModelsFailedError` refers to it) and `classes` list the same kinds
type ClassTag = (typeof classes)[number]["_tag"]
const sameKinds: [ClassTag] extends [LlmError["_tag"]] ? ([LlmError["_tag"]] extends [ClassTag] ? true : never) : never = true
void sameKinds

/** @since 0.1.0 @category errors */
export const LlmError = Schema.Union(...classes)

/** @since 0.1.0 @category errors */
export type Tag = LlmError["_tag"]

const tags: ReadonlySet<string> = new Set(classes.map((c) => c._tag))

/** @since 0.1.0 @category guards */
export const isLlmError = (u: unknown): u is LlmError =>
  typeof u === "object" && u !== null && "_tag" in u && tags.has((u as { _tag: string })._tag)

/**
 * How the library treats an error of a kind, beyond its `retryable` flag.
 * @since 0.1.0 @category classification
 */
export interface Classification {
  /**
   * What it says about the key that got it, for `KeyPool.report`: cool it down, disable it,
   * disable it until the quota resets, count a failure, or nothing (not about a key).
   */
  readonly key: "rateLimited" | "rejected" | "quotaExceeded" | "failure" | "none"
  /** Whether another key might serve at once (an immediate re-try on another key). */
  readonly anotherKey: boolean
  /** What a `CircuitBreaker` counts it as by default. */
  readonly breaker: "failure" | "success" | "ignore"
  /** Whether `Fallback` moves on to the next model by default. */
  readonly fallback: "always" | "never" | "ifRetryable" | "ifNotPartial"
  /**
   * Whether the model was unavailable rather than refusing this request, so that
   * `ResponseCache`'s degraded mode may answer with a stale stored reply. Never for the
   * caller's own errors (an invalid request, a filtered one, a budget) nor after output began.
   */
  readonly stale: "always" | "never" | "ifNotPartial"
}

/**
 * The classification of every error kind, in one place; each consumer reads its column.
 * @since 0.1.0 @category classification
 */
export const classification: { readonly [K in Tag]: Classification } = {
  AuthenticationError: { key: "rejected", anotherKey: true, breaker: "success", fallback: "always", stale: "always" },
  PermissionError: { key: "rejected", anotherKey: true, breaker: "success", fallback: "always", stale: "always" },
  QuotaExceededError: { key: "quotaExceeded", anotherKey: true, breaker: "success", fallback: "always", stale: "always" },
  RateLimitError: { key: "rateLimited", anotherKey: true, breaker: "ignore", fallback: "always", stale: "always" },
  // a caller's own mistake: another model would refuse it too, unless the server said it may pass
  InvalidRequestError: { key: "failure", anotherKey: false, breaker: "success", fallback: "ifRetryable", stale: "never" },
  ContextLengthError: { key: "failure", anotherKey: false, breaker: "success", fallback: "always", stale: "never" },
  ContentFilterError: { key: "failure", anotherKey: false, breaker: "success", fallback: "never", stale: "never" },
  ServerError: { key: "failure", anotherKey: false, breaker: "failure", fallback: "always", stale: "always" },
  TimeoutError: { key: "failure", anotherKey: false, breaker: "failure", fallback: "always", stale: "always" },
  NetworkError: { key: "failure", anotherKey: false, breaker: "failure", fallback: "always", stale: "always" },
  // after output began, neither re-tried nor fallen back: the caller would see a repeated prefix
  StreamError: { key: "failure", anotherKey: false, breaker: "failure", fallback: "ifNotPartial", stale: "ifNotPartial" },
  MalformedResponseError: { key: "failure", anotherKey: false, breaker: "failure", fallback: "always", stale: "always" },
  ResponseTooLargeError: { key: "failure", anotherKey: false, breaker: "failure", fallback: "always", stale: "always" },
  NoKeyAvailableError: { key: "none", anotherKey: false, breaker: "ignore", fallback: "always", stale: "always" },
  RateLimitExceededError: { key: "none", anotherKey: false, breaker: "ignore", fallback: "always", stale: "always" },
  BudgetExceededError: { key: "none", anotherKey: false, breaker: "ignore", fallback: "never", stale: "never" },
  CircuitOpenError: { key: "none", anotherKey: false, breaker: "ignore", fallback: "always", stale: "always" },
  AllModelsFailedError: { key: "none", anotherKey: false, breaker: "ignore", fallback: "always", stale: "always" },
  StoreUnavailableError: { key: "none", anotherKey: false, breaker: "ignore", fallback: "always", stale: "always" },
  // the provider answered (the key and the breaker see a success); another model may follow the schema
  StructuredOutputError: { key: "none", anotherKey: false, breaker: "success", fallback: "always", stale: "never" }
}

/**
 * The classification of an error.
 * @since 0.1.0 @category classification
 */
export const classify = (error: LlmError): Classification => classification[error._tag]

/** @since 0.1.0 @category guards */
export const isRetryable = (error: LlmError): boolean => error.retryable

/**
 * A short excerpt of a body for error messages; bodies never hold keys, requests do.
 * @since 0.1.0 @category utils
 */
export const excerptOf = (body: string, max = 200): string => (body.length <= max ? body : body.slice(0, max) + "…")
