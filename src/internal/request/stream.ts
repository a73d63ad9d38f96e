/**
 * A streaming exchange: the whole path is one channel stage that owns the lease's scope, the
 * span, the metrics and the deadlines, frames and parses each read, and ends with the
 * provider's `Finish` or a typed error (events parsed before a failure are delivered first).
 */
import * as Channel from "effect/Channel"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as KeyPool from "../../KeyPool.js"
import * as Err from "../../LlmError.js"
import type { StreamEvent } from "../../Message.js"
import { malformed, redactSecret, withFields } from "./errors.js"
import { type ReadError } from "./errorBody.js"
import { reportError } from "../keyPool.js"
import type { Tracker } from "./delivered.js"
import * as Telemetry from "./telemetry.js"
import { type StreamReply, TransportFailure } from "../transport/types.js"
import { type Endpoint, type Outgoing, networkError, tooLarge } from "./endpoint.js"
import { exchangeStream, onAnotherKey, timedOutFailure, type Tried } from "./exchange.js"
import { type Framing, ndjsonFramer, sseFramer, type StreamParser } from "./framing.js"
import { streamDeadlines } from "./deadlines.js"
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
  read: ReadError,
  makeParser: () => StreamParser,
  tracker?: Tracker | undefined
): Stream.Stream<StreamEvent, Err.LlmError> =>
  Stream.fromChannel(Channel.acquireUseRelease(
    Effect.flatMap(Telemetry.startStream(endpoint.provider, out.model), (recorder) =>
      Effect.map(Scope.make(), (scope) => ({ recorder, scope, deadlines: streamDeadlines(endpoint, out.model, recorder.clock) }))),
    ({ deadlines, recorder, scope }): Events => {
      // each attempt gets its own scope so that a failed attempt's lease is freed at once
      const attempt = (tried: Tried) =>
        Effect.flatMap(Scope.fork(scope, ExecutionStrategy.sequential), (inner) =>
          exchangeStream(endpoint, out, read, tried, deadlines.step(false)).pipe(
            Scope.extend(inner),
            Effect.onError((cause) => Scope.close(inner, Exit.failCause(cause)))
          ))
      const opened = Effect.withParentSpan(onAnotherKey(endpoint, attempt), recorder.span)
      return Channel.unwrap(
        Effect.flatMap(opened, ([reply, lease]) =>
          frames(endpoint, out, scope, deadlines, recorder, reply, lease, framing, makeParser(), tracker))
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
  tracker: Tracker | undefined
): Effect.Effect<Events> => {
  const decoder = new TextDecoder()
  let pending: Array<StreamEvent> = []
  let failure: Err.LlmError | undefined
  let emitted = 0
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
    return Effect.zipRight(reportError(endpoint.pool.report, lease.keyId, error), Effect.fail(error))
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
    // a pool that chooses by latency samples a stream's time to its first event
    const first = emitted === batch.length && endpoint.pool.observe !== undefined
    recorder.events(batch)
    const last = batch[batch.length - 1]!
    const written = first
      ? Channel.zipRight(Channel.fromEffect(endpoint.pool.observe!(lease)), Channel.zipRight(Channel.write(Chunk.unsafeFromArray(batch)), next))
      : Channel.zipRight(Channel.write(Chunk.unsafeFromArray(batch)), next)
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
  // every batch is written before the failure that follows it, so at a failure `emitted` and
  // the parser's text are what the consumer received: the source reports them, uncounted
  tracker?.watch(() => ({ events: emitted, text: parser.emittedText }))
  return Effect.as(Scope.addFinalizer(scope, onClose), loop)
}

