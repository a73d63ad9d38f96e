/**
 * What a provider's calls share once its layer is built: the transport, the key pool, the
 * limiter, auth, the deadlines and size caps, and the errors of the layers below HTTP.
 */
import * as Headers from "@effect/platform/Headers"
import * as HttpClient from "@effect/platform/HttpClient"
import * as ConfigError from "effect/ConfigError"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as FiberRef from "effect/FiberRef"
import * as Redacted from "effect/Redacted"
import * as KeyPool from "../../KeyPool.js"
import * as Err from "../../LlmError.js"
import * as RateLimiter from "../../RateLimiter.js"
import * as Usage from "../../Usage.js"
import { makeHttpClient } from "../transport/httpClient.js"
import { isViaHttpClient, type Service as Transport, Transport as TransportRef, type TransportFailure } from "../transport/types.js"

/** Everything a provider adapter needs at run time, resolved once when its layer builds. */
export interface Endpoint {
  readonly provider: string
  /** The `Transport` in context, or (its default) one over the provided `HttpClient`. */
  readonly transport: Transport
  readonly pool: KeyPool.Service
  readonly limiter: RateLimiter.Service
  /** Auth headers for a leased key; keyless leases get none. */
  readonly auth: (key: Redacted.Redacted<string>) => Record<string, string>
  readonly headers: Record<string, string>
  /** The total for one JSON call. */
  readonly timeout: Duration.Duration
  /** Whether the options set `timeout` (then it bounds waits for admission and keys too). */
  readonly timeoutGiven: boolean
  /** The total for one stream, body included. */
  readonly streamTimeout: Duration.Duration
  /** Records every response's usage; undefined under the default tracker, which records nothing. */
  readonly usage?: Usage.Service | undefined
  /** Header names the HTTP client's spans must not show: the defaults plus this provider's auth headers. */
  readonly redactedHeaders: ReadonlyArray<string | RegExp>
  /** Streams: from the request's start to its first event. */
  readonly firstTokenTimeout: Duration.Duration
  /** Streams: the longest wait for the next event; comments, pings and empty deltas do not count. */
  readonly idleTimeout: Duration.Duration
  /** The largest JSON body read, in bytes. */
  readonly maxResponseBytes: number
  /** The largest single stream event (an SSE event or an NDJSON line), in characters of decoded text. */
  readonly maxEventBytes: number
}

/**
 * The deadlines and size caps a provider gets when its options name none. The totals and the
 * first event follow the official SDKs' 10 minutes; a stream may run longer (long outputs), but
 * not forever, and may not fall silent for minutes between events.
 */
export const defaults = {
  timeout: Duration.minutes(10),
  streamTimeout: Duration.minutes(60),
  firstTokenTimeout: Duration.minutes(10),
  idleTimeout: Duration.minutes(5),
  maxResponseBytes: 64 * 1024 * 1024,
  maxEventBytes: 16 * 1024 * 1024
} as const

/** One outgoing call, already serialised. */
export interface Outgoing {
  readonly url: string
  readonly model: string
  readonly body: string
  readonly estimatedTokens: number
  /** Extra headers for this call (e.g. `accept: text/event-stream`). */
  readonly headers?: Record<string, string>
}

/**
 * The endpoint of a provider, read once from the context when its layer builds: what it
 * requires (`HttpClient`, `KeyPool`, `RateLimiter`) and the references `Transport` and
 * `Usage.UsageTracker`. An invalid size cap fails with a `ConfigError` naming it.
 */
export const resolveEndpoint = (options: {
  readonly provider: string
  readonly auth: Endpoint["auth"]
  readonly headers?: Record<string, string> | undefined
  readonly timeout?: Duration.DurationInput | undefined
  readonly firstTokenTimeout?: Duration.DurationInput | undefined
  readonly idleTimeout?: Duration.DurationInput | undefined
  readonly maxResponseBytes?: number | undefined
  readonly maxEventBytes?: number | undefined
}) =>
  Effect.gen(function* () {
    const maxResponseBytes = yield* sizeCap("maxResponseBytes", options.maxResponseBytes, defaults.maxResponseBytes)
    const maxEventBytes = yield* sizeCap("maxEventBytes", options.maxEventBytes, defaults.maxEventBytes)
    const http = yield* HttpClient.HttpClient
    const pool = yield* KeyPool.KeyPool
    const limiter = yield* RateLimiter.RateLimiter
    const tracker = yield* Usage.UsageTracker
    // @effect/platform hides authorization and x-api-key in its spans; x-goog-api-key and
    // the like must be added, or the key would show up as a span attribute
    const authNames = Object.keys(options.auth(Redacted.make("probe"))).map((name) => name.toLowerCase())
    const redactedHeaders = [...(yield* FiberRef.get(Headers.currentRedactedNames)), ...authNames, /api[-_]?key|secret/i]
    const chosen = yield* TransportRef
    const transport = isViaHttpClient(chosen) ? makeHttpClient(http) : chosen
    const endpoint: Endpoint = {
      provider: options.provider,
      transport,
      pool,
      limiter,
      auth: options.auth,
      headers: options.headers ?? {},
      // one `timeout` bounds both kinds of call when given; unset, each has its own default
      timeout: options.timeout === undefined ? defaults.timeout : Duration.decode(options.timeout),
      timeoutGiven: options.timeout !== undefined,
      streamTimeout: options.timeout === undefined ? defaults.streamTimeout : Duration.decode(options.timeout),
      // the default records nothing: leaving it out spares every call a step
      usage: tracker === Usage.untracked ? undefined : tracker,
      redactedHeaders,
      firstTokenTimeout: options.firstTokenTimeout === undefined
        ? defaults.firstTokenTimeout
        : Duration.decode(options.firstTokenTimeout),
      idleTimeout: options.idleTimeout === undefined ? defaults.idleTimeout : Duration.decode(options.idleTimeout),
      maxResponseBytes,
      maxEventBytes
    }
    return endpoint
  })

const sizeCap = (name: string, value: number | undefined, fallback: number): Either.Either<number, ConfigError.ConfigError> => {
  if (value === undefined) return Either.right(fallback)
  if (!(Number.isFinite(value) && value >= 1)) {
    return Either.left(ConfigError.InvalidData([name], `${name} must be a positive number of bytes, got ${String(value)}`))
  }
  return Either.right(Math.floor(value))
}

export const networkError = (endpoint: Endpoint, model: string, cause: TransportFailure): Err.LlmError =>
  cause.reason === "tooLarge"
    ? tooLarge(endpoint, model, "body", cause.limit ?? endpoint.maxResponseBytes)
    : new Err.NetworkError({
      provider: endpoint.provider,
      model,
      message: `${endpoint.provider} connection failed: ${cause.description}`
    })

export const tooLarge = (endpoint: Endpoint, model: string, part: "body" | "event", limit: number) =>
  new Err.ResponseTooLargeError({
    provider: endpoint.provider,
    model,
    part,
    limit,
    message: part === "body"
      ? `${endpoint.provider} sent a reply larger than maxResponseBytes (${limit} bytes)`
      : `${endpoint.provider} sent a stream event larger than maxEventBytes (${limit} characters)`
  })

