/**
 * The undici transport: the dispatcher driven directly, one handler object per request, no
 * Readable and no AbortSignal; deadlines are plain timers that abort the request.
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import type { Dispatcher } from "undici"
import { describe, type ScopelessReply, type Service, type StreamReply, timedOut, timer, tooLargeFailure, type TextReply, type TransportFailure, type TransportRequest, networkFailure, untraced, drained, scopelessStream } from "./types.js"



const flatHeaders = (headers: Record<string, string | Array<string> | undefined>): Record<string, string> => {
  const flat: Record<string, string> = {}
  for (const name in headers) {
    const value = headers[name]
    if (value !== undefined) flat[name.toLowerCase()] = typeof value === "string" ? value : value.join(", ")
  }
  return flat
}

/** `origin` and `path` of a URL, parsed once per distinct URL (a provider sends to a handful). */
const targets = new Map<string, { readonly origin: string; readonly path: string }>()
const targetOf = (url: string) => {
  let target = targets.get(url)
  if (target === undefined) {
    const parsed = new URL(url)
    target = { origin: parsed.origin, path: parsed.pathname + parsed.search }
    if (targets.size < 1024) targets.set(url, target)
  }
  return target
}

const dispatchOptions = (request: TransportRequest): Dispatcher.DispatchOptions => {
  const { origin, path } = targetOf(request.url)
  return { origin, path, method: "POST", headers: request.headers as Record<string, string>, body: request.body }
}

/**
 * Starts the exchange, or returns why it could not start (a URL that does not parse, a header
 * undici refuses): a typed failure, never a defect.
 */
const dispatch = (dispatcher: Dispatcher, request: TransportRequest, handler: object): TransportFailure | undefined => {
  try {
    dispatcher.dispatch(dispatchOptions(request), handler as Dispatcher.DispatchHandler)
    return undefined
  } catch (error) {
    return networkFailure(describe(error))
  }
}

interface Controller {
  abort(reason: Error): void
  pause(): void
  resume(): void
}

const interrupted = () => new Error("interrupted")

/** One request whose whole reply is buffered before the caller resumes: one async boundary. */
const undiciText = (dispatcher: Dispatcher) => (request: TransportRequest) =>
  Effect.async<TextReply, TransportFailure>((resume) => {
    let controller: Controller | undefined
    let cancelled = false
    let status = 0
    let headers: Record<string, string> = {}
    const pieces: Array<Buffer> = []
    let size = 0
    const max = request.maxBodyBytes ?? Infinity
    const bodyText = () => (pieces.length === 1 ? pieces[0]!.toString("utf8") : Buffer.concat(pieces).toString("utf8"))
    const clear = timer(request.timeoutMs, () => {
      if (cancelled) return
      cancelled = true
      resume(Effect.fail(timedOut))
      controller?.abort(interrupted())
    })
    const refused = dispatch(dispatcher, request, {
      onRequestStart(c: Controller) {
        controller = c
        if (cancelled) c.abort(interrupted())
      },
      onResponseStart(_c: Controller, statusCode: number, raw: Record<string, string | Array<string>>) {
        status = statusCode
        headers = flatHeaders(raw)
      },
      onResponseData(c: Controller, piece: Buffer) {
        if (cancelled) return
        size += piece.length
        if (size <= max) return void pieces.push(piece)
        // stop reading: a 2xx reply past the cap fails, an error reply keeps its start
        cancelled = true
        clear()
        if (status >= 200 && status < 300) resume(Effect.fail(tooLargeFailure(max)))
        else {
          pieces.push(piece.subarray(0, piece.length - (size - max)))
          resume(Effect.succeed({ status, headers, body: bodyText() }))
        }
        c.abort(interrupted())
      },
      onResponseEnd() {
        clear()
        if (!cancelled) resume(Effect.succeed({ status, headers, body: bodyText() }))
      },
      onResponseError(_c: Controller, error: Error) {
        clear()
        if (!cancelled) resume(Effect.fail(networkFailure(describe(error))))
      }
    })
    if (refused !== undefined) {
      clear()
      return resume(Effect.fail(refused))
    }
    return Effect.sync(() => {
      clear()
      cancelled = true
      controller?.abort(interrupted())
    })
  })

/** Above this many unread bytes the socket is paused until the reader catches up. */
const HIGH_WATER_MARK = 256 * 1024

/**
 * One streamed exchange: undici's handler, and the reply's pull over what it received. A class
 * rather than closures, since every open stream holds one; a read's deadline is one timer kept
 * for the whole stream and moved only when a read's deadline comes sooner than the one it is
 * set for (a read that brings events renews the wait: the timer, when it fires, re-arms for
 * what is left), not one timer per read.
 */
class UndiciStream implements ScopelessReply {
  status = 0
  headers: Readonly<Record<string, string>> = {}
  readonly pull: Effect.Effect<ReadonlyArray<Uint8Array> | undefined, TransportFailure>
  private controller: Controller | undefined = undefined
  private cancelled = false
  private headResolved = false
  private ended = false
  private failure: TransportFailure | undefined = undefined
  private queued: Array<Uint8Array> = []
  private queuedBytes = 0
  private resumeHead: ((effect: Effect.Effect<UndiciStream, TransportFailure>) => void) | undefined
  private clearHead: () => void = noop
  /** The read waiting for a piece, its deadline (`performance.now()` millis), and the timer that bounds it. */
  private resumeRead: ((effect: Effect.Effect<ReadonlyArray<Uint8Array> | undefined, TransportFailure>) => void) | undefined = undefined
  private readDeadline = Infinity
  private readTimer: ReturnType<typeof setTimeout> | undefined = undefined
  private readTimerAt = Infinity
  /** The wait of one read, built once: the deadline is `readDeadline`. */
  private readonly wait: Effect.Effect<ReadonlyArray<Uint8Array> | undefined, TransportFailure>
  private readonly stopWaiting: Effect.Effect<void>

  constructor() {
    this.pull = Effect.suspend(() => this.next(Infinity))
    this.stopWaiting = Effect.sync(() => {
      this.resumeRead = undefined
    })
    this.wait = Effect.async((resume) => {
      this.resumeRead = resume
      if (this.readDeadline !== Infinity) this.armRead()
      return this.stopWaiting
    })
  }

  /** Sends; resolves at a 2xx head (with this as the reply), fails on an error, a refusal or the head's deadline. */
  start(dispatcher: Dispatcher, request: TransportRequest): Effect.Effect<UndiciStream, TransportFailure> {
    return Effect.async((resume) => {
      this.resumeHead = resume
      this.clearHead = timer(request.timeoutMs, () => {
        if (this.headResolved || this.cancelled) return
        this.cancelled = true
        this.settleHead(Effect.fail(timedOut))
        this.controller?.abort(interrupted())
      })
      const refused = dispatch(dispatcher, request, this)
      if (refused !== undefined) {
        this.clearHead()
        return this.settleHead(Effect.fail(refused))
      }
      return Effect.sync(() => this.release())
    })
  }

  [drained](): boolean {
    return this.ended && this.queued.length === 0 && this.failure === undefined
  }

  pullWithin(ms: number): Effect.Effect<ReadonlyArray<Uint8Array> | undefined, TransportFailure> {
    return Effect.suspend(() => this.next(ms))
  }

  readonly finalizer = (): Effect.Effect<void> => Effect.sync(() => this.release())

  /** Aborts an unfinished body and stops every timer; idempotent. */
  release(): void {
    this.clearHead()
    this.cancelled = true
    this.resumeRead = undefined
    if (this.readTimer !== undefined) clearTimeout(this.readTimer)
    this.readTimer = undefined
    if (!this.ended && this.failure === undefined) this.controller?.abort(interrupted())
  }

  private settleHead(effect: Effect.Effect<UndiciStream, TransportFailure>): void {
    const resume = this.resumeHead
    this.resumeHead = undefined
    resume?.(effect)
  }

  private next(ms: number): Effect.Effect<ReadonlyArray<Uint8Array> | undefined, TransportFailure> {
    if (this.queued.length > 0) return Effect.succeed(this.take())
    if (this.failure !== undefined) return Effect.fail(this.failure)
    if (this.ended) return Effect.succeed(undefined)
    if (ms <= 0) return Effect.fail(timedOut)
    this.readDeadline = ms === Infinity ? Infinity : performance.now() + ms
    return this.wait
  }

  private take(): ReadonlyArray<Uint8Array> {
    const batch = this.queued
    this.queued = []
    this.queuedBytes = 0
    if (this.controller !== undefined && !this.ended) this.controller.resume()
    return batch
  }

  /** The timer fires no later than the waiting read's deadline; one set for later is moved. */
  private armRead(): void {
    if (this.readTimer !== undefined && this.readTimerAt <= this.readDeadline) return
    if (this.readTimer !== undefined) clearTimeout(this.readTimer)
    const ms = Math.max(0, Math.min(this.readDeadline - performance.now(), 2 ** 31 - 1))
    this.readTimerAt = performance.now() + ms
    this.readTimer = setTimeout(this.onReadTimer, ms)
  }

  private readonly onReadTimer = (): void => {
    this.readTimer = undefined
    this.readTimerAt = Infinity
    const resume = this.resumeRead
    if (resume === undefined || this.readDeadline === Infinity) return
    // a timer set for an earlier read: what is left of this read's wait
    if (this.readDeadline - performance.now() > 1) return this.armRead()
    this.resumeRead = undefined
    resume(Effect.fail(timedOut))
  }

  /** Wakes the waiting read, if any, with what arrived, the failure, or the end. */
  private notify(): void {
    const resume = this.resumeRead
    if (resume === undefined) return
    this.resumeRead = undefined
    if (this.queued.length > 0) resume(Effect.succeed(this.take()))
    else if (this.failure !== undefined) resume(Effect.fail(this.failure))
    else resume(Effect.succeed(undefined))
  }

  // undici's handler

  onRequestStart(c: Controller): void {
    this.controller = c
    if (this.cancelled) c.abort(interrupted())
  }

  onResponseStart(_c: Controller, statusCode: number, raw: Record<string, string | Array<string>>): void {
    if (statusCode < 200 || this.cancelled) return
    this.headResolved = true
    this.clearHead()
    this.status = statusCode
    this.headers = flatHeaders(raw)
    this.settleHead(Effect.succeed(this))
  }

  onResponseData(c: Controller, piece: Buffer): void {
    this.queued.push(piece)
    this.queuedBytes += piece.length
    if (this.queuedBytes > HIGH_WATER_MARK) c.pause()
    this.notify()
  }

  onResponseEnd(): void {
    this.ended = true
    if (this.readTimer !== undefined) clearTimeout(this.readTimer)
    this.readTimer = undefined
    this.notify()
  }

  onResponseError(_c: Controller, error: Error): void {
    if (this.cancelled) return
    this.clearHead()
    this.failure = networkFailure(describe(error))
    if (this.headResolved) this.notify()
    else this.settleHead(Effect.fail(this.failure))
  }
}

const noop = () => {}

// made outside any closure over the request, so that the scope's finalizer does not hold its body
const releasedWithScope = (reply: UndiciStream): Effect.Effect<StreamReply, never, Scope.Scope> =>
  Effect.as(Effect.addFinalizer(reply.finalizer), reply)

const undiciStream = (dispatcher: Dispatcher) => (request: TransportRequest) =>
  Effect.flatMap(Effect.suspend(() => new UndiciStream().start(dispatcher, request)), releasedWithScope)

export const makeUndici = (dispatcher: Dispatcher): Service => {
  const transport: Service = { text: undiciText(dispatcher), stream: undiciStream(dispatcher), timeouts: true }
  untraced.add(transport)
  scopelessStream.set(transport, (request) => Effect.suspend(() => new UndiciStream().start(dispatcher, request)))
  return transport
}

