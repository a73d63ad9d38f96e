/**
 * Stream combinators the decorators share, cheaper than Effect's own on the path every event
 * takes: in Effect 3, a stream that provides a context (`Stream.withSpan` provides its span as
 * the parent) re-applies it on every channel step, ~13 KB per read of a provider's body, and
 * `Stream.unwrap` flattens a stream of streams.
 */
import * as Channel from "effect/Channel"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Stream from "effect/Stream"
import type * as Tracer from "effect/Tracer"

/** The stream an effect makes, as one channel. */
export const unwrap = <A, E, R, E2, R2>(effect: Effect.Effect<Stream.Stream<A, E, R>, E2, R2>): Stream.Stream<A, E | E2, R | R2> =>
  Stream.fromChannel(Channel.unwrap(Effect.map(effect, Stream.toChannel)))

/**
 * A span from the stream's start to its end (however it ends). It is not made the parent of
 * the spans the stream starts: they are its siblings, under the caller's span.
 */
export const withSpan = <A, E, R>(
  stream: Stream.Stream<A, E, R>,
  name: string,
  options?: Tracer.SpanOptions
): Stream.Stream<A, E, R> =>
  Stream.fromChannel(Channel.acquireUseRelease(
    Effect.zip(Effect.makeSpan(name, { captureStackTrace: false, ...options }), Effect.clock),
    () => Stream.toChannel(stream),
    ([span, clock], exit) =>
      Effect.sync(() => {
        if (span.status._tag !== "Ended") span.end(clock.unsafeCurrentTimeNanos(), Exit.isExit(exit) ? exit : Exit.void)
      })
  ))
