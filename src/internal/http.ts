/**
 * The request path shared by every provider adapter: rate-limit admission, a key lease,
 * the HTTP exchange, error mapping, outcome reporting, and stream framing. Providers only
 * build bodies and parse payloads.
 */
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
import type * as Redacted from "effect/Redacted"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { createParser } from "eventsource-parser"
import * as KeyPool from "../KeyPool.js"
import * as Err from "../LlmError.js"
import type { ChatResponse, StreamEvent } from "../Message.js"
import * as RateLimiter from "../RateLimiter.js"
import { fromResponse } from "./errors.js"
import { outcomeOf } from "./keyPool.js"

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
}) =>
  Effect.gen(function* () {
    const http = yield* HttpClient.HttpClient
    const pool = yield* KeyPool.KeyPool
    const limiter = yield* RateLimiter.RateLimiter
    const endpoint: Endpoint = {
      provider: options.provider,
      http,
      pool,
      limiter,
      auth: options.auth,
      headers: options.headers ?? {},
      timeout: options.timeout === undefined ? undefined : Duration.decode(options.timeout)
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

const isKeySpecific = (error: Err.LlmError) =>
  error._tag === "RateLimitError" || error._tag === "AuthenticationError" ||
  error._tag === "PermissionError" || error._tag === "QuotaExceededError"

/**
 * Admits, leases a key in the current scope, and sends. Resolves to a response with a
 * 2xx status; other statuses become typed errors and are reported against the key.
 */
const open = (endpoint: Endpoint, out: Outgoing) =>
  Effect.gen(function* () {
    yield* endpoint.limiter.admit({ requests: 1, tokens: out.estimatedTokens })
    const lease = yield* endpoint.pool.acquire
    const response = yield* endpoint.http.execute(buildRequest(endpoint, out, lease)).pipe(
      Effect.mapError((cause) => networkError(endpoint, out.model, cause))
    )
    yield* endpoint.limiter.observe(response.headers)
    if (response.status >= 300) {
      const body = yield* response.text.pipe(Effect.orElseSucceed(() => ""))
      const now = yield* Clock.currentTimeMillis
      const error = fromResponse({
        provider: endpoint.provider,
        model: out.model,
        status: response.status,
        headers: response.headers,
        body,
        now
      })
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
  attempt: Effect.Effect<A, Err.LlmError, R>
): Effect.Effect<A, Err.LlmError, R> => {
  const loop = (left: number): Effect.Effect<A, Err.LlmError, R> =>
    Effect.catchIf(attempt, (error) => left > 0 && isKeySpecific(error), (error) =>
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

/** A JSON exchange: `decode` turns a 2xx body into a response or a typed error. */
export const sendJson = (
  endpoint: Endpoint,
  out: Outgoing,
  decode: (body: string, status: number) => ChatResponse | Err.LlmError
): Effect.Effect<ChatResponse, Err.LlmError> =>
  withTimeout(
    endpoint,
    out.model,
    onAnotherKey(
      endpoint,
      Effect.scoped(
        Effect.flatMap(open(endpoint, out), ([response, lease]) =>
          response.text.pipe(
            Effect.mapError((cause) => networkError(endpoint, out.model, cause)),
            Effect.flatMap((body) => {
              const decoded = decode(body, response.status)
              if (Err.isLlmError(decoded)) {
                return Effect.zipRight(endpoint.pool.report(lease.keyId, { _tag: "Failure" }), Effect.fail(decoded))
              }
              return Effect.as(
                Effect.zipRight(
                  endpoint.pool.report(lease.keyId, { _tag: "Success" }),
                  endpoint.limiter.settle(decoded.usage.totalTokens, out.estimatedTokens)
                ),
                decoded
              )
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
    // a final event without its blank line still counts
    end: () => parser.reset({ consume: true })
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

/** A streaming exchange. The key lease lives as long as the stream does. */
export const sendStream = (
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
      const attempt = Effect.flatMap(Scope.fork(outer, ExecutionStrategy.sequential), (inner) =>
        open(endpoint, out).pipe(
          Scope.extend(inner),
          Effect.onError((cause) => Scope.close(inner, Exit.failCause(cause)))
        ))
      return Channel.unwrap(
        Effect.map(
          withTimeout(endpoint, out.model, onAnotherKey(endpoint, attempt)),
          ([response, lease]) => Stream.toChannel(frames(endpoint, out, response, lease, framing, makeParser()))
        )
      )
    },
    (outer, exit) => Scope.close(outer, exit)
  ))

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
  const onFrame = (data: string, event: string | undefined) => {
    if (failure === undefined) failure = parser.onData(data, event, pending)
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
    const tail = fail === undefined ? next : Channel.fail(fail)
    return batch.length === 0 ? tail : Channel.zipRight(Channel.write(Chunk.unsafeFromArray(batch)), tail)
  }

  const loop: Channel.Channel<Chunk.Chunk<StreamEvent>, Chunk.Chunk<Uint8Array>, Err.LlmError, Err.LlmError, void, unknown> =
    Channel.readWithCause({
      onInput: (chunk: Chunk.Chunk<Uint8Array>) => {
        for (const bytes of chunk) framer.feed(decoder.decode(bytes, { stream: true }))
        return flush(loop)
      },
      onFailure: (cause) =>
        Channel.failCause(Cause.map(cause, (error) => afterEvents(parser, emitted, error))),
      onDone: () => {
        framer.feed(decoder.decode())
        framer.end()
        if (failure === undefined) failure = parser.onEnd(pending)
        return flush(Channel.void)
      }
    })

  return response.stream.pipe(
    Stream.mapError((cause): Err.LlmError => networkError(endpoint, out.model, cause)),
    Stream.pipeThroughChannel(loop),
    Stream.tapError((error) => endpoint.pool.report(lease.keyId, outcomeOf(error))),
    Stream.onDone(() =>
      Effect.zipRight(
        endpoint.pool.report(lease.keyId, { _tag: "Success" }),
        parser.settledTokens === undefined ? Effect.void : endpoint.limiter.settle(parser.settledTokens, out.estimatedTokens)
      )
    )
  )
}
