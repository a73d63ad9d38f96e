/**
 * The two HTTP transports behind `Transport`: undici's dispatcher driven directly (one
 * handler object per request, no Readable, no AbortSignal), and any `@effect/platform`
 * HttpClient. Both give the request path the same shape: the whole reply, or its head and
 * a pull over its body.
 */
import * as Headers from "@effect/platform/Headers"
import type * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type { Dispatcher } from "undici"

export interface TransportRequest {
  readonly url: string
  readonly headers: Readonly<Record<string, string>>
  readonly body: string
  /** Names of headers that carry a secret, to hide from any span or log the transport writes. */
  readonly secretHeaders: ReadonlyArray<string | RegExp>
  /**
   * `text` reads at most this many bytes: a 2xx reply past it fails (`tooLarge`), an error
   * reply is cut there (its message is at the start).
   */
  readonly maxBodyBytes?: number | undefined
  /**
   * Gives up after this many millis (`timeout` failure) and aborts the request: `text` for the
   * whole reply, `stream` for its head. Honoured by transports whose `timeouts` is true.
   */
  readonly timeoutMs?: number | undefined
}

/** Why an exchange failed below HTTP: never carries the request, so never a key. */
export class TransportFailure {
  readonly _tag = "TransportFailure"
  constructor(
    readonly description: string,
    /** `network`: the connection failed; `tooLarge`: the reply passed `maxBodyBytes`; `timeout`: `timeoutMs` passed. */
    readonly reason: "network" | "tooLarge" | "timeout" = "network",
    /** For `tooLarge`, the cap. */
    readonly limit?: number | undefined
  ) {}
}

const tooLargeFailure = (limit: number) => new TransportFailure(`reply larger than ${limit} bytes`, "tooLarge", limit)
const timedOut = new TransportFailure("timed out", "timeout")

/** Runs `task` after `ms` on a plain timer; a deadline costs no fiber, only this (as the official SDKs' AbortController). */
const timer = (ms: number | undefined, task: () => void): (() => void) => {
  if (ms === undefined || ms === Infinity) return noop
  const handle = setTimeout(task, Math.max(0, Math.min(ms, 2 ** 31 - 1)))
  return () => clearTimeout(handle)
}
const noop = () => {}

export interface TextReply {
  readonly status: number
  /** Lower-case names; repeated headers joined with ", ". */
  readonly headers: Readonly<Record<string, string>>
  readonly body: string
}

export interface StreamReply {
  readonly status: number
  readonly headers: Readonly<Record<string, string>>
  /** Every body piece received since the last pull (waiting for one if none), or `undefined` at the end. */
  readonly pull: Effect.Effect<ReadonlyArray<Uint8Array> | undefined, TransportFailure>
  /** `pull`, failing with a `timeout` failure when nothing arrives within `ms`; without it, the caller bounds `pull`. */
  readonly pullWithin?: ((ms: number) => Effect.Effect<ReadonlyArray<Uint8Array> | undefined, TransportFailure>) | undefined
}

export interface Service {
  /** Sends and reads the whole reply. Interrupting it aborts the request. */
  readonly text: (request: TransportRequest) => Effect.Effect<TextReply, TransportFailure>
  /** Sends and resolves at the reply's head; the body is released (aborted if unread) when the scope closes. */
  readonly stream: (request: TransportRequest) => Effect.Effect<StreamReply, TransportFailure, Scope.Scope>
  /** Whether `text` and `stream` honour `timeoutMs` themselves; when not, the caller bounds them. */
  readonly timeouts?: boolean | undefined
}

// ---------------------------------------------------------------------------
// undici
// ---------------------------------------------------------------------------

const describe = (error: unknown): string => {
  if (typeof error === "object" && error !== null) {
    const e = error as { code?: unknown; message?: unknown; cause?: { code?: unknown; message?: unknown } }
    const own = [e.code, e.message].filter((part) => typeof part === "string" && part.length > 0).join(": ")
    const inner = e.cause === undefined ? "" : String(e.cause.code ?? e.cause.message ?? "")
    return [own, inner].filter((part) => part.length > 0).join(": ") || "unknown"
  }
  return String(error)
}

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
    return new TransportFailure(describe(error))
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
        if (!cancelled) resume(Effect.fail(new TransportFailure(describe(error))))
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

const undiciStream = (dispatcher: Dispatcher) => (request: TransportRequest) =>
  Effect.flatMap(
    Effect.async<StreamReply & { readonly release: () => void }, TransportFailure>((resume) => {
      let controller: Controller | undefined
      let cancelled = false
      let headResolved = false
      let ended = false
      let failure: TransportFailure | undefined
      let queued: Array<Uint8Array> = []
      let queuedBytes = 0
      let wake: (() => void) | undefined
      const notify = () => {
        const w = wake
        wake = undefined
        w?.()
      }
      const take = (): ReadonlyArray<Uint8Array> | undefined => {
        const batch = queued
        queued = []
        queuedBytes = 0
        if (controller !== undefined && !ended) controller.resume()
        return batch
      }
      const waitFor = (ms: number | undefined) =>
        Effect.async<ReadonlyArray<Uint8Array> | undefined, TransportFailure>((resumePull) => {
          const clear = timer(ms, () => {
            wake = undefined
            resumePull(Effect.fail(timedOut))
          })
          wake = () => {
            clear()
            if (queued.length > 0) resumePull(Effect.succeed(take()))
            else if (failure !== undefined) resumePull(Effect.fail(failure))
            else resumePull(Effect.succeed(undefined))
          }
          return Effect.sync(() => {
            clear()
            wake = undefined
          })
        })
      const pullWithin = (ms: number | undefined): Effect.Effect<ReadonlyArray<Uint8Array> | undefined, TransportFailure> =>
        Effect.suspend(() => {
          if (queued.length > 0) return Effect.succeed(take())
          if (failure !== undefined) return Effect.fail(failure)
          if (ended) return Effect.succeed(undefined)
          return ms !== undefined && ms <= 0 ? Effect.fail(timedOut) : waitFor(ms)
        })
      const pull = pullWithin(undefined)
      const clearHead = timer(request.timeoutMs, () => {
        if (headResolved || cancelled) return
        cancelled = true
        resume(Effect.fail(timedOut))
        controller?.abort(interrupted())
      })
      const release = () => {
        clearHead()
        cancelled = true
        if (!ended && failure === undefined) controller?.abort(interrupted())
      }
      const refused = dispatch(dispatcher, request, {
        onRequestStart(c: Controller) {
          controller = c
          if (cancelled) c.abort(interrupted())
        },
        onResponseStart(_c: Controller, statusCode: number, raw: Record<string, string | Array<string>>) {
          if (statusCode < 200 || cancelled) return
          headResolved = true
          clearHead()
          resume(Effect.succeed({ status: statusCode, headers: flatHeaders(raw), pull, pullWithin, release }))
        },
        onResponseData(c: Controller, piece: Buffer) {
          queued.push(piece)
          queuedBytes += piece.length
          if (queuedBytes > HIGH_WATER_MARK) c.pause()
          notify()
        },
        onResponseEnd() {
          ended = true
          notify()
        },
        onResponseError(_c: Controller, error: Error) {
          if (cancelled) return
          clearHead()
          failure = new TransportFailure(describe(error))
          if (headResolved) notify()
          else resume(Effect.fail(failure))
        }
      })
      if (refused !== undefined) {
        clearHead()
        return resume(Effect.fail(refused))
      }
      return Effect.sync(release)
    }),
    (reply) => Effect.as(Effect.addFinalizer(() => Effect.sync(reply.release)), reply)
  )

export const makeUndici = (dispatcher: Dispatcher): Service => ({
  text: undiciText(dispatcher),
  stream: undiciStream(dispatcher),
  timeouts: true
})

// ---------------------------------------------------------------------------
// @effect/platform HttpClient
// ---------------------------------------------------------------------------

const toRequest = (request: TransportRequest) =>
  HttpClientRequest.post(request.url).pipe(
    HttpClientRequest.setHeaders(request.headers),
    HttpClientRequest.bodyText(request.body, "application/json")
  )

const failure = (error: unknown) => new TransportFailure(describe(platformCause(error)))

/** A platform error's own description: its reason and the underlying cause, never its request. */
const platformCause = (error: unknown): unknown => {
  if (typeof error === "object" && error !== null && "reason" in error) {
    const e = error as { reason: unknown; cause?: unknown }
    return { code: e.reason, cause: e.cause }
  }
  return error
}

/**
 * A body read whole, up to `max` bytes: past it, a reply that must be read whole fails
 * (`failPastMax`), any other is cut at `max`.
 */
const readCapped = (
  body: Stream.Stream<Uint8Array, unknown>,
  max: number,
  failPastMax: boolean
): Effect.Effect<string, TransportFailure> =>
  Effect.suspend(() => {
    const pieces: Array<Uint8Array> = []
    let size = 0
    return body.pipe(
      Stream.mapError(failure),
      Stream.takeWhile(() => size <= max),
      Stream.runForEach((piece) =>
        Effect.suspend(() => {
          size += piece.length
          if (size <= max) pieces.push(piece)
          else if (failPastMax) return Effect.fail(tooLargeFailure(max))
          else pieces.push(piece.subarray(0, piece.length - (size - max)))
          return Effect.void
        })
      ),
      Effect.map(() => Buffer.concat(pieces).toString("utf8"))
    )
  })

export const makeHttpClient = (client: HttpClient.HttpClient): Service => {
  const execute = (request: TransportRequest) =>
    client.execute(toRequest(request)).pipe(
      // the client's own span must not show the key, whatever header carries it
      Effect.locally(Headers.currentRedactedNames, request.secretHeaders),
      Effect.mapError(failure)
    )
  const within = <A, R>(request: TransportRequest, effect: Effect.Effect<A, TransportFailure, R>) =>
    request.timeoutMs === undefined || request.timeoutMs === Infinity
      ? effect
      : Effect.timeoutFail(effect, { duration: Math.max(0, request.timeoutMs), onTimeout: () => timedOut })
  return {
    timeouts: true,
    text: (request) =>
      within(request, Effect.scoped(
        Effect.flatMap(execute(request), (response) =>
          Effect.map(
            readCapped(response.stream, request.maxBodyBytes ?? Infinity, response.status >= 200 && response.status < 300),
            (body): TextReply => ({ status: response.status, headers: response.headers, body })
          ))
      )),
    stream: (request) =>
      Effect.flatMap(within(request, execute(request)), (response) =>
        Effect.map(Stream.toPull(response.stream), (pullBody): StreamReply => ({
          status: response.status,
          headers: response.headers,
          pull: Effect.catchAll(
            Effect.map(pullBody, Chunk.toReadonlyArray),
            (error) => Option.isNone(error) ? Effect.succeed(undefined) : Effect.fail(failure(error.value))
          )
        })))
  }
}
