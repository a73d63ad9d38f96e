/**
 * The one owner of "what did this stream deliver". Once a caller has received an event, a
 * failure can no longer be hidden by running the request again (the caller would see a
 * duplicated prefix): it becomes a partial, non-retryable `StreamError` carrying the text
 * delivered so far. Retry and Fallback must therefore know, at any depth of decorators, what
 * the stream they ran has delivered.
 *
 * A decorator that needs to know gives the stream below it a `Tracker` (the optional second
 * argument of `stream`). Decorators pass it on; the source of the events reports into it: a
 * provider's own stream natively (it already counts what it wrote, so this costs nothing per
 * chunk), any other model's stream through one counting stage (`LanguageModel.make` adds it,
 * only when a tracker is given). A tracker passes every report on to the tracker it was made
 * under, so Fallback learns what a stream under Retry under Fallback delivered without
 * counting a chunk itself. (A tracker in the stream's Effect context would cost ~13 KB per
 * read: a provided context is re-applied on every channel step.)
 */
import type * as Chunk from "effect/Chunk"
import * as Duration from "effect/Duration"
import * as Stream from "effect/Stream"
import * as Err from "../../LlmError.js"
import type { ChatRequest, StreamEvent } from "../../Message.js"
import { withFields } from "./errors.js"

/** What a stream's consumer has received so far. */
export interface Delivered {
  readonly events: number
  /** The text of the `TextDelta` events received. */
  readonly text: string
}

const nothing: Delivered = { events: 0, text: "" }

/**
 * Collects what the sources that ran below one decorator's call delivered, and passes each
 * report on to the tracker of the decorator around it.
 */
export class Tracker {
  private readonly sources: Array<() => Delivered> = []
  constructor(private readonly parent?: Tracker | undefined) {}

  /** A source reports once, with a way to read what it has delivered so far. */
  watch(read: () => Delivered): void {
    this.sources.push(read)
    this.parent?.watch(read)
  }

  /** What every source that reported here delivered, in order. */
  delivered(): Delivered {
    const sources = this.sources
    if (sources.length === 0) return nothing
    if (sources.length === 1) return sources[0]!()
    let events = 0
    let text = ""
    for (const read of sources) {
      const d = read()
      events += d.events
      text += d.text
    }
    return { events, text }
  }
}

/**
 * A mark on a model's `stream` function: it reports what it delivers to the tracker it is
 * given (a provider's, one built with `LanguageModel.make`, and a decorator's over one of
 * those). It marks the function, not the model, so that `{ ...model, stream: mine }` is not
 * taken for reporting: its stream would deliver events nobody counts.
 */
export const Reports: unique symbol = Symbol.for("effect-llm/Reports") as never

export const reportsOf = (model: { readonly stream: object }): boolean =>
  (model.stream as { readonly [Reports]?: boolean })[Reports] === true

/** Marks `stream` as reporting (when `reports`), and returns it. */
export const reporting = <F extends object>(stream: F, reports = true): F =>
  reports ? Object.assign(stream, { [Reports]: true }) : stream

type EventStream<E, R> = Stream.Stream<StreamEvent, E, R>

/** `stream`, counted by one stage that reports to `tracker`; unchanged when nobody asks. */
export const counted = <E, R>(stream: EventStream<E, R>, tracker: Tracker | undefined): EventStream<E, R> =>
  tracker === undefined ? stream : Stream.suspend(() => {
    let events = 0
    let text = ""
    tracker.watch(() => ({ events, text }))
    return Stream.mapChunks(stream, (chunk: Chunk.Chunk<StreamEvent>) => {
      for (const event of chunk) {
        events++
        if (event._tag === "TextDelta") text += event.text
      }
      return chunk
    })
  })

/** The streaming half of a model, as a decorator calls the model below it. */
interface Streams {
  readonly stream: (request: ChatRequest, tracker?: Tracker) => EventStream<Err.LlmError, never>
}

/**
 * One run of `model.stream(request)` with a tracker of its own (chained to `around`), and
 * what it delivered: asked of a model that reports, counted for one that does not.
 */
export const attempt = (model: Streams, request: ChatRequest, around: Tracker | undefined): {
  readonly stream: EventStream<Err.LlmError, never>
  readonly delivered: () => Delivered
} => {
  const tracker = new Tracker(around)
  const stream = reportsOf(model) ? model.stream(request, tracker) : counted(model.stream(request), tracker)
  return { stream, delivered: () => tracker.delivered() }
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
 * `model.stream(request)`, where a failure after the first event becomes a partial
 * `StreamError` whose `partialText` is exactly the text delivered.
 */
export const guardPartial = (model: Streams, request: ChatRequest, around: Tracker | undefined): EventStream<Err.LlmError, never> =>
  Stream.suspend(() => {
    const run = attempt(model, request, around)
    return Stream.catchAll(run.stream, (error) => {
      const sent = run.delivered()
      return Stream.fail(sent.events === 0 ? error : toPartial(error, sent.text))
    })
  })
