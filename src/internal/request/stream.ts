/**
 * A streaming exchange: the whole path is one channel stage that owns the lease's scope, the
 * span, the metrics and the deadlines, frames and parses each read, and ends with the
 * provider's `Finish` or a typed error (events parsed before a failure are delivered first).
 */
import * as Cause from "effect/Cause"
import * as Channel from "effect/Channel"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
import * as KeyPool from "../../KeyPool.js"
import * as Err from "../../LlmError.js"
import type { StreamEvent } from "../../Message.js"
import { malformed, redactSecret, withFields } from "./errors.js"
import { type ReadError } from "./errorBody.js"
import { reportError } from "../keyPool.js"
import type { Tracker } from "./delivered.js"
import * as Telemetry from "./telemetry.js"
import { isDrained, type ScopelessReply, scopelessStream, type StreamReply, TransportFailure, untraced } from "../transport/types.js"
import { type Endpoint, type Outgoing, networkError, tooLarge } from "./endpoint.js"
import {
  bodyError,
  type Budget,
  exchangeStream,
  readRest,
  requestFor,
  retryOnAnotherKey,
  statusError,
  timedOutFailure,
  transportError,
  type Tried
} from "./exchange.js"
import { goesToAnotherKey, type HeldLease, leaseNow, observeHead, reportNow, type SyncParts, syncPartsOf } from "./fastPath.js"
import { type Framer, type FrameSink, type Framing, ndjsonFramer, sseFramer, type StreamParser } from "./framing.js"
import { StreamDeadlines } from "./deadlines.js"
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

export type Events = Channel.Channel<Chunk.Chunk<StreamEvent>, unknown, Err.LlmError, unknown, void, unknown>

/**
 * A streaming exchange, traced and measured, as a channel for the caller's own
 * `Channel.suspend`. The whole request path is one channel stage (each Stream combinator
 * costs tens of µs per stream), and its state is one object: a thousand open streams hold a
 * thousand of these, so what it keeps is fields and methods, not closures, and nothing of the
 * request once it is sent.
 */
export const streamChannel = (
  endpoint: Endpoint,
  out: Outgoing,
  framing: Framing,
  read: ReadError,
  makeParser: () => StreamParser,
  tracker?: Tracker | undefined
): Events => new StreamExchange(endpoint, out, framing, read, makeParser, tracker).channel()

/**
 * One stream, from its first attempt to its end: the span, the attempt's scope (the lease,
 * the response body), the parser and framer, and the events written so far.
 *
 * The body's events: each read takes what arrived, frames and parses it, and writes the
 * events as one chunk. The key is reported and the limiter settled before the lease's scope
 * closes; usage is recorded when the `Finish` event goes out.
 *
 * Whatever framing or parsing throws (a frame of the wrong shape, text past the string limit)
 * ends the stream with a typed error after the events parsed before it: a throw inside a
 * channel's continuation would otherwise end the stream as if it had finished.
 */
class StreamExchange implements FrameSink {
  private readonly model: string
  private readonly estimatedTokens: number
  /** The request until a reply answers it: a long prompt is not kept for as long as the stream is open. */
  private outgoing: Outgoing | undefined
  private recorder: Telemetry.StreamRecorder | undefined = undefined
  private deadlines!: StreamDeadlines
  /** The scope of the attempt in progress, then of the one that answered: its lease and body. */
  private scope: Scope.CloseableScope | undefined = undefined
  /** The endpoint's synchronous services, when it has them all (the fast path, `fastPath.ts`). */
  private readonly parts: SyncParts | undefined
  /** The key of an attempt opened on the fast path (the general path's lease lives in `scope`). */
  private held: HeldLease | undefined = undefined
  /** The body of an attempt opened on the fast path without a scope, released with the stream. */
  private body: ScopelessReply | undefined = undefined
  private lease!: KeyPool.Lease
  private reply!: StreamReply
  private parser!: StreamParser
  private framer!: Framer
  private decoder: InstanceType<typeof TextDecoder> | undefined = undefined
  private pending: Array<StreamEvent> = []
  private failure: Err.LlmError | undefined = undefined
  private emitted = 0
  /**
   * The provider's stream ended properly (the parser saw its end, or a Finish went out); a
   * consumer that stops before that neither succeeded nor failed with this key.
   */
  private finished = false
  private reportedFailure = false
  /** One read of the body and what follows it: built once, run once per read. */
  private loop!: Events

  constructor(
    private readonly endpoint: Endpoint,
    out: Outgoing,
    private readonly framing: Framing,
    private readonly readError: ReadError,
    private makeParser: (() => StreamParser) | undefined,
    private readonly tracker: Tracker | undefined
  ) {
    this.model = out.model
    this.estimatedTokens = out.estimatedTokens
    this.parts = syncPartsOf(endpoint)
    this.outgoing = out
  }

  /** The stream's events, `close` run however it ends. (Built here, its closures hold nothing of the request.) */
  channel(): Events {
    return Channel.ensuringWith(this.events(), (exit) => this.close(exit))
  }

  /** Starts the span (uninterruptibly: a span started is ended by `close`), opens the stream, then reads it. */
  private events(): Events {
    const parts = this.parts
    return Channel.unwrap(parts === undefined ? this.openGeneral() : this.openFast(parts))
  }

  private openGeneral(): Effect.Effect<Events, Err.LlmError> {
    return Effect.flatMap(
      Effect.uninterruptible(Effect.map(Telemetry.startStream(this.endpoint.provider, this.model), (recorder) => this.started(recorder))),
      () => this.attempts({ keys: new Set(), lastKey: undefined, last: undefined })
    )
  }

  private started(recorder: Telemetry.StreamRecorder): void {
    this.recorder = recorder
    this.deadlines = new StreamDeadlines(this.endpoint, this.model, recorder.clock)
  }

  /** Attempts on the general path, from the keys `tried` holds, under the stream's span. */
  private attempts(tried: Tried): Effect.Effect<Events, Err.LlmError> {
    return Effect.map(
      Effect.withParentSpan(retryOnAnotherKey(this.endpoint, tried, (t) => this.attempt(t)), this.recorder!.span),
      (opened) => this.opened(opened)
    )
  }

  /**
   * The opening on the fast path (`fastPath.ts`): the span, admission and key in plain code,
   * then the transport's one `Effect`; a head that is not a plain 2xx stream reads its body on
   * the general path's terms, and a failure that is the key's goes on with the general path's
   * attempts on another key. Uninterruptible until the send: a key taken is always given back.
   */
  private openFast(parts: SyncParts): Effect.Effect<Events, Err.LlmError> {
    return Effect.uninterruptibleMask((restore) =>
      Effect.withFiberRuntime<Events, Err.LlmError>((fiber) => {
        const { endpoint } = this
        const recorder = Telemetry.startStreamOn(fiber, endpoint.provider, this.model)
        if (recorder === undefined) return restore(this.openGeneral())
        this.started(recorder)
        const tried: Tried = { keys: new Set(), lastKey: undefined, last: undefined }
        const held = leaseNow(endpoint, parts, this.estimatedTokens, recorder.ambient)
        if (held === undefined) return restore(this.attempts(tried))
        const lease = held.lease
        this.held = held
        tried.keys.add(lease.keyId)
        tried.lastKey = lease.keyId
        const budget = this.deadlines.step(false)
        const ms = budget.left()
        const request = { ...requestFor(endpoint, this.outgoing!, lease), timeoutMs: ms === Infinity ? undefined : ms }
        const sentFailed = (cause: Cause.Cause<TransportFailure>) => {
          const failure = Cause.failureOption(cause)
          const error = failure._tag === "None" ? undefined : transportError(endpoint, this.model, budget, failure.value)
          // a connection that failed counts against the key; a deadline is the call's
          if (error !== undefined && error._tag !== "TimeoutError") parts.pool.report(lease.keyId, { _tag: "Failure" }, recorder.ambient)
          // interrupted, or a defect: no failure of the transport's inside
          return this.fastFailed(parts, tried, restore, error === undefined ? Exit.failCause(cause as Cause.Cause<never>) : Exit.fail(error))
        }
        const answered = (reply: StreamReply): Effect.Effect<Events, Err.LlmError> => {
          const { headers, status } = reply
          const now = recorder.clock.unsafeCurrentTimeMillis()
          observeHead(parts, lease, status, headers, now, recorder.ambient)
          if (status < 300 && !(headers["content-type"] ?? "").includes("application/json")) return Effect.succeed(this.opened([reply, lease]))
          return Effect.matchEffect(this.unusualHead(parts, reply, lease, budget), {
            onFailure: (error) => this.fastFailed(parts, tried, restore, Exit.fail(error)),
            onSuccess: (replay) => Effect.succeed(this.opened([replay, lease]))
          })
        }
        // the built-in transport's body is released with the stream, without a scope of its own
        const open = scopelessStream.get(endpoint.transport)
        if (open !== undefined) {
          return Effect.matchCauseEffect(restore(open(request)), {
            onFailure: sentFailed,
            onSuccess: (reply) => {
              this.body = reply
              return answered(reply)
            }
          })
        }
        return Effect.flatMap(Scope.make(), (scope) => {
          this.scope = scope
          const sent = Scope.extend(endpoint.transport.stream(request), scope)
          return Effect.matchCauseEffect(restore(untraced.has(endpoint.transport) ? sent : Effect.withParentSpan(sent, recorder.span)), {
            onFailure: sentFailed,
            onSuccess: answered
          })
        })
      })
    )
  }

  /**
   * A head the fast path does not stream at once, read as the general path reads it: an error
   * status's body becomes its typed error (reported against the key); a 2xx JSON body where a
   * stream was asked for is an error object (gateways send them so) or, if not, the stream's
   * whole body, framed as it is.
   */
  private unusualHead(parts: SyncParts, reply: StreamReply, lease: KeyPool.Lease, budget: Budget): Effect.Effect<StreamReply, Err.LlmError> {
    const { endpoint, readError } = this
    const out = this.outgoing!
    return Effect.flatMap(readRest(reply, budget), (body) => {
      const now = this.recorder!.clock.unsafeCurrentTimeMillis()
      const error = reply.status >= 300
        ? statusError(endpoint, out, readError, lease, reply.status, reply.headers, body, now)
        : bodyError(endpoint, out, readError, lease, reply.headers, body, now, true)
      if (error !== undefined) {
        reportNow(parts, lease.keyId, error, this.recorder!.ambient)
        return Effect.fail(error)
      }
      let sent = false
      return Effect.succeed<StreamReply>({
        status: reply.status,
        headers: reply.headers,
        pull: Effect.sync(() => (sent ? undefined : ((sent = true), [new TextEncoder().encode(body)])))
      })
    })
  }

  /**
   * A fast opening that failed: its scope and key are given back, then a failure that is its
   * key's goes on with the general path's attempts on another key, when one can serve.
   */
  private fastFailed(
    parts: SyncParts,
    tried: Tried,
    restore: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>,
    failed: Exit.Exit<never, Err.LlmError>
  ): Effect.Effect<Events, Err.LlmError> {
    const scope = this.scope
    this.scope = undefined
    const closed = scope === undefined ? Effect.void : Scope.close(scope, failed)
    const error = failed._tag === "Failure" && failed.cause._tag === "Fail" ? failed.cause.error : undefined
    return Effect.zipRight(closed, Effect.suspend(() => {
      this.releaseBody()
      this.releaseHeld()
      if (error !== undefined && goesToAnotherKey(parts, tried, error)) return restore(this.attempts(tried))
      return failed
    }))
  }

  private releaseBody(): void {
    const body = this.body
    this.body = undefined
    body?.release()
  }

  private releaseHeld(): void {
    const held = this.held
    this.held = undefined
    held?.release()
  }

  // each attempt gets its own scope so that a failed attempt's lease is freed at once; the
  // scope is known before anything is added to it, so `close` finds it however the attempt ends
  private attempt(tried: Tried) {
    return Effect.flatMap(Scope.make(), (inner) => {
      this.scope = inner
      return exchangeStream(this.endpoint, this.outgoing!, this.readError, tried, this.deadlines.step(false)).pipe(
        Scope.extend(inner),
        Effect.onError((cause) => {
          this.scope = undefined
          return Scope.close(inner, Exit.failCause(cause))
        })
      )
    })
  }

  private opened([reply, lease]: readonly [StreamReply, KeyPool.Lease]): Events {
    this.outgoing = undefined
    this.reply = reply
    this.lease = lease
    this.parser = this.makeParser!()
    // it may hold the request
    this.makeParser = undefined
    this.framer = this.framing === "sse" ? sseFramer(this, this.endpoint.maxEventBytes) : ndjsonFramer(this, this.endpoint.maxEventBytes)
    this.loop = Channel.flatMap(Channel.fromEffect(Effect.suspend(() => this.read())), (pieces) => this.step(pieces))
    // every batch is written before the failure that follows it, so at a failure `emitted`
    // and the parser's text are what the consumer received: the source reports them, uncounted
    this.tracker?.watch(() => ({ events: this.emitted, text: this.parser.emittedText }))
    return this.loop
  }

  /** Reports the key and settles the limiter (for a stream that ended properly), then frees the lease and the body, then ends the span. */
  close(exit: Exit.Exit<unknown, unknown>): Effect.Effect<void> {
    const { scope, recorder } = this
    this.scope = undefined
    this.outgoing = undefined
    const released = scope === undefined ? Effect.void : Scope.close(scope, exit)
    const ended = recorder === undefined && this.held === undefined && this.body === undefined ? undefined : () => {
      // a key held on the fast path goes back after the body, as a scope's would
      this.releaseBody()
      this.releaseHeld()
      recorder?.end(exit as Exit.Exit<unknown, Err.LlmError>)
    }
    const closed = ended === undefined ? released : Effect.zipRight(released, Effect.sync(ended))
    if (!this.finished || this.reportedFailure) return closed
    const parts = this.parts
    if (parts !== undefined) {
      parts.pool.report(this.lease.keyId, { _tag: "Success" }, recorder?.ambient ?? [])
      if (this.parser.settledTokens !== undefined) parts.limiter.settle(this.parser.settledTokens, this.estimatedTokens)
      return closed
    }
    const reported = this.endpoint.pool.report(this.lease.keyId, { _tag: "Success" })
    const settled = this.parser.settledTokens === undefined
      ? reported
      : Effect.zipRight(reported, this.endpoint.limiter.settle(this.parser.settledTokens, this.estimatedTokens))
    // the report runs whatever happens to it, before the lease's scope closes
    return Effect.ensuring(settled, closed)
  }

  private fail(error: Err.LlmError): void {
    // an error event may quote the request, and so the key
    if (this.failure === undefined) this.failure = redactSecret(error, this.lease.key)
  }

  private unreadable(data: string, cause: unknown): void {
    this.fail(malformed(this.endpoint.provider, this.model, data, `a stream event could not be read (${thrown(cause)})`))
  }

  onFrame(data: string, event: string | undefined): void {
    if (this.failure !== undefined) return
    try {
      const error = this.parser.onData(data, event, this.pending)
      if (error !== undefined) this.fail(error)
    } catch (cause) {
      this.unreadable(data, cause)
    }
  }

  onOversize(): void {
    this.fail(tooLarge(this.endpoint, this.model, "event", this.endpoint.maxEventBytes))
  }

  private feed(text: string): void {
    if (this.failure !== undefined) return
    try {
      this.framer.feed(text)
    } catch (cause) {
      this.unreadable(text, cause)
    }
  }

  private end(rest: string): void {
    this.feed(rest)
    if (this.failure !== undefined) return
    try {
      this.framer.end()
      if (this.failure === undefined) {
        const error = this.parser.onEnd(this.pending)
        if (error !== undefined) this.fail(error)
      }
    } catch (cause) {
      this.unreadable("", cause)
    }
  }

  private failed(error: Err.LlmError): Effect.Effect<never, Err.LlmError> {
    this.reportedFailure = true
    return Effect.zipRight(reportError(this.endpoint.pool.report, this.lease.keyId, error), Effect.fail(error))
  }

  /**
   * Writes what the parser produced; on a parser failure, writes the events before it, then
   * fails, and stops reading the body.
   */
  private emit(ended: boolean): Events {
    const { endpoint, parser } = this
    const batch = this.pending
    this.pending = []
    const error = this.failure === undefined ? undefined : afterEvents(parser, this.emitted + batch.length, this.failure)
    this.emitted += batch.length
    this.deadlines.read(batch.length > 0)
    const next: Events = error !== undefined ? Channel.fromEffect(this.failed(error)) : ended ? Channel.void : this.loop
    if (error === undefined && ended) this.finished = true
    if (batch.length === 0) return next
    // a pool that chooses by latency samples a stream's time to its first event
    const first = this.emitted === batch.length && endpoint.pool.observe !== undefined
    this.recorder!.events(batch)
    const last = batch[batch.length - 1]!
    const written = first
      ? Channel.zipRight(Channel.fromEffect(endpoint.pool.observe!(this.lease)), Channel.zipRight(Channel.write(Chunk.unsafeFromArray(batch)), next))
      : Channel.zipRight(Channel.write(Chunk.unsafeFromArray(batch)), next)
    if (error !== undefined || last._tag !== "Finish") return written
    this.finished = true
    if (endpoint.usage === undefined) return written
    const usage = this.parts?.usage
    if (usage !== undefined && usage.record(endpoint.provider, this.model, last.usage, this.recorder!.ambient)) return written
    return Channel.zipRight(Channel.fromEffect(endpoint.usage.record(endpoint.provider, this.model, last.usage)), written)
  }

  private readFailed(error: TransportFailure): Effect.Effect<never, Err.LlmError> {
    return error.reason === "timeout"
      // a deadline is the stream's, not the key's: it is not reported
      ? Effect.fail(this.deadlines.timeout())
      // the text received may echo the key
      : this.failed(redactSecret(afterEvents(this.parser, this.emitted, networkError(this.endpoint, this.model, error)), this.lease.key))
  }

  private read(): Effect.Effect<ReadonlyArray<Uint8Array> | undefined, Err.LlmError> {
    const reply = this.reply
    const ms = this.deadlines.step(this.emitted > 0).left()
    const pulled = ms === Infinity
      ? reply.pull
      : reply.pullWithin !== undefined
      ? reply.pullWithin(ms)
      : Effect.timeoutFail(reply.pull, { duration: Math.max(0, ms), onTimeout: () => timedOutFailure })
    return Effect.catchAll(pulled, (error) => this.readFailed(error))
  }

  // Nothing may throw out of a channel's continuation (the channel would end as if the stream
  // had finished).
  private step(pieces: ReadonlyArray<Uint8Array> | undefined): Events {
    try {
      return this.stepUnsafe(pieces)
    } catch (cause) {
      this.unreadable("", cause)
      return Channel.fromEffect(Effect.suspend(() => this.failed(afterEvents(this.parser, this.emitted, this.failure!))))
    }
  }

  private stepUnsafe(pieces: ReadonlyArray<Uint8Array> | undefined): Events {
    // the decoder is made at the first byte: a stream that fails before holds none
    const decoder = this.decoder ??= new TextDecoder()
    if (pieces === undefined) {
      this.end(decoder.decode())
      return this.emit(true)
    }
    // one decode and one feed per read: undici hands over one piece per chunk of the
    // chunked encoding, often one per SSE event, and feeding them one by one costs more
    // than joining them
    let text: string
    try {
      text = decoder.decode(pieces.length === 1 ? pieces[0] : Buffer.concat(pieces), { stream: true })
    } catch (cause) {
      // past the string limit: no single read gets here under maxEventBytes, but a huge one might
      this.unreadable("", cause)
      return this.emit(false)
    }
    this.feed(text)
    // a body that has already ended ends here: no read more to learn it
    if (isDrained(this.reply)) {
      this.end(decoder.decode())
      return this.emit(true)
    }
    return this.emit(false)
  }
}
