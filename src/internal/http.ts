/**
 * The request path shared by every provider adapter: rate-limit admission, a key lease,
 * the HTTP exchange, error mapping, outcome reporting, and stream framing. Providers only
 * build bodies and parse payloads.
 */
import * as Headers from "@effect/platform/Headers"
import * as HttpClient from "@effect/platform/HttpClient"
import * as Channel from "effect/Channel"
import * as Chunk from "effect/Chunk"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Exit from "effect/Exit"
import * as FiberRef from "effect/FiberRef"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { createParser } from "eventsource-parser"
import * as KeyPool from "../KeyPool.js"
import * as Err from "../LlmError.js"
import type { ChatResponse, StreamEvent } from "../Message.js"
import * as RateLimiter from "../RateLimiter.js"
import { UsageTracker } from "../Usage.js"
import { embeddedError, fromResponse, malformed, redactSecret, startsLikeErrorBody, withFields } from "./errors.js"
import { outcomeOf } from "./keyPool.js"
import type { Watch } from "./partial.js"
import * as Telemetry from "./telemetry.js"
import {
  makeHttpClient,
  type Service as Transport,
  type StreamReply,
  TransportFailure,
  type TransportRequest
} from "./transport.js"
import { Transport as TransportTag } from "../Transport.js"

/** Everything a provider adapter needs at run time, resolved once when its layer builds. */
export interface Endpoint {
  readonly provider: string
  /** The provided `Transport`, or one over the provided `HttpClient`. */
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
  /** Records every response's usage when a `Usage` layer was present at build time. */
  readonly usage?: UsageTracker["Type"] | undefined
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
    const http = yield* HttpClient.HttpClient
    const pool = yield* KeyPool.KeyPool
    const limiter = yield* RateLimiter.RateLimiter
    const usage = Option.getOrUndefined(yield* Effect.serviceOption(UsageTracker))
    // @effect/platform hides authorization and x-api-key in its spans; x-goog-api-key and
    // the like must be added, or the key would show up as a span attribute
    const authNames = Object.keys(options.auth(Redacted.make("probe"))).map((name) => name.toLowerCase())
    const redactedHeaders = [...(yield* FiberRef.get(Headers.currentRedactedNames)), ...authNames, /api[-_]?key|secret/i]
    const transport = Option.getOrElse(yield* Effect.serviceOption(TransportTag), () => makeHttpClient(http))
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
      usage,
      redactedHeaders,
      firstTokenTimeout: options.firstTokenTimeout === undefined
        ? defaults.firstTokenTimeout
        : Duration.decode(options.firstTokenTimeout),
      idleTimeout: options.idleTimeout === undefined ? defaults.idleTimeout : Duration.decode(options.idleTimeout),
      maxResponseBytes: sizeCap("maxResponseBytes", options.maxResponseBytes, defaults.maxResponseBytes),
      maxEventBytes: sizeCap("maxEventBytes", options.maxEventBytes, defaults.maxEventBytes)
    }
    return endpoint
  })

const sizeCap = (name: string, value: number | undefined, fallback: number): number => {
  if (value === undefined) return fallback
  if (!(Number.isFinite(value) && value >= 1)) throw new RangeError(`${name} must be a positive number of bytes, got ${String(value)}`)
  return Math.floor(value)
}

const networkError = (endpoint: Endpoint, model: string, cause: TransportFailure): Err.LlmError =>
  cause.reason === "tooLarge"
    ? tooLarge(endpoint, model, "body", cause.limit ?? endpoint.maxResponseBytes)
    : new Err.NetworkError({
      provider: endpoint.provider,
      model,
      message: `${endpoint.provider} connection failed: ${cause.description}`
    })

const tooLarge = (endpoint: Endpoint, model: string, part: "body" | "event", limit: number) =>
  new Err.ResponseTooLargeError({
    provider: endpoint.provider,
    model,
    part,
    limit,
    message: part === "body"
      ? `${endpoint.provider} sent a reply larger than maxResponseBytes (${limit} bytes)`
      : `${endpoint.provider} sent a stream event larger than maxEventBytes (${limit} characters)`
  })

const requestFor = (endpoint: Endpoint, out: Outgoing, lease: KeyPool.Lease) => {
  const headers: Record<string, string> = { "content-type": "application/json", ...endpoint.headers, ...out.headers }
  if (lease.key !== undefined) Object.assign(headers, endpoint.auth(lease.key))
  return { url: out.url, headers, body: out.body, secretHeaders: endpoint.redactedHeaders, maxBodyBytes: endpoint.maxResponseBytes }
}

const withoutRetryAfter = (headers: Readonly<Record<string, string | undefined>>) => {
  const { "retry-after": _seconds, "retry-after-ms": _millis, ...rest } = headers
  return rest
}

const isKeySpecific = (error: Err.LlmError) =>
  error._tag === "RateLimitError" || error._tag === "AuthenticationError" ||
  error._tag === "PermissionError" || error._tag === "QuotaExceededError"

/**
 * Admits the request with the limiter, then leases a key in the current scope. A wait for
 * admission or a key is bounded by the call's budget when the caller set a `timeout` (the
 * defaults guard the network, where stalls happen; a wait here is bounded by the limits).
 */
const admitAndLease = (endpoint: Endpoint, out: Outgoing, tried: Tried, budget: Budget) => {
  const admitted = Effect.zipRight(
    Telemetry.timeAdmission(endpoint.limiter.admit({ requests: 1, tokens: out.estimatedTokens, reattempt: tried.last !== undefined })),
    Effect.flatMap(endpoint.pool.acquire, (lease) => {
      // an immediate re-try goes to another key: one this call already tried ends it
      if (tried.keys.has(lease.keyId) && tried.last !== undefined) return Effect.fail(tried.last)
      tried.keys.add(lease.keyId)
      tried.lastKey = lease.keyId
      return Effect.as(Telemetry.countLease(endpoint.provider), lease)
    })
  )
  if (!endpoint.timeoutGiven) return admitted
  return Effect.suspend(() => {
    const ms = budget.left()
    return ms === Infinity ? admitted : Effect.timeoutFail(admitted, { duration: Math.max(0, ms), onTimeout: budget.timeout })
  })
}

/**
 * Feeds a reply's head to the limiter and, for a status other than 2xx, reads the body and
 * fails with the typed error, reported against the key.
 */
const checkHead = (
  endpoint: Endpoint,
  out: Outgoing,
  lease: KeyPool.Lease,
  status: number,
  headers: Readonly<Record<string, string>>,
  body: Effect.Effect<string>
): Effect.Effect<void, Err.LlmError> => {
  // A 429's retry-after is about the key that got it, which the pool cools down. The
  // limiter pauses everyone only when no other key could serve: backoff is for when
  // every key is busy.
  const observed = status === 429
    ? Effect.flatMap(endpoint.pool.hasHealthyKey(lease.keyId), (anotherKey) =>
      endpoint.limiter.observe(anotherKey ? withoutRetryAfter(headers) : headers))
    : endpoint.limiter.observe(headers)
  if (status < 300) return observed
  return Effect.gen(function* () {
    yield* observed
    const text = yield* body
    const now = yield* Clock.currentTimeMillis
    const error = redactSecret(
      fromResponse({ provider: endpoint.provider, model: out.model, status, headers, body: text, now }),
      lease.key
    )
    yield* endpoint.pool.report(lease.keyId, outcomeOf(error))
    return yield* Effect.fail(error)
  })
}

/** The remaining time of a call, in millis (`Infinity` for none), and the error when it passes. */
interface Budget {
  readonly left: () => number
  readonly timeout: () => Err.TimeoutError
}

/** A transport failure as the typed error: the deadline's own, a size cap, or a network failure. */
const transportError = (endpoint: Endpoint, model: string, budget: Budget, cause: TransportFailure): Err.LlmError =>
  cause.reason === "timeout" ? budget.timeout() : networkError(endpoint, model, cause)

const timedOutFailure = new TransportFailure("timed out", "timeout")

/** `send`, bounded by the budget left: by the transport's own timer, or, for a transport without one, by the fiber. */
const sendWithin = <Reply, R>(
  endpoint: Endpoint,
  send: (request: TransportRequest) => Effect.Effect<Reply, TransportFailure, R>,
  request: TransportRequest,
  budget: Budget
): Effect.Effect<Reply, TransportFailure, R> => {
  const ms = budget.left()
  if (ms === Infinity) return send(request)
  if (endpoint.transport.timeouts === true) return send({ ...request, timeoutMs: ms })
  return Effect.timeoutFail(send(request), { duration: Math.max(0, ms), onTimeout: () => timedOutFailure })
}

/**
 * Admits, leases, and sends with `send` within the budget; a reply other than 2xx becomes
 * its typed error (its body read with `bodyOf`). Resolves to the 2xx reply and the lease.
 */
const exchange = <Reply extends { readonly status: number; readonly headers: Readonly<Record<string, string>> }, R>(
  endpoint: Endpoint,
  out: Outgoing,
  tried: Tried,
  budget: Budget,
  send: (request: TransportRequest) => Effect.Effect<Reply, TransportFailure, R>,
  bodyOf: (reply: Reply) => Effect.Effect<string>
) =>
  Effect.flatMap(admitAndLease(endpoint, out, tried, budget), (lease) =>
    sendWithin(endpoint, send, requestFor(endpoint, out, lease), budget).pipe(
      Effect.mapError((cause) => transportError(endpoint, out.model, budget, cause)),
      // a connection that failed counts against the key; a deadline is the call's, not the key's
      Effect.tapError((error) => (error._tag === "TimeoutError" ? Effect.void : endpoint.pool.report(lease.keyId, { _tag: "Failure" }))),
      Effect.flatMap((reply) =>
        Effect.as(checkHead(endpoint, out, lease, reply.status, reply.headers, bodyOf(reply)), [reply, lease] as const)
      )
    ))

/** An error reply's body is read this far at most: its message and type are at the start. */
const ERROR_BODY_CHARS = 1024 * 1024

/** What is left in a streamed body, as text, up to `ERROR_BODY_CHARS`, within the budget. */
const readRest = (reply: StreamReply, budget: Budget): Effect.Effect<string> =>
  Effect.suspend(() => {
    const decoder = new TextDecoder()
    let text = ""
    const pull = Effect.suspend(() => {
      const ms = budget.left()
      if (ms === Infinity) return reply.pull
      if (reply.pullWithin !== undefined) return reply.pullWithin(ms)
      return Effect.timeoutFail(reply.pull, { duration: Math.max(0, ms), onTimeout: () => timedOutFailure })
    })
    const loop: Effect.Effect<string, TransportFailure> = Effect.flatMap(pull, (pieces) => {
      if (pieces === undefined) return Effect.succeed(text + decoder.decode())
      for (const piece of pieces) text += decoder.decode(piece, { stream: true })
      return text.length > ERROR_BODY_CHARS ? Effect.succeed(text.slice(0, ERROR_BODY_CHARS)) : loop
    })
    return Effect.orElseSucceed(loop, () => text)
  })

/** Sends for the whole reply; a 2xx reply's body comes back. */
const exchangeText = (endpoint: Endpoint, out: Outgoing, tried: Tried, budget: Budget) =>
  exchange(endpoint, out, tried, budget, endpoint.transport.text, (reply) => Effect.succeed(reply.body))

/**
 * Sends and resolves at a 2xx reply's head; the body stays open in the current scope. A 2xx
 * reply that is JSON where a stream was asked for is read whole: gateways answer a stream
 * request with `200` and an error object.
 */
const exchangeStream = (endpoint: Endpoint, out: Outgoing, tried: Tried, budget: Budget) =>
  Effect.flatMap(
    exchange(endpoint, out, tried, budget, endpoint.transport.stream, (reply) => readRest(reply, budget)),
    ([reply, lease]) => {
      if (!(reply.headers["content-type"] ?? "").includes("application/json")) return Effect.succeed([reply, lease] as const)
      return Effect.flatMap(Effect.zip(readRest(reply, budget), Clock.currentTimeMillis), ([body, now]) => {
        const embedded = errorInBody(endpoint, out, lease, reply.headers, body, now, true)
        if (embedded !== undefined) return embedded
        // not an error: frame it as it is (a server that labels its stream as JSON)
        let sent = false
        const replay: StreamReply = {
          status: reply.status,
          headers: reply.headers,
          pull: Effect.sync(() => (sent ? undefined : ((sent = true), [new TextEncoder().encode(body)])))
        }
        return Effect.succeed([replay, lease] as const)
      })
    }
  )

/**
 * A 2xx body that is an error object (gateways send rate limits and outages that way) as
 * the typed error the same error under its HTTP status would be, reported against the key;
 * undefined for any other body. `decodeFailed` says the provider's decoder refused the body;
 * otherwise only a body that starts like an error object is parsed a second time.
 */
const errorInBody = (
  endpoint: Endpoint,
  out: Outgoing,
  lease: KeyPool.Lease,
  headers: Readonly<Record<string, string>>,
  body: string,
  now: number,
  decodeFailed: boolean
): Effect.Effect<never, Err.LlmError> | undefined => {
  if (!decodeFailed && !startsLikeErrorBody(body)) return undefined
  const error = embeddedError({ provider: endpoint.provider, model: out.model, headers, body, now })
  if (error === undefined) return undefined
  const safe = redactSecret(error, lease.key)
  return Effect.zipRight(endpoint.pool.report(lease.keyId, outcomeOf(safe)), Effect.fail(safe))
}

/** The keys one call has leased, and why the last attempt failed. */
interface Tried {
  readonly keys: Set<string>
  lastKey: string | undefined
  last: Err.LlmError | undefined
}

/** A safety bound on immediate re-tries, whatever the pool's size. */
const MAX_KEYS_PER_CALL = 9

/**
 * Runs `attempt` again at once, on another key, when it failed for a reason specific to
 * its key (429, 401, 403, quota) and another healthy key exists. Each key serves a call at
 * most once, so a call makes at most one immediate re-try per other key. Backoff is `Retry`'s.
 */
const onAnotherKey = <A, R>(
  endpoint: Endpoint,
  attempt: (tried: Tried) => Effect.Effect<A, Err.LlmError, R>
): Effect.Effect<A, Err.LlmError, R> =>
  Effect.suspend(() => {
    const tried: Tried = { keys: new Set(), lastKey: undefined, last: undefined }
    const loop: Effect.Effect<A, Err.LlmError, R> = Effect.catchIf(
      Effect.suspend(() => attempt(tried)),
      (error) => isKeySpecific(error) && tried.keys.size < MAX_KEYS_PER_CALL && error !== tried.last,
      (error) => {
        tried.last = error
        return Effect.flatMap(endpoint.pool.hasHealthyKey(tried.lastKey), (another) => (another ? loop : Effect.fail(error)))
      }
    )
    return loop
  })

/** A chat JSON exchange, traced and measured: `decode` turns a 2xx body into a response or a typed error. */
export const sendJson = (
  endpoint: Endpoint,
  out: Outgoing,
  decode: (body: string, status: number) => ChatResponse | Err.LlmError
): Effect.Effect<ChatResponse, Err.LlmError> => {
  const usage = endpoint.usage
  return Telemetry.chat(
    endpoint.provider,
    out.model,
    sendJsonAs(
      endpoint,
      out,
      decode,
      (response) => response.usage.totalTokens,
      usage === undefined ? undefined : (response) => usage.record(endpoint.provider, out.model, response.usage)
    )
  )
}

/** The budget of one JSON call: its whole `timeout`, from now. */
const jsonBudget = (endpoint: Endpoint, model: string, clock: Clock.Clock): Budget => {
  const total = endpoint.timeout
  if (!Duration.isFinite(total)) return unlimited
  const ms = Duration.toMillis(total)
  const end = clock.unsafeCurrentTimeMillis() + ms
  return {
    left: () => end - clock.unsafeCurrentTimeMillis(),
    timeout: () =>
      new Err.TimeoutError({
        provider: endpoint.provider,
        model,
        phase: "request",
        message: `${endpoint.provider} request timed out after ${Duration.format(total)}`
      })
  }
}

const unlimited: Budget = {
  left: () => Infinity,
  timeout: () => {
    throw new Error("unreachable: an unlimited budget never times out")
  }
}

/**
 * A JSON exchange for any result (chat, embeddings): `decode` turns a 2xx body into a
 * result or a typed error, `tokensOf` gives the tokens to settle with the limiter, and
 * `onSuccess` runs after the key is reported healthy.
 */
export const sendJsonAs = <A>(
  endpoint: Endpoint,
  out: Outgoing,
  decode: (body: string, status: number) => A | Err.LlmError,
  tokensOf: (result: A) => number,
  onSuccess?: (result: A) => Effect.Effect<void>
): Effect.Effect<A, Err.LlmError> =>
  Effect.clockWith((clock) => {
    const budget = jsonBudget(endpoint, out.model, clock)
    return onAnotherKey(
      endpoint,
      (tried) =>
        Effect.scoped(
          Effect.flatMap(exchangeText(endpoint, out, tried, budget), ([reply, lease]) => {
            const now = clock.unsafeCurrentTimeMillis()
            const early = errorInBody(endpoint, out, lease, reply.headers, reply.body, now, false)
            if (early !== undefined) return early
            const decoded = decode(reply.body, reply.status)
            if (Err.isLlmError(decoded)) {
              const embedded = errorInBody(endpoint, out, lease, reply.headers, reply.body, now, true)
              if (embedded !== undefined) return embedded
              return Effect.zipRight(
                endpoint.pool.report(lease.keyId, { _tag: "Failure" }),
                Effect.fail(redactSecret(decoded, lease.key))
              )
            }
            const settled = Effect.zipRight(
              endpoint.pool.report(lease.keyId, { _tag: "Success" }),
              endpoint.limiter.settle(tokensOf(decoded), out.estimatedTokens)
            )
            return Effect.as(onSuccess === undefined ? settled : Effect.zipRight(settled, onSuccess(decoded)), decoded)
          })
        )
    )
  })

/**
 * A provider's stream state machine. `onData` handles one frame (an SSE event, or an
 * NDJSON line) and `onEnd` flushes; both push events into `out` and may return an error
 * that ends the stream. `emittedText` is what the caller has received so far.
 */
export interface StreamParser {
  onData(data: string, event: string | undefined, out: Array<StreamEvent>): Err.LlmError | undefined
  onEnd(out: Array<StreamEvent>): Err.LlmError | undefined
  readonly emittedText: string
  readonly settledTokens: number | undefined
}

export type Framing = "sse" | "ndjson"

/** Splits decoded text into frames; the callback gets each frame's data and SSE event name. */
interface Framer {
  feed(text: string): void
  end(): void
}

type OnFrame = (data: string, event: string | undefined) => void

/** `onOversize` is told once when a single event grows past `maxChars`; framing stops there. */
const sseFramer = (onFrame: OnFrame, maxChars: number, onOversize: () => void): Framer => {
  const parser = createParser({
    onEvent: (message) => onFrame(message.data, message.event),
    onError: (error) => {
      if (error.type === "max-buffer-size-exceeded") onOversize()
    },
    maxBufferSize: maxChars
  })
  return {
    feed: (text) => parser.feed(text),
    // A final event without its blank line still counts. `reset({ consume: true })` only
    // parses the last line and never dispatches, so end the line and the event instead.
    end: () => {
      parser.feed("\n\n")
      parser.reset()
    }
  }
}

const ndjsonFramer = (onFrame: OnFrame, maxChars: number, onOversize: () => void): Framer => {
  let buffer = ""
  return {
    feed: (text) => {
      buffer += text
      let newline = buffer.indexOf("\n")
      while (newline >= 0) {
        const line = buffer.slice(0, newline).trim()
        buffer = buffer.slice(newline + 1)
        if (line.length > maxChars) return onOversize()
        if (line.length > 0) onFrame(line, undefined)
        newline = buffer.indexOf("\n")
      }
      if (buffer.length > maxChars) {
        buffer = ""
        onOversize()
      }
    },
    end: () => {
      const line = buffer.trim()
      buffer = ""
      if (line.length > 0) onFrame(line, undefined)
    }
  }
}

/** A thrown value's own words, for a malformed-response message (a parser's throw quotes no request). */
const thrown = (cause: unknown): string =>
  cause instanceof Error ? `${cause.name}: ${cause.message}` : typeof cause === "string" ? cause : "unknown error"

/**
 * Lifts an error that happens after the caller has received events into a partial
 * `StreamError`, so that nothing downstream mistakes a cut stream for a retryable one.
 */
const afterEvents = (parser: StreamParser, emitted: number, error: Err.LlmError): Err.LlmError =>
  emitted === 0 || error._tag === "StreamError"
    ? (error._tag === "StreamError" && emitted > 0 && !error.partial
      ? withFields(error, { partial: true, partialText: parser.emittedText, retryable: false })
      : error)
    : new Err.StreamError({
      provider: error.provider,
      model: error.model,
      message: `stream failed after output began: ${error.message}`,
      partial: true,
      partialText: parser.emittedText,
      retryable: false
    })

/**
 * A stream's three deadlines: the total (`timeout`), the first event (`firstTokenTimeout`,
 * counted from the start) and the wait for the next event (`idleTimeout`). `step(started)`
 * makes it the budget of the next step of the stream (opening it, or one read of the body):
 * the nearest deadline, which names the phase when it passes.
 *
 * Idle time is the time spent waiting on the provider since the last event: reads that bring
 * only comments, pings or empty deltas spend it without renewing it, and the time the consumer
 * takes between reads is not counted against the provider.
 */
const streamDeadlines = (endpoint: Endpoint, model: string, clock: Clock.Clock) => {
  const finite = (d: Duration.Duration) => (Duration.isFinite(d) ? Duration.toMillis(d) : undefined)
  const total = finite(endpoint.streamTimeout)
  const firstToken = finite(endpoint.firstTokenTimeout)
  const idle = finite(endpoint.idleTimeout)
  const start = clock.unsafeCurrentTimeMillis()
  let idleLeft = idle ?? Infinity
  let readStart = start
  let started = false
  let phase: Err.TimeoutPhase = "request"
  let configured = 0
  const budget = {
    /** The budget of the next step; `started`: events were delivered. */
    step: (delivered: boolean): Budget => {
      started = delivered
      return budget
    },
    left: (): number => {
      const now = clock.unsafeCurrentTimeMillis()
      readStart = now
      phase = "request"
      configured = total ?? 0
      let limit = total === undefined ? Infinity : start + total - now
      if (!started && firstToken !== undefined && start + firstToken - now < limit) {
        limit = start + firstToken - now
        phase = "firstToken"
        configured = firstToken
      }
      if (started && idle !== undefined && idleLeft < limit) {
        limit = idleLeft
        phase = "idle"
        configured = idle
      }
      return limit
    },
    timeout: () =>
      new Err.TimeoutError({
        provider: endpoint.provider,
        model,
        phase,
        message: `${endpoint.provider} stream timed out (${phase}) after ${Duration.format(Duration.millis(configured))}${
          started ? ", after output began" : ""
        }`,
        // events were delivered: a transparent re-try would repeat them
        retryable: !started
      }),
    /** A read ended: its wait is spent, and renewed when it brought events. */
    read: (events: boolean) => {
      if (events) idleLeft = idle ?? Infinity
      else idleLeft -= clock.unsafeCurrentTimeMillis() - readStart
    }
  }
  return budget
}

type Deadlines = ReturnType<typeof streamDeadlines>
type Events = Channel.Channel<Chunk.Chunk<StreamEvent>, unknown, Err.LlmError, unknown, void, unknown>

/**
 * A streaming exchange, traced and measured. The whole request path is one channel stage
 * (each Stream combinator costs tens of µs per stream): it owns a scope holding the lease
 * and the response until the stream ends, and the span, metrics and deadlines are kept by
 * hand inside it.
 */
export const sendStream = (
  endpoint: Endpoint,
  out: Outgoing,
  framing: Framing,
  makeParser: () => StreamParser,
  watch?: Watch
): Stream.Stream<StreamEvent, Err.LlmError> =>
  Stream.fromChannel(Channel.acquireUseRelease(
    Effect.flatMap(Telemetry.startStream(endpoint.provider, out.model), (recorder) =>
      Effect.map(Scope.make(), (scope) => ({ recorder, scope, deadlines: streamDeadlines(endpoint, out.model, recorder.clock) }))),
    ({ deadlines, recorder, scope }): Events => {
      // each attempt gets its own scope so that a failed attempt's lease is freed at once
      const attempt = (tried: Tried) =>
        Effect.flatMap(Scope.fork(scope, ExecutionStrategy.sequential), (inner) =>
          exchangeStream(endpoint, out, tried, deadlines.step(false)).pipe(
            Scope.extend(inner),
            Effect.onError((cause) => Scope.close(inner, Exit.failCause(cause)))
          ))
      const opened = Effect.withParentSpan(onAnotherKey(endpoint, attempt), recorder.span)
      return Channel.unwrap(
        Effect.flatMap(opened, ([reply, lease]) =>
          frames(endpoint, out, scope, deadlines, recorder, reply, lease, framing, makeParser(), watch))
      )
    },
    ({ recorder, scope }, exit) => Effect.zipRight(Scope.close(scope, exit), Effect.sync(() => recorder.end(exit)))
  ))

/**
 * The body's events: each read takes what arrived, frames and parses it, and writes the
 * events as one chunk. The key is reported and the limiter settled before the lease's scope
 * closes; usage is recorded when the `Finish` event goes out.
 *
 * Whatever framing or parsing throws (a frame of the wrong shape, text past the string limit)
 * ends the stream with a typed error after the events parsed before it: a throw inside a
 * channel's continuation would otherwise end the stream as if it had finished.
 */
const frames = (
  endpoint: Endpoint,
  out: Outgoing,
  scope: Scope.Scope,
  deadlines: Deadlines,
  recorder: Telemetry.StreamRecorder,
  reply: StreamReply,
  lease: KeyPool.Lease,
  framing: Framing,
  parser: StreamParser,
  watch: Watch | undefined
): Effect.Effect<Events> => {
  const decoder = new TextDecoder()
  let pending: Array<StreamEvent> = []
  let failure: Err.LlmError | undefined
  let emitted = 0
  // every batch is written before the failure that follows it, so at a failure `emitted`
  // and the parser's text are what the consumer received
  watch?.(() => ({ events: emitted, text: parser.emittedText }))
  // the provider's stream ended properly (the parser saw its end, or a Finish went out); a
  // consumer that stops before that neither succeeded nor failed with this key
  let finished = false
  let reportedFailure = false
  const fail = (error: Err.LlmError) => {
    // an error event may quote the request, and so the key
    if (failure === undefined) failure = redactSecret(error, lease.key)
  }
  const unreadable = (data: string, cause: unknown) =>
    fail(malformed(endpoint.provider, out.model, data, `a stream event could not be read (${thrown(cause)})`))
  const onFrame = (data: string, event: string | undefined) => {
    if (failure !== undefined) return
    try {
      const error = parser.onData(data, event, pending)
      if (error !== undefined) fail(error)
    } catch (cause) {
      unreadable(data, cause)
    }
  }
  const oversize = () => fail(tooLarge(endpoint, out.model, "event", endpoint.maxEventBytes))
  const framer = framing === "sse"
    ? sseFramer(onFrame, endpoint.maxEventBytes, oversize)
    : ndjsonFramer(onFrame, endpoint.maxEventBytes, oversize)
  const feed = (text: string) => {
    if (failure !== undefined) return
    try {
      framer.feed(text)
    } catch (cause) {
      unreadable(text, cause)
    }
  }
  const end = (rest: string) => {
    feed(rest)
    if (failure !== undefined) return
    try {
      framer.end()
      if (failure === undefined) {
        const error = parser.onEnd(pending)
        if (error !== undefined) fail(error)
      }
    } catch (cause) {
      unreadable("", cause)
    }
  }

  // runs before the lease's scope closes (finalizers run last-added first), however the stream ends
  const onClose = Effect.suspend(() => {
    if (!finished || reportedFailure) return Effect.void
    const reported = endpoint.pool.report(lease.keyId, { _tag: "Success" })
    return parser.settledTokens === undefined
      ? reported
      : Effect.zipRight(reported, endpoint.limiter.settle(parser.settledTokens, out.estimatedTokens))
  })
  const failed = (error: Err.LlmError) => {
    reportedFailure = true
    return Effect.zipRight(endpoint.pool.report(lease.keyId, outcomeOf(error)), Effect.fail(error))
  }

  // Writes what the parser produced; on a parser failure, writes the events before it, then
  // fails, and stops reading the body.
  const emit = (ended: boolean): Events => {
    const batch = pending
    pending = []
    const error = failure === undefined ? undefined : afterEvents(parser, emitted + batch.length, failure)
    emitted += batch.length
    deadlines.read(batch.length > 0)
    const next: Events = error !== undefined ? Channel.fromEffect(failed(error)) : ended ? Channel.void : loop
    if (error === undefined && ended) finished = true
    if (batch.length === 0) return next
    recorder.events(batch)
    const last = batch[batch.length - 1]!
    const written = Channel.zipRight(Channel.write(Chunk.unsafeFromArray(batch)), next)
    if (error !== undefined || last._tag !== "Finish") return written
    finished = true
    return endpoint.usage === undefined
      ? written
      : Channel.zipRight(Channel.fromEffect(endpoint.usage.record(endpoint.provider, out.model, last.usage)), written)
  }

  const readFailed = (error: TransportFailure) =>
    error.reason === "timeout"
      // a deadline is the stream's, not the key's: it is not reported
      ? Effect.fail(deadlines.timeout())
      // the text received may echo the key
      : failed(redactSecret(afterEvents(parser, emitted, networkError(endpoint, out.model, error)), lease.key))
  const pullWithin = reply.pullWithin
  const read = Effect.suspend(() => {
    const ms = deadlines.step(emitted > 0).left()
    const pulled = ms === Infinity
      ? reply.pull
      : pullWithin !== undefined
      ? pullWithin(ms)
      : Effect.timeoutFail(reply.pull, { duration: Math.max(0, ms), onTimeout: () => timedOutFailure })
    return Effect.catchAll(pulled, readFailed)
  })
  // fromEffect + flatMap rather than unwrap(match(…)): ~1 KB less garbage per read. Nothing
  // may throw out of the continuation (the channel would end as if the stream had finished).
  const loop: Events = Channel.flatMap(Channel.fromEffect(read), (pieces) => {
    try {
      return step(pieces)
    } catch (cause) {
      unreadable("", cause)
      return Channel.fromEffect(Effect.suspend(() => failed(afterEvents(parser, emitted, failure!))))
    }
  })
  const step = (pieces: ReadonlyArray<Uint8Array> | undefined): Events => {
    if (pieces === undefined) {
      end(decoder.decode())
      return emit(true)
    }
    // one decode and one feed per read: undici hands over one piece per chunk of the
    // chunked encoding, often one per SSE event, and feeding them one by one costs more
    // than joining them
    let text: string
    try {
      text = decoder.decode(pieces.length === 1 ? pieces[0] : Buffer.concat(pieces), { stream: true })
    } catch (cause) {
      // past the string limit: no single read gets here under maxEventBytes, but a huge one might
      unreadable("", cause)
      return emit(false)
    }
    feed(text)
    return emit(false)
  }
  return Effect.as(Scope.addFinalizer(scope, onClose), loop)
}
