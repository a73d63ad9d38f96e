/**
 * The request path shared by every provider adapter: rate-limit admission, a key lease,
 * the HTTP exchange, error mapping, outcome reporting, and stream framing. Providers only
 * build bodies and parse payloads.
 */
import * as Headers from "@effect/platform/Headers"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as Cause from "effect/Cause"
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
import * as Telemetry from "./telemetry.js"

/** Everything a provider adapter needs at run time, resolved once when its layer builds. */
export interface Endpoint {
  readonly provider: string
  readonly http: HttpClient.HttpClient
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
    const endpoint: Endpoint = {
      provider: options.provider,
      http,
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

const networkError = (endpoint: Endpoint, model: string, cause: unknown) =>
  new Err.NetworkError({
    provider: endpoint.provider,
    model,
    message: `${endpoint.provider} connection failed: ${describe(cause)}`
  })

/** A cause's description without the request (which would carry auth headers). */
const describe = (cause: unknown): string => {
  if (typeof cause === "object" && cause !== null) {
    const c = cause as { reason?: unknown; cause?: unknown; message?: unknown }
    const inner = c.cause as { message?: unknown; code?: unknown } | undefined
    const innerText = inner === undefined ? "" : String(inner.code ?? inner.message ?? "")
    return [c.reason, innerText].filter((s) => typeof s === "string" && s.length > 0).join(": ") || "unknown"
  }
  return String(cause)
}

const buildRequest = (endpoint: Endpoint, out: Outgoing, lease: KeyPool.Lease) => {
  const headers: Record<string, string> = { ...endpoint.headers, ...out.headers }
  if (lease.key !== undefined) Object.assign(headers, endpoint.auth(lease.key))
  return HttpClientRequest.post(out.url).pipe(
    HttpClientRequest.setHeaders(headers),
    HttpClientRequest.bodyText(out.body, "application/json")
  )
}

const withoutRetryAfter = (headers: Readonly<Record<string, string | undefined>>) => {
  const { "retry-after": _seconds, "retry-after-ms": _millis, ...rest } = headers
  return rest
}

const isKeySpecific = (error: Err.LlmError) =>
  error._tag === "RateLimitError" || error._tag === "AuthenticationError" ||
  error._tag === "PermissionError" || error._tag === "QuotaExceededError"

/**
 * Admits, leases a key in the current scope, and sends. Resolves to a response with a
 * 2xx status; other statuses become typed errors and are reported against the key.
 */
const open = (endpoint: Endpoint, out: Outgoing, reattempt = false) =>
  Effect.gen(function* () {
    yield* Telemetry.timeAdmission(endpoint.limiter.admit({ requests: 1, tokens: out.estimatedTokens, reattempt }))
    const lease = yield* endpoint.pool.acquire
    yield* Telemetry.countLease(endpoint.provider)
    const response = yield* endpoint.http.execute(buildRequest(endpoint, out, lease)).pipe(
      Effect.locally(Headers.currentRedactedNames, endpoint.redactedHeaders),
      Effect.mapError((cause) => networkError(endpoint, out.model, cause)),
      Effect.tapError(() => endpoint.pool.report(lease.keyId, { _tag: "Failure" }))
    )
    // A 429's retry-after is about the key that got it, which the pool cools down. The
    // limiter pauses everyone only when no other key could serve: backoff is for when
    // every key is busy.
    const anotherKey = response.status === 429 && (yield* endpoint.pool.hasHealthyKey(lease.keyId))
    yield* endpoint.limiter.observe(anotherKey ? withoutRetryAfter(response.headers) : response.headers)
    if (response.status >= 300) {
      const body = yield* response.text.pipe(Effect.orElseSucceed(() => ""))
      const now = yield* Clock.currentTimeMillis
      const error = redactSecret(
        fromResponse({
          provider: endpoint.provider,
          model: out.model,
          status: response.status,
          headers: response.headers,
          body,
          now
        }),
        lease.key
      )
      yield* endpoint.pool.report(lease.keyId, outcomeOf(error))
      return yield* Effect.fail(error)
    }
    return [response, lease] as const
  })

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
          Effect.flatMap(open(endpoint, out, reattempt), ([response, lease]) =>
            response.text.pipe(
              Effect.mapError((cause) => networkError(endpoint, out.model, cause)),
              Effect.flatMap((body) => {
                const decoded = decode(body, response.status)
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
            ))
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
 * counted from the start) and the gap between events (`idleTimeout`). Each pull waits for
 * the nearest one, which names the phase; the pull is interrupted when it passes, and
 * interrupting it aborts the HTTP request.
 */
const withStreamTimeouts = (
  endpoint: Endpoint,
  model: string,
  stream: Stream.Stream<StreamEvent, Err.LlmError>
): Stream.Stream<StreamEvent, Err.LlmError> => {
  const total = endpoint.timeout === undefined ? undefined : Duration.toMillis(endpoint.timeout)
  const firstToken = endpoint.firstTokenTimeout === undefined ? undefined : Duration.toMillis(endpoint.firstTokenTimeout)
  const idle = endpoint.idleTimeout === undefined ? undefined : Duration.toMillis(endpoint.idleTimeout)
  if (total === undefined && firstToken === undefined && idle === undefined) return stream
  const timeoutError = (phase: Err.TimeoutPhase, millis: number, afterOutput: boolean) =>
    Option.some(
      new Err.TimeoutError({
        provider: endpoint.provider,
        model,
        phase,
        message: `${endpoint.provider} stream timed out (${phase}) after ${Duration.format(Duration.millis(millis))}${
          afterOutput ? ", after output began" : ""
        }`,
        // events were delivered: a transparent re-try would repeat them
        retryable: !afterOutput
      })
    )
  return Stream.fromPull(
    Effect.gen(function* () {
      const start = yield* Clock.currentTimeMillis
      const pull = yield* Stream.toPull(stream)
      let started = false
      return Effect.flatMap(Clock.currentTimeMillis, (now) => {
        let phase: Err.TimeoutPhase = "request"
        let limit = total === undefined ? Infinity : start + total - now
        let configured = total ?? 0
        if (!started && firstToken !== undefined && start + firstToken - now < limit) {
          limit = start + firstToken - now
          phase = "firstToken"
          configured = firstToken
        }
        // idle counts from the pull, so a slow consumer is not blamed on the provider
        if (started && idle !== undefined && idle < limit) {
          limit = idle
          phase = "idle"
          configured = idle
        }
        const guarded = limit === Infinity ? pull : Effect.timeoutFail(pull, {
          duration: Math.max(0, limit),
          onTimeout: () => timeoutError(phase, configured, started)
        })
        return Effect.map(guarded, (chunk) => {
          if (Chunk.isNonEmpty(chunk)) started = true
          return chunk
        })
      })
    })
  )
}

/** A streaming exchange, traced and measured. The key lease lives as long as the stream does. */
export const sendStream = (
  endpoint: Endpoint,
  out: Outgoing,
  framing: Framing,
  makeParser: () => StreamParser
): Stream.Stream<StreamEvent, Err.LlmError> =>
  Telemetry.stream(endpoint.provider, out.model, withStreamTimeouts(endpoint, out.model, openStream(endpoint, out, framing, makeParser)))

const openStream = (
  endpoint: Endpoint,
  out: Outgoing,
  framing: Framing,
  makeParser: () => StreamParser
): Stream.Stream<StreamEvent, Err.LlmError> =>
  // The stream owns a scope that holds the lease and the response until it ends. Built with
  // Channel.acquireUseRelease: Stream.unwrapScoped flattens a stream of streams, which
  // costs ~250 µs more per stream (measured in the README's benchmark section).
  Stream.fromChannel(Channel.acquireUseRelease(
    Scope.make(),
    (outer) => {
      // each attempt gets its own scope so that a failed attempt's lease is freed at once
      const attempt = (reattempt: boolean) => Effect.flatMap(Scope.fork(outer, ExecutionStrategy.sequential), (inner) =>
        open(endpoint, out, reattempt).pipe(
          Scope.extend(inner),
          Effect.onError((cause) => Scope.close(inner, Exit.failCause(cause)))
        ))
      // the stream's deadlines (withStreamTimeouts) cover opening it too
      return Channel.unwrap(
        Effect.map(onAnotherKey(endpoint, attempt), ([response, lease]) => {
          const events = frames(endpoint, out, response, lease, framing, makeParser())
          return Stream.toChannel(
            endpoint.usage === undefined ? events : recordFinish(endpoint.usage, endpoint.provider, out.model, events)
          )
        })
      )
    },
    (outer, exit) => Scope.close(outer, exit)
  ))

/** Records the usage a stream's `Finish` carries; `Finish` is always its last event. */
const recordFinish = (
  tracker: UsageTracker["Type"],
  provider: string,
  model: string,
  events: Stream.Stream<StreamEvent, Err.LlmError>
): Stream.Stream<StreamEvent, Err.LlmError> =>
  Stream.mapChunksEffect(events, (chunk) => {
    const last = Chunk.last(chunk)
    return last._tag === "Some" && last.value._tag === "Finish"
      ? Effect.as(tracker.record(provider, model, last.value.usage), chunk)
      : Effect.succeed(chunk)
  })

const frames = (
  endpoint: Endpoint,
  out: Outgoing,
  response: HttpClientResponse.HttpClientResponse,
  lease: KeyPool.Lease,
  framing: Framing,
  parser: StreamParser
): Stream.Stream<StreamEvent, Err.LlmError> => {
  const decoder = new TextDecoder()
  let pending: Array<StreamEvent> = []
  let failure: Err.LlmError | undefined
  let emitted = 0
  // the provider's stream ended properly (the parser saw its end, or a Finish went out);
  // a consumer that stops before that neither succeeded nor failed with this key
  let finished = false
  const onFrame = (data: string, event: string | undefined) => {
    if (failure === undefined) {
      const error = parser.onData(data, event, pending)
      // an error event may quote the request, and so the key
      if (error !== undefined) failure = redactSecret(error, lease.key)
    }
  }
  const framer = framing === "sse" ? sseFramer(onFrame) : ndjsonFramer(onFrame)

  // Writes what the parser produced; on a parser failure, writes the events before it,
  // then fails, and stops reading the body.
  const flush = <OutDone>(
    next: Channel.Channel<Chunk.Chunk<StreamEvent>, Chunk.Chunk<Uint8Array>, Err.LlmError, Err.LlmError, OutDone, unknown>
  ): Channel.Channel<Chunk.Chunk<StreamEvent>, Chunk.Chunk<Uint8Array>, Err.LlmError, Err.LlmError, OutDone, unknown> => {
    const batch = pending
    pending = []
    const fail = failure === undefined ? undefined : afterEvents(parser, emitted + batch.length, failure)
    emitted += batch.length
    if (fail === undefined && batch.length > 0 && batch[batch.length - 1]!._tag === "Finish") finished = true
    const tail = fail === undefined ? next : Channel.fail(fail)
    return batch.length === 0 ? tail : Channel.zipRight(Channel.write(Chunk.unsafeFromArray(batch)), tail)
  }

  const loop: Channel.Channel<Chunk.Chunk<StreamEvent>, Chunk.Chunk<Uint8Array>, Err.LlmError, Err.LlmError, void, unknown> =
    Channel.readWithCause({
      onInput: (chunk: Chunk.Chunk<Uint8Array>) => {
        for (const bytes of chunk) framer.feed(decoder.decode(bytes, { stream: true }))
        return flush(loop)
      },
      onFailure: (cause) => {
        // the failure is reported against the key (tapError below), never a success too
        finished = false
        return Channel.failCause(Cause.map(cause, (error) => afterEvents(parser, emitted, error)))
      },
      onDone: () => {
        framer.feed(decoder.decode())
        framer.end()
        if (failure === undefined) failure = parser.onEnd(pending)
        if (failure === undefined) finished = true
        return flush(Channel.void)
      }
    })

  const body = response.stream.pipe(
    Stream.mapError((cause): Err.LlmError => networkError(endpoint, out.model, cause))
  )
  return body.pipe(
    Stream.pipeThroughChannel(loop),
    Stream.tapError((error) => endpoint.pool.report(lease.keyId, outcomeOf(error))),
    // runs before the lease's scope closes, whether the stream ended or its reader stopped
    Stream.ensuring(Effect.suspend(() =>
      finished
        ? Effect.zipRight(
          endpoint.pool.report(lease.keyId, { _tag: "Success" }),
          parser.settledTokens === undefined ? Effect.void : endpoint.limiter.settle(parser.settledTokens, out.estimatedTokens)
        )
        : Effect.void
    ))
  )
}
