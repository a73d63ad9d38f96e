/**
 * A model's stream as a Server-Sent-Events reply of `@effect/platform`'s HTTP server, for a
 * browser's `EventSource` or `fetch`: `LanguageModel.stream`, `streamText` or `streamObject`.
 *
 * ```ts
 * const Routes = HttpRouter.empty.pipe(
 *   HttpRouter.get("/chat", ServerSentEvents.response(LanguageModel.streamText({ prompt: "Hello" })))
 * )
 * ```
 *
 * Each event is one frame, `event: <its tag>` and `data: <JSON>`: its fields without the tag
 * (`TextDelta` `{ "text" }`, with `"step"` from `streamText`; `ToolCall`, `ToolResult`
 * `{ "step", "id", "name", "isError", "content" }`, `Partial` `{ "attempt", "value" }`, …).
 * `Finish` carries `{ "text", "finishReason", "usage" }` from `streamText`, the finish reason,
 * usage, id, model and provider from `stream`; `StepFinish` `{ "step", "finishReason", "usage" }`;
 * `Object` `{ "value", "attempts" }`. A stream that fails ends with an `error` frame,
 * `{ "_tag", "message", "retryable" }`, since the status has gone out already. A client that
 * goes away interrupts the stream, which aborts the provider's request.
 *
 * @since 0.1.0
 */
import type * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import type * as Effect from "effect/Effect"
import type * as Stream from "effect/Stream"
import * as internal from "./internal/serverSentEvents.js"

/**
 * What can be sent: the events of `LanguageModel.stream`, `streamText` and `streamObject`.
 * @since 0.1.0 @category models
 */
export type Event = internal.Event

/**
 * The stream as a `text/event-stream` response (`cache-control: no-cache`, and
 * `x-accel-buffering: no` so that a proxy passes each event on), with `headers` of your own.
 * What the stream needs is taken from the context of the effect.
 * @since 0.1.0 @category constructors
 */
export const response: <E, R>(
  events: Stream.Stream<Event, E, R>,
  options?: { readonly headers?: Readonly<Record<string, string>> | undefined }
) => Effect.Effect<HttpServerResponse.HttpServerResponse, never, R> = internal.response

/**
 * The frames as bytes, for a server other than `@effect/platform`'s; a failure is the last frame.
 * @since 0.1.0 @category encoding
 */
export const encode: <E, R>(events: Stream.Stream<Event, E, R>) => Stream.Stream<Uint8Array, never, R> = internal.encode
