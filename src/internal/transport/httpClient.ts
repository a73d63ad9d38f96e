/** The transport over any `@effect/platform` HttpClient: the slower, pluggable path. */
import * as Headers from "@effect/platform/Headers"
import type * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import { describe, type Service, type StreamReply, timedOut, tooLargeFailure, type TextReply, type TransportFailure, type TransportRequest, networkFailure } from "./types.js"


const toRequest = (request: TransportRequest) =>
  HttpClientRequest.post(request.url).pipe(
    HttpClientRequest.setHeaders(request.headers),
    HttpClientRequest.bodyText(request.body, "application/json")
  )

const failure = (error: unknown) => networkFailure(describe(platformCause(error)))

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
