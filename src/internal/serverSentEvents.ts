/**
 * A stream of a model's events as Server-Sent Events: one `event: <tag>` / `data: <JSON>`
 * frame per event, the frames of one chunk written at once, and a failure as a last `error`
 * frame (the response has begun: its status can no longer say it). `@effect/platform`'s
 * `HttpServerResponse` is loaded on first use, so the main entry does not pay for a server.
 */
import type * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Cause from "effect/Cause"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import type { ObjectStreamEvent, TextStreamEvent } from "../LanguageModel.js"
import type { StreamEvent } from "../Message.js"

export type Event = StreamEvent | TextStreamEvent | ObjectStreamEvent<unknown>

/** What a frame carries of an event: all of it but its tag, except where that is the whole transcript. */
const dataOf = (event: Event): unknown => {
  switch (event._tag) {
    case "Finish": {
      if ("result" in event) return { text: event.result.text, finishReason: event.result.finishReason, usage: event.result.usage }
      const { _tag, reasoningState: _state, ...finish } = event
      return finish
    }
    case "StepFinish":
      return { step: event.step.index, finishReason: event.step.response.finishReason, usage: event.step.response.usage }
    case "ToolResult": {
      const { id, name, isError, content } = event.result
      return { step: event.step, id, name, isError, content }
    }
    case "Object":
      return { value: event.value, attempts: event.attempts }
    default: {
      const { _tag, ...rest } = event
      return rest
    }
  }
}

const frame = (name: string, data: unknown): string => `event: ${name}\ndata: ${JSON.stringify(data)}\n\n`

const eventFrame = (event: Event): string => {
  try {
    return frame(event._tag, dataOf(event))
  } catch {
    // a value JSON cannot write (a bigint, a cycle) in an object the schema decoded
    return frame("error", { _tag: "EncodeError", message: `the ${event._tag} event could not be written as JSON` })
  }
}

/** The last frame of a stream that failed: the error's tag and message (an LlmError's never holds a key). */
const failureFrame = <E>(cause: Cause.Cause<E>): string => {
  const failure = Cause.failureOption(cause)
  if (Option.isNone(failure)) return frame("error", { _tag: "Defect", message: "the stream ended with an internal error" })
  const error = failure.value as { readonly _tag?: unknown; readonly message?: unknown; readonly retryable?: unknown }
  return frame("error", {
    _tag: typeof error._tag === "string" ? error._tag : "Error",
    message: typeof error.message === "string" ? error.message : String(failure.value),
    ...(typeof error.retryable === "boolean" ? { retryable: error.retryable } : {})
  })
}

const encoder = new TextEncoder()

export const encode = <E, R>(events: Stream.Stream<Event, E, R>): Stream.Stream<Uint8Array, never, R> =>
  events.pipe(
    Stream.mapChunks((chunk) => Chunk.of(encoder.encode(Chunk.toReadonlyArray(chunk).map(eventFrame).join("")))),
    Stream.catchAllCause((cause) => (Cause.isInterruptedOnly(cause) ? Stream.failCause(cause as Cause.Cause<never>) : Stream.make(encoder.encode(failureFrame(cause)))))
  )

export const response = <E, R>(
  events: Stream.Stream<Event, E, R>,
  options?: { readonly headers?: Readonly<Record<string, string>> | undefined }
): Effect.Effect<HttpServerResponse.HttpServerResponse, never, R> =>
  Effect.flatMap(Effect.promise(() => import("@effect/platform/HttpServerResponse")), (Http) =>
    Effect.map(Effect.context<R>(), (context) =>
      Http.stream(Stream.provideContext(encode(events), context), {
        contentType: "text/event-stream",
        // no cache, and no buffering by a proxy (nginx) that would hold the events back
        headers: { "cache-control": "no-cache", "x-accel-buffering": "no", ...options?.headers }
      })))
