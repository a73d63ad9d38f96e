/**
 * What Retry and Fallback share about streams: once the caller has received an event, a
 * failure can no longer be hidden by running the request again (the caller would see a
 * duplicated prefix), so it becomes a partial, non-retryable `StreamError` that carries
 * the text delivered so far.
 */
import * as Duration from "effect/Duration"
import * as Stream from "effect/Stream"
import * as Err from "../../LlmError.js"
import type { StreamEvent } from "../../Message.js"
import { withFields } from "./errors.js"

/** What a stream's consumer has received so far. */
export interface Delivered {
  readonly events: number
  /** The text of the `TextDelta` events received. */
  readonly text: string
}

/** Given to a stream's source, which calls it once with a way to read what it has delivered. */
export type Watch = (delivered: () => Delivered) => void

type EventStream = Stream.Stream<StreamEvent, Err.LlmError>

// Streams whose source can say what it delivered, each mapped to a way to make it again with
// a watch. Retry and Fallback then need no stage that counts every chunk (~2 KB of garbage
// per chunk, and one channel executor per stream).
const watchables = new WeakMap<EventStream, (watch: Watch) => EventStream>()

/** A stream made by `make`, which can be made again with a watch (see `watchableSource`). */
export const watchable = (make: (watch: Watch | undefined) => EventStream): EventStream => {
  const stream = make(undefined)
  watchables.set(stream, make)
  return stream
}

const nothing: Delivered = { events: 0, text: "" }

/**
 * `stream` ready to run, and what its consumer has received so far: asked of the stream's
 * source when it can say (a provider's own stream), else counted by a stage on every chunk.
 */
export const tracked = <R>(stream: Stream.Stream<StreamEvent, Err.LlmError, R>): {
  readonly stream: Stream.Stream<StreamEvent, Err.LlmError, R>
  readonly delivered: () => Delivered
} => {
  const source = watchables.get(stream as EventStream)
  if (source !== undefined) {
    let read: (() => Delivered) | undefined
    return { stream: source((watch) => (read = watch)), delivered: () => read?.() ?? nothing }
  }
  let events = 0
  let text = ""
  const counted = Stream.mapChunks(stream, (chunk) => {
    for (const event of chunk) {
      events++
      if (event._tag === "TextDelta") text += event.text
    }
    return chunk
  })
  return { stream: counted, delivered: () => ({ events, text }) }
}

/** A stream failure after output began: neither retried nor fallen back. */
export const isPartial = (error: Err.LlmError): boolean => error._tag === "StreamError" && error.partial

/** The error's `retryAfter` hint in millis, when it has one. */
export const retryAfterMillis = (error: Err.LlmError): number | undefined => {
  const hint = (error as { readonly retryAfter?: Duration.Duration | undefined }).retryAfter
  return hint === undefined ? undefined : Duration.toMillis(hint)
}

export const toPartial = (error: Err.LlmError, text: string): Err.StreamError =>
  error._tag === "StreamError" && error.partial && !error.retryable
    ? (error.partialText === text ? error : withFields(error, { partialText: text }))
    : new Err.StreamError({
      provider: error.provider,
      model: error.model,
      message: error._tag === "StreamError" && error.partial
        ? error.message
        : `stream failed after output began: ${error.message}`,
      partial: true,
      partialText: text,
      retryable: false
    })

/**
 * A failure after the stream's first event becomes a partial `StreamError` whose
 * `partialText` is exactly the text delivered.
 */
export const guardPartial = <R>(
  stream: Stream.Stream<StreamEvent, Err.LlmError, R>
): Stream.Stream<StreamEvent, Err.LlmError, R> =>
  Stream.suspend(() => {
    const run = tracked(stream)
    return Stream.catchAll(run.stream, (error) => {
      const sent = run.delivered()
      return Stream.fail(sent.events === 0 ? error : toPartial(error, sent.text))
    })
  })
