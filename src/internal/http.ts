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
import { fromResponse, redactSecret } from "./errors.js"
import { outcomeOf } from "./keyPool.js"
import type { Watch } from "./partial.js"
import * as Telemetry from "./telemetry.js"
import {
  makeHttpClient,
  type Service as Transport,
  type StreamReply,
  type TransportFailure,
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
  readonly timeout: Duration.Duration | undefined
  /** Records every response's usage when a `Usage` layer was present at build time. */
  readonly usage?: UsageTracker["Type"] | undefined
  /** Header names the HTTP client's spans must not show: the defaults plus this provider's auth headers. */
  readonly redactedHeaders: ReadonlyArray<string | RegExp>
  /** Streams: from the request's start to its first event. */
  readonly firstTokenTimeout?: Duration.Duration | undefined
  /** Streams: the longest gap between two events. */
  readonly idleTimeout?: Duration.Duration | undefined
}

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
      timeout: options.timeout === undefined ? undefined : Duration.decode(options.timeout),
      usage,
      redactedHeaders,
      firstTokenTimeout: options.firstTokenTimeout === undefined ? undefined : Duration.decode(options.firstTokenTimeout),
      idleTimeout: options.idleTimeout === undefined ? undefined : Duration.decode(options.idleTimeout)
    }
    return endpoint
  })

const networkError = (endpoint: Endpoint, model: string, cause: TransportFailure) =>
  new Err.NetworkError({
    provider: endpoint.provider,
    model,
    message: `${endpoint.provider} connection failed: ${cause.description}`
  })

const requestFor = (endpoint: Endpoint, out: Outgoing, lease: KeyPool.Lease) => {
  const headers: Record<string, string> = { "content-type": "application/json", ...endpoint.headers, ...out.headers }
  if (lease.key !== undefined) Object.assign(headers, endpoint.auth(lease.key))
  return { url: out.url, headers, body: out.body, secretHeaders: endpoint.redactedHeaders }
}

const withoutRetryAfter = (headers: Readonly<Record<string, string | undefined>>) => {
  const { "retry-after": _seconds, "retry-after-ms": _millis, ...rest } = headers
  return rest
}

const isKeySpecific = (error: Err.LlmError) =>
  error._tag === "RateLimitError" || error._tag === "AuthenticationError" ||
  error._tag === "PermissionError" || error._tag === "QuotaExceededError"

/** Admits the request with the limiter, then leases a key in the current scope. */
const admitAndLease = (endpoint: Endpoint, out: Outgoing, reattempt: boolean) =>
  Effect.zipRight(
    Telemetry.timeAdmission(endpoint.limiter.admit({ requests: 1, tokens: out.estimatedTokens, reattempt })),
    Effect.tap(endpoint.pool.acquire, () => Telemetry.countLease(endpoint.provider))
  )

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

/**
 * Admits, leases, and sends with `send`; a reply other than 2xx becomes its typed error (its
 * body read with `bodyOf`). Resolves to the 2xx reply and the lease.
 */
const exchange = <Reply extends { readonly status: number; readonly headers: Readonly<Record<string, string>> }, R>(
  endpoint: Endpoint,
  out: Outgoing,
  reattempt: boolean,
  send: (request: TransportRequest) => Effect.Effect<Reply, TransportFailure, R>,
  bodyOf: (reply: Reply) => Effect.Effect<string>
) =>
  Effect.flatMap(admitAndLease(endpoint, out, reattempt), (lease) =>
    send(requestFor(endpoint, out, lease)).pipe(
      Effect.mapError((cause) => networkError(endpoint, out.model, cause)),
      Effect.tapError(() => endpoint.pool.report(lease.keyId, { _tag: "Failure" })),
      Effect.flatMap((reply) =>
        Effect.as(checkHead(endpoint, out, lease, reply.status, reply.headers, bodyOf(reply)), [reply, lease] as const)
      )
    ))

/** Everything left in a streamed body, as text (for error replies). */
const readRest = (reply: StreamReply): Effect.Effect<string> =>
  Effect.suspend(() => {
    const decoder = new TextDecoder()
    let text = ""
    const loop: Effect.Effect<string, TransportFailure> = Effect.flatMap(reply.pull, (pieces) => {
      if (pieces === undefined) return Effect.succeed(text + decoder.decode())
      for (const piece of pieces) text += decoder.decode(piece, { stream: true })
      return loop
    })
    return Effect.orElseSucceed(loop, () => text)
  })

/** Sends for the whole reply; a 2xx reply's body comes back. */
const exchangeText = (endpoint: Endpoint, out: Outgoing, reattempt: boolean) =>
  exchange(endpoint, out, reattempt, endpoint.transport.text, (reply) => Effect.succeed(reply.body))

/** Sends and resolves at a 2xx reply's head; the body stays open in the current scope. */
const exchangeStream = (endpoint: Endpoint, out: Outgoing, reattempt: boolean) =>
  exchange(endpoint, out, reattempt, endpoint.transport.stream, readRest)

/**
 * Runs `attempt` again at once, on another key, when it failed for a reason specific to
 * its key (429, 401, 403, quota) and another healthy key exists. Backoff is for `Retry`.
 */
const onAnotherKey = <A, R>(
  endpoint: Endpoint,
  attempt: (reattempt: boolean) => Effect.Effect<A, Err.LlmError, R>
): Effect.Effect<A, Err.LlmError, R> => {
  const loop = (left: number): Effect.Effect<A, Err.LlmError, R> =>
    Effect.catchIf(attempt(left < 8), (error) => left > 0 && isKeySpecific(error), (error) =>
      Effect.flatMap(endpoint.pool.hasHealthyKey(), (another) => (another ? loop(left - 1) : Effect.fail(error))))
  return Effect.suspend(() => loop(8))
}

const withTimeout = <A, R>(
  endpoint: Endpoint,
  model: string,
  effect: Effect.Effect<A, Err.LlmError, R>
): Effect.Effect<A, Err.LlmError, R> =>
  endpoint.timeout === undefined
    ? effect
    : Effect.timeoutFail(effect, {
      duration: endpoint.timeout,
      onTimeout: () =>
        new Err.TimeoutError({
          provider: endpoint.provider,
          model,
          phase: "request",
          message: `${endpoint.provider} request timed out after ${Duration.format(endpoint.timeout!)}`
        })
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
  withTimeout(
    endpoint,
    out.model,
    onAnotherKey(
      endpoint,
      (reattempt) =>
        Effect.scoped(
          Effect.flatMap(exchangeText(endpoint, out, reattempt), ([reply, lease]) => {
            const decoded = decode(reply.body, reply.status)
            if (Err.isLlmError(decoded)) {
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
  )

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

const sseFramer = (onFrame: (data: string, event: string | undefined) => void): Framer => {
  const parser = createParser({ onEvent: (message) => onFrame(message.data, message.event) })
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

const ndjsonFramer = (onFrame: (data: string, event: string | undefined) => void): Framer => {
  let buffer = ""
  return {
    feed: (text) => {
      buffer += text
      let newline = buffer.indexOf("\n")
      while (newline >= 0) {
        const line = buffer.slice(0, newline).trim()
        buffer = buffer.slice(newline + 1)
        if (line.length > 0) onFrame(line, undefined)
        newline = buffer.indexOf("\n")
      }
    },
    end: () => {
      const line = buffer.trim()
      buffer = ""
      if (line.length > 0) onFrame(line, undefined)
    }
  }
}

/**
 * Lifts an error that happens after the caller has received events into a partial
 * `StreamError`, so that nothing downstream mistakes a cut stream for a retryable one.
 */
const afterEvents = (parser: StreamParser, emitted: number, error: Err.LlmError): Err.LlmError =>
  emitted === 0 || error._tag === "StreamError"
    ? (error._tag === "StreamError" && emitted > 0 && !error.partial
      ? new Err.StreamError({ ...error, partial: true, partialText: parser.emittedText })
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
 * counted from the start) and the gap between events (`idleTimeout`). `bound` limits one
 * step of the stream (opening it, or one read of the body) by the nearest, which names the
 * phase; the step is interrupted when it passes, which aborts the HTTP request.
 */
const streamDeadlines = (endpoint: Endpoint, model: string, clock: Clock.Clock) => {
  const total = endpoint.timeout === undefined ? undefined : Duration.toMillis(endpoint.timeout)
  const firstToken = endpoint.firstTokenTimeout === undefined ? undefined : Duration.toMillis(endpoint.firstTokenTimeout)
  const idle = endpoint.idleTimeout === undefined ? undefined : Duration.toMillis(endpoint.idleTimeout)
  if (total === undefined && firstToken === undefined && idle === undefined) {
    return Object.assign(<A, E>(effect: Effect.Effect<A, E>, _started: boolean) => effect, { unbounded: true })
  }
  const start = clock.unsafeCurrentTimeMillis()
  const bound = <A, E>(effect: Effect.Effect<A, E>, started: boolean): Effect.Effect<A, E | Err.TimeoutError> => {
    const now = clock.unsafeCurrentTimeMillis()
    let phase: Err.TimeoutPhase = "request"
    let limit = total === undefined ? Infinity : start + total - now
    let configured = total ?? 0
    if (!started && firstToken !== undefined && start + firstToken - now < limit) {
      limit = start + firstToken - now
      phase = "firstToken"
      configured = firstToken
    }
    // idle counts from the read, so a slow consumer is not blamed on the provider
    if (started && idle !== undefined && idle < limit) {
      limit = idle
      phase = "idle"
      configured = idle
    }
    if (limit === Infinity) return effect
    return Effect.timeoutFail(effect, {
      duration: Math.max(0, limit),
      onTimeout: () =>
        new Err.TimeoutError({
          provider: endpoint.provider,
          model,
          phase,
          message: `${endpoint.provider} stream timed out (${phase}) after ${Duration.format(Duration.millis(configured))}${
            started ? ", after output began" : ""
          }`,
          // events were delivered: a transparent re-try would repeat them
          retryable: !started
        })
    })
  }
  return Object.assign(bound, { unbounded: false })
}

type Bound = ReturnType<typeof streamDeadlines>
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
      Effect.map(Scope.make(), (scope) => ({ recorder, scope, bound: streamDeadlines(endpoint, out.model, recorder.clock) }))),
    ({ bound, recorder, scope }): Events => {
      // each attempt gets its own scope so that a failed attempt's lease is freed at once
      const attempt = (reattempt: boolean) =>
        Effect.flatMap(Scope.fork(scope, ExecutionStrategy.sequential), (inner) =>
          exchangeStream(endpoint, out, reattempt).pipe(
            Scope.extend(inner),
            Effect.onError((cause) => Scope.close(inner, Exit.failCause(cause)))
          ))
      const opened = Effect.withParentSpan(bound(onAnotherKey(endpoint, attempt), false), recorder.span)
      return Channel.unwrap(
        Effect.flatMap(opened, ([reply, lease]) => frames(endpoint, out, scope, bound, recorder, reply, lease, framing, makeParser(), watch))
      )
    },
    ({ recorder, scope }, exit) => Effect.zipRight(Scope.close(scope, exit), Effect.sync(() => recorder.end(exit)))
  ))

/**
 * The body's events: each read takes what arrived, frames and parses it, and writes the
 * events as one chunk. The key is reported and the limiter settled before the lease's scope
 * closes; usage is recorded when the `Finish` event goes out.
 */
const frames = (
  endpoint: Endpoint,
  out: Outgoing,
  scope: Scope.Scope,
  bound: Bound,
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
  const onFrame = (data: string, event: string | undefined) => {
    if (failure === undefined) {
      const error = parser.onData(data, event, pending)
      // an error event may quote the request, and so the key
      if (error !== undefined) failure = redactSecret(error, lease.key)
    }
  }
  const framer = framing === "sse" ? sseFramer(onFrame) : ndjsonFramer(onFrame)

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
    const fail = failure === undefined ? undefined : afterEvents(parser, emitted + batch.length, failure)
    emitted += batch.length
    const next: Events = fail !== undefined ? Channel.fromEffect(failed(fail)) : ended ? Channel.void : loop
    if (fail === undefined && ended) finished = true
    if (batch.length === 0) return next
    recorder.events(batch)
    const last = batch[batch.length - 1]!
    const written = Channel.zipRight(Channel.write(Chunk.unsafeFromArray(batch)), next)
    if (fail !== undefined || last._tag !== "Finish") return written
    finished = true
    return endpoint.usage === undefined
      ? written
      : Channel.zipRight(Channel.fromEffect(endpoint.usage.record(endpoint.provider, out.model, last.usage)), written)
  }

  const readFailed = (error: TransportFailure | Err.TimeoutError) =>
    error._tag === "TransportFailure"
      ? failed(afterEvents(parser, emitted, networkError(endpoint, out.model, error)))
      // a deadline is the stream's, not the key's: it is not reported
      : Effect.fail(error)
  const read = bound.unbounded
    ? Effect.catchAll(reply.pull, readFailed)
    : Effect.suspend(() => Effect.catchAll(bound(reply.pull, emitted > 0), readFailed))
  // fromEffect + flatMap rather than unwrap(match(…)): ~1 KB less garbage per read
  const loop: Events = Channel.flatMap(Channel.fromEffect(read), (pieces) => {
    if (pieces === undefined) {
      framer.feed(decoder.decode())
      framer.end()
      if (failure === undefined) failure = parser.onEnd(pending)
      return emit(true)
    }
    // one decode and one feed per read: undici hands over one piece per chunk of the
    // chunked encoding, often one per SSE event, and feeding them one by one costs more
    // than joining them
    framer.feed(decoder.decode(pieces.length === 1 ? pieces[0] : Buffer.concat(pieces), { stream: true }))
    return emit(false)
  })
  return Effect.as(Scope.addFinalizer(scope, onClose), loop)
}
