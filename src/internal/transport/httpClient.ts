/**
 * The transport over any `@effect/platform` HttpClient: the pluggable path.
 *
 * Each request runs in a scope of its own, which the client ties its abort to
 * (`HttpClient.withScope`): a deadline is a plain timer that closes that scope, so the
 * request fails at once and no fiber waits beside it. The reply's body is read with the
 * client's own `text` when its length is known to fit the cap, and pulled otherwise.
 */
import * as Headers from "@effect/platform/Headers"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberRef from "effect/FiberRef"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { describe, networkFailure, type Service, type StreamReply, timedOut, timer, tooLargeFailure, type TextReply, type TransportFailure, type TransportRequest } from "./types.js"

const toRequest = (request: TransportRequest) =>
  HttpClientRequest.post(request.url).pipe(
    HttpClientRequest.setHeaders(request.headers),
    HttpClientRequest.bodyText(request.body, "application/json")
  )

/** A platform error's own description: its reason and the underlying cause, never its request. */
const platformCause = (error: unknown): unknown => {
  if (typeof error === "object" && error !== null && "reason" in error) {
    const e = error as { reason: unknown; cause?: unknown }
    return { code: e.reason, cause: e.cause }
  }
  return error
}

/**
 * One request's scope, which holds only the client's abort (a client this transport is given
 * requires no Scope: `withScope` adds the only finalizer), and the deadlines armed on it.
 * `arm(ms)` starts a timer that, when it passes, marks the request timed out and closes the
 * scope: the client aborts the request and the wait in progress fails. `abort` closes it when
 * the exchange ends early; a body read to its end needs no abort (an abort builds a
 * `DOMException` and dispatches an event: ~5% of a JSON call).
 */
class Lifetime {
  timedOut = false
  /** The body was read to its end (or failed): nothing left to abort. */
  done = false
  constructor(readonly scope: Scope.CloseableScope) {}
  arm(ms: number | undefined): () => void {
    return timer(ms, () => {
      if (this.timedOut || this.done) return
      this.timedOut = true
      // only when a deadline passes: the one fiber here runs the client's abort
      Effect.runFork(Scope.close(this.scope, Exit.void))
    })
  }
  /** A client failure as the transport's: the deadline's own when it passed, else the network's. */
  failure(error: unknown): TransportFailure {
    return this.timedOut ? timedOut : networkFailure(describe(platformCause(error)))
  }
  readonly abort = Effect.suspend(() => (this.done ? Effect.void : Scope.close(this.scope, Exit.void)))
}

/**
 * A body read whole, up to `max` bytes: past it, a reply that must be read whole fails
 * (`failPastMax`), any other is cut at `max`. The client's `text` when the reply says a length
 * within the cap, a pull loop otherwise.
 */
const readBody = (
  response: HttpClientResponse.HttpClientResponse,
  max: number,
  failPastMax: boolean,
  lifetime: Lifetime
): Effect.Effect<string, TransportFailure> => {
  const length = Number(response.headers["content-length"] ?? NaN)
  if (length <= max || max === Infinity) {
    return Effect.matchEffect(response.text, {
      onFailure: (error) => Effect.fail(lifetime.failure(error)),
      // a client that decodes a compressed body reads more than the header said
      onSuccess: (text) => failPastMax && text.length > max / 4 && Buffer.byteLength(text) > max ? Effect.fail(tooLargeFailure(max)) : Effect.succeed(text)
    })
  }
  if (failPastMax && length > max) return Effect.fail(tooLargeFailure(max))
  return readCapped(response.stream, max, failPastMax, lifetime)
}

/** The body pulled piece by piece, in the request's scope (no `Stream.run*`: each forks a fiber). */
const readCapped = (
  body: Stream.Stream<Uint8Array, unknown>,
  max: number,
  failPastMax: boolean,
  lifetime: Lifetime
): Effect.Effect<string, TransportFailure> =>
  Effect.scoped(Effect.flatMap(Stream.toPull(body), (pull) => {
    const pieces: Array<Uint8Array> = []
    let size = 0
    const whole = () => Effect.succeed(Buffer.concat(pieces).toString("utf8"))
    const loop: Effect.Effect<string, TransportFailure> = Effect.matchEffect(pull, {
      onFailure: (error) => (Option.isNone(error) ? whole() : Effect.fail(lifetime.failure(error.value))),
      onSuccess: (chunk) => {
        for (const piece of chunk) {
          size += piece.length
          if (size <= max) pieces.push(piece)
          else if (failPastMax) return Effect.fail(tooLargeFailure(max))
          else {
            pieces.push(piece.subarray(0, piece.length - (size - max)))
            return whole()
          }
        }
        return loop
      }
    })
    return loop
  }))

const matches = (names: ReadonlyArray<string | RegExp>, header: string): boolean => {
  for (const name of names) if (typeof name === "string" ? name.toLowerCase() === header : name.test(header)) return true
  return false
}

/** Whether every header of `request` that holds a secret is one `names` already hides. */
const hidden = (names: ReadonlyArray<string | RegExp>, request: TransportRequest): boolean => {
  for (const header in request.headers) {
    const lower = header.toLowerCase()
    if (matches(request.secretHeaders, lower) && !matches(names, lower)) return false
  }
  return true
}

export const makeHttpClient = (client: HttpClient.HttpClient): Service => {
  const scoped = HttpClient.withScope(client)
  // the client's own span must not show the key, whatever header carries it: the names it
  // hides are widened for the request when they do not cover its secret headers already
  const execute = (request: TransportRequest, lifetime: Lifetime) =>
    Scope.extend(
      FiberRef.getWith(Headers.currentRedactedNames, (names) => {
        const sent = scoped.execute(toRequest(request))
        return hidden(names, request) ? sent : Effect.locally(sent, Headers.currentRedactedNames, request.secretHeaders)
      }),
      lifetime.scope
    )
  return {
    timeouts: true,
    text: (request) =>
      Effect.flatMap(Scope.make(), (scope) => {
        const lifetime = new Lifetime(scope)
        const cancel = lifetime.arm(request.timeoutMs)
        return Effect.onExit(
          Effect.flatMap(
            Effect.mapError(execute(request, lifetime), (error) => lifetime.failure(error)),
            (response) =>
              Effect.map(
                readBody(response, request.maxBodyBytes ?? Infinity, response.status >= 200 && response.status < 300, lifetime),
                (body): TextReply => ({ status: response.status, headers: response.headers, body })
              )
          ),
          (exit) => {
            cancel()
            lifetime.done = Exit.isSuccess(exit)
            return lifetime.abort
          }
        )
      }),
    stream: (request) =>
      Effect.flatMap(Scope.make(), (scope) => {
        const lifetime = new Lifetime(scope)
        const cancelHead = lifetime.arm(request.timeoutMs)
        return Effect.flatMap(
          Effect.onExit(Effect.mapError(execute(request, lifetime), (error) => lifetime.failure(error)), (exit) => {
            cancelHead()
            return Exit.isSuccess(exit) ? Effect.void : lifetime.abort
          }),
          (response) =>
            // the reader's finalizer runs first (added last), then the abort unless the body ended
            Effect.zipRight(
              Effect.scopeWith((outer) => Scope.addFinalizer(outer, lifetime.abort)),
              Effect.map(Stream.toPull(response.stream), (pullBody): StreamReply => {
                const pull = Effect.matchEffect(pullBody, {
                  onFailure: (error) => {
                    if (Option.isSome(error)) return Effect.fail(lifetime.failure(error.value))
                    lifetime.done = true
                    return Effect.succeed(undefined)
                  },
                  onSuccess: (chunk) => Effect.succeed(Chunk.toReadonlyArray(chunk))
                })
                return {
                  status: response.status,
                  headers: response.headers,
                  pull,
                  pullWithin: (ms) =>
                    Effect.suspend(() => {
                      if (ms <= 0) return Effect.fail(timedOut)
                      const cancel = lifetime.arm(ms)
                      return Effect.onExit(pull, () => Effect.sync(cancel))
                    })
                }
              })
            )
        )
      })
  }
}
