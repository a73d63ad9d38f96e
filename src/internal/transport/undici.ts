/**
 * The undici transport: the dispatcher driven directly, one handler object per request, no
 * Readable and no AbortSignal; deadlines are plain timers that abort the request.
 */
import * as Effect from "effect/Effect"
import type { Dispatcher } from "undici"
import { describe, type Service, type StreamReply, timedOut, timer, tooLargeFailure, type TextReply, type TransportFailure, type TransportRequest, networkFailure } from "./types.js"



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
          failure = networkFailure(describe(error))
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

