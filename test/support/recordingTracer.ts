/** A tracer that keeps every span it makes, for tests that read spans' names, parents, attributes, events and exits. */
import type * as Context from "effect/Context"
import type * as Exit from "effect/Exit"
import * as Tracer from "effect/Tracer"

export interface RecordedSpan {
  readonly name: string
  /** The id of the parent span, when it has one (ids count up from 1). */
  readonly parent: string | undefined
  readonly attributes: Map<string, unknown>
  readonly events: Array<{ name: string; attributes?: Record<string, unknown> }>
  exit?: Exit.Exit<unknown, unknown>
}

export const recordingTracer = () => {
  const spans: Array<RecordedSpan> = []
  let counter = 0
  const tracer = Tracer.make({
    span: (name, parent, context: Context.Context<never>, links, startTime, kind) => {
      const recorded: RecordedSpan = { name, parent: parent._tag === "Some" ? parent.value.spanId : undefined, attributes: new Map(), events: [] }
      spans.push(recorded)
      const id = String(++counter)
      const span: Tracer.Span = {
        _tag: "Span",
        name,
        spanId: id,
        traceId: "trace",
        parent,
        context,
        status: { _tag: "Started", startTime },
        attributes: recorded.attributes,
        links,
        sampled: true,
        kind,
        end: (_endTime, exit) => void (recorded.exit = exit),
        attribute: (key, value) => void recorded.attributes.set(key, value),
        event: (eventName, _time, attributes) => void recorded.events.push({ name: eventName, ...(attributes ? { attributes } : {}) }),
        addLinks: () => undefined
      }
      return span
    },
    context: (f) => f()
  })
  return { tracer, spans }
}
