/**
 * Records every provider call: a span with the OpenTelemetry GenAI attributes, and the
 * metrics of `Telemetry`.
 *
 * Speed: `Metric.tagged` builds a new label array on every update, so the registry looks the
 * metric up by a freshly hashed key each time. Here the label arrays are built once per
 * provider and model and passed as they are, which hits the metric's own cache; all of one
 * call's updates happen in one step at its end.
 */
import * as Chunk from "effect/Chunk"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import * as FiberRef from "effect/FiberRef"
import * as HashMap from "effect/HashMap"
import type * as Metric from "effect/Metric"
import * as MetricLabel from "effect/MetricLabel"
import * as Scope from "effect/Scope"
import * as Tracer from "effect/Tracer"
import type { LlmError } from "../../LlmError.js"
import type { StreamEvent, Usage } from "../../Message.js"
import * as Telemetry from "../metrics.js"

type Labels = ReadonlyArray<MetricLabel.MetricLabel>

interface Instruments {
  readonly provider: string
  readonly model: string
  /** Operation, provider and model, and the unit: the labels of a call's durations. */
  readonly timing: Labels
  readonly chat: Labels
  readonly stream: Labels
  readonly input: Labels
  readonly output: Labels
  /** By error tag: the labels of its count and of its duration (with `error.type`). */
  readonly failures: Map<string, { readonly count: Labels; readonly timing: Labels }>
}

const labels = (pairs: ReadonlyArray<readonly [string, string]>): Labels => pairs.map(([k, v]) => MetricLabel.make(k, v))

// the unit, as `@effect/opentelemetry` reads it (the label `unit`) into an exported metric's descriptor
const seconds = ["unit", "s"] as const
const tokenUnit = ["unit", "{token}"] as const
const limiterLabels = labels([seconds])

const cache = new Map<string, Instruments>()

/**
 * How many distinct provider/model pairs get metric labels of their own. Each costs a few KB
 * for as long as the process lives (in Effect's metric registry too), and `request.model` is
 * caller input: past this many, further models are counted under the model label `other`.
 * Spans always carry the real model.
 */
export const MAX_MODEL_LABELS = 256

/** The model label for a pair: itself while labels last, then `other`. */
export const modelLabel = (seen: ReadonlyMap<string, unknown>, provider: string, model: string): string =>
  seen.size < MAX_MODEL_LABELS || seen.has(`${provider}\u0000${model}`) ? model : "other"

const instruments = (provider: string, requested: string): Instruments => {
  const model = modelLabel(cache, provider, requested)
  const key = `${provider}\u0000${model}`
  let found = cache.get(key)
  if (found === undefined) {
    const a = Telemetry.attributes
    const base = [[a.operationName, "chat"], [a.providerName, provider], [a.requestModel, model]] as const
    found = {
      provider,
      model,
      timing: labels([...base, seconds]),
      chat: labels([...base, [a.stream, "false"]]),
      stream: labels([...base, [a.stream, "true"]]),
      input: labels([...base, [a.tokenType, "input"], tokenUnit]),
      output: labels([...base, [a.tokenType, "output"], tokenUnit]),
      failures: new Map()
    }
    cache.set(key, found)
  }
  return found
}

const failureLabelsOf = (i: Instruments, tag: string) => {
  let found = i.failures.get(tag)
  if (found === undefined) {
    const a = Telemetry.attributes
    const base = [[a.operationName, "chat"], [a.providerName, i.provider], [a.requestModel, i.model], [a.errorType, tag]] as const
    found = { count: labels(base), timing: labels([...base, seconds]) }
    i.failures.set(tag, found)
  }
  return found
}

/** Updates a metric with fixed labels, plus any labels the caller set on the fiber. */
const bump = <T, In, Out>(metric: Metric.Metric<T, In, Out>, value: In, fixed: Labels, ambient: Labels) =>
  metric.unsafeUpdate(value, ambient.length === 0 ? fixed : [...fixed, ...ambient])

const withAmbient = <A, E, R>(f: (ambient: Labels) => Effect.Effect<A, E, R>) =>
  FiberRef.getWith(FiberRef.currentMetricLabels, f)

const recordUsage = (i: Instruments, ambient: Labels, usage: Usage) => {
  bump(Telemetry.tokens, usage.inputTokens, i.input, ambient)
  bump(Telemetry.tokens, usage.outputTokens, i.output, ambient)
}

const otelSpan = Symbol.for("@effect/opentelemetry/Tracer/OtelSpan")

/**
 * A span attribute that is a list of strings. `@effect/opentelemetry`'s bridge to the
 * OpenTelemetry SDK writes any value that is not a string, number or boolean as its printed
 * text (`"[\n  \"stop\"\n]"`); the OpenTelemetry span it wraps takes the list itself.
 */
const setStrings = (span: Tracer.Span, key: string, values: Array<string>) => {
  span.attribute(key, values)
  if (otelSpan in span) {
    const inner = (span as { readonly span?: { readonly setAttribute?: (key: string, value: Array<string>) => unknown } }).span
    if (typeof inner?.setAttribute === "function") inner.setAttribute(key, values)
  }
}

const annotateUsage = (span: Tracer.Span, usage: Usage, finishReason: string, responseModel: string) => {
  span.attribute(Telemetry.attributes.inputTokens, usage.inputTokens)
  span.attribute(Telemetry.attributes.outputTokens, usage.outputTokens)
  setStrings(span, Telemetry.attributes.finishReasons, [finishReason])
  span.attribute(Telemetry.attributes.responseModel, responseModel)
}

const spanAttributes = (provider: string, model: string) => ({
  [Telemetry.attributes.operationName]: "chat",
  [Telemetry.attributes.providerName]: provider,
  [Telemetry.attributes.system]: provider,
  [Telemetry.attributes.requestModel]: model
})

const inSeconds = (millis: number) => millis / 1000

/** Wraps one chat call: span, request count, latency, errors by tag, tokens. */
export const chat = <A extends { readonly usage: Usage; readonly finishReason: string; readonly model: string }>(
  provider: string,
  model: string,
  effect: Effect.Effect<A, LlmError>
): Effect.Effect<A, LlmError> => {
  const i = instruments(provider, model)
  return Effect.useSpan("LanguageModel.chat", { kind: "client", attributes: spanAttributes(provider, model), captureStackTrace: false }, (span) =>
    withAmbient((ambient) =>
      Effect.flatMap(Clock.currentTimeMillis, (start) =>
        Effect.onExit(Effect.withParentSpan(effect, span), (exit) =>
          Effect.map(Clock.currentTimeMillis, (end) => {
            bump(Telemetry.requests, 1, i.chat, ambient)
            if (Exit.isSuccess(exit)) {
              bump(Telemetry.latency, inSeconds(end - start), i.timing, ambient)
              const response = exit.value
              recordUsage(i, ambient, response.usage)
              annotateUsage(span, response.usage, response.finishReason, response.model)
              return
            }
            const failed = exit.cause._tag === "Fail" ? failureLabelsOf(i, exit.cause.error._tag) : undefined
            bump(Telemetry.latency, inSeconds(end - start), failed?.timing ?? i.timing, ambient)
            if (failed !== undefined) bump(Telemetry.errors, 1, failed.count, ambient)
          })))))
}

/**
 * One JSON chat call's telemetry, started and ended in plain code: what `chat` records (the
 * `LanguageModel.chat` span, its metrics), for the request path's fast path. `startChat`
 * makes the span as `Effect.useSpan` does, from the fiber's tracer, parent span, annotations
 * and links.
 */
export class ChatRecording {
  private readonly start: number
  constructor(
    readonly span: Tracer.Span,
    readonly clock: Clock.Clock,
    private readonly timingEnabled: boolean,
    private readonly i: Instruments,
    readonly ambient: Labels
  ) {
    this.start = clock.unsafeCurrentTimeMillis()
  }

  succeed<A extends { readonly usage: Usage; readonly finishReason: string; readonly model: string }>(response: A): void {
    const { i, ambient, span } = this
    bump(Telemetry.requests, 1, i.chat, ambient)
    bump(Telemetry.latency, inSeconds(this.clock.unsafeCurrentTimeMillis() - this.start), i.timing, ambient)
    recordUsage(i, ambient, response.usage)
    annotateUsage(span, response.usage, response.finishReason, response.model)
    this.close(Exit.succeed(response))
  }

  end(exit: Exit.Exit<unknown, unknown>): void {
    const { i, ambient } = this
    if (Exit.isSuccess(exit)) return this.succeed(exit.value as never)
    bump(Telemetry.requests, 1, i.chat, ambient)
    const failed = exit.cause._tag === "Fail" ? failureLabelsOf(i, (exit.cause.error as LlmError)._tag) : undefined
    bump(Telemetry.latency, inSeconds(this.clock.unsafeCurrentTimeMillis() - this.start), failed?.timing ?? i.timing, ambient)
    if (failed !== undefined) bump(Telemetry.errors, 1, failed.count, ambient)
    this.close(exit)
  }

  private close(exit: Exit.Exit<unknown, unknown>): void {
    if (this.span.status._tag !== "Ended") this.span.end(this.timingEnabled ? this.clock.unsafeCurrentTimeNanos() : BigInt(0), exit)
  }
}

/** A span made on `fiber` in plain code, as `Effect.makeSpan` makes it, and what ending it needs. */
interface SpanOn {
  readonly span: Tracer.Span
  readonly clock: Clock.Clock
  readonly timingEnabled: boolean
  readonly ambient: Labels
}

/**
 * Makes a call's span on `fiber` from its tracer, parent span, annotations and links;
 * undefined when its tracing is off or its parent span stops propagation (then the `Effect`
 * forms, which know those cases, record the call).
 */
const spanOn = (fiber: Fiber.RuntimeFiber<unknown, unknown>, name: string, provider: string, model: string): SpanOn | undefined => {
  if (!fiber.getFiberRef(FiberRef.currentTracerEnabled)) return undefined
  const parent = Context.getOption(fiber.currentContext, Tracer.ParentSpan)
  if (parent._tag === "Some" && Context.get(parent.value.context, Tracer.DisablePropagation)) return undefined
  const clock = Context.get(fiber.currentDefaultServices, Clock.Clock)
  const timingEnabled = fiber.getFiberRef(FiberRef.currentTracerTimingEnabled)
  const links = Chunk.toReadonlyArray(fiber.getFiberRef(FiberRef.currentTracerSpanLinks))
  const span = fiber.currentTracer.span(
    name,
    parent,
    Context.empty(),
    links,
    timingEnabled ? clock.unsafeCurrentTimeNanos() : BigInt(0),
    "client",
    clientSpanOptions
  )
  HashMap.forEach(fiber.getFiberRef(FiberRef.currentTracerSpanAnnotations), (value, key) => span.attribute(key, value))
  const attributes = spanAttributes(provider, model)
  for (const key of Object.keys(attributes) as Array<keyof typeof attributes>) span.attribute(key, attributes[key])
  return { span, clock, timingEnabled, ambient: fiber.getFiberRef(FiberRef.currentMetricLabels) }
}

/** Starts a chat call's telemetry on `fiber` (see `spanOn` for when it is undefined). */
export const startChat = (fiber: Fiber.RuntimeFiber<unknown, unknown>, provider: string, model: string): ChatRecording | undefined => {
  const on = spanOn(fiber, "LanguageModel.chat", provider, model)
  return on === undefined ? undefined : new ChatRecording(on.span, on.clock, on.timingEnabled, instruments(provider, model), on.ambient)
}

/** `startStream` in plain code on `fiber` (see `spanOn` for when it is undefined). */
export const startStreamOn = (fiber: Fiber.RuntimeFiber<unknown, unknown>, provider: string, model: string): StreamRecorder | undefined => {
  const on = spanOn(fiber, "LanguageModel.stream", provider, model)
  if (on === undefined) return undefined
  flattenIds(on.span)
  const i = instruments(provider, model)
  bump(Telemetry.requests, 1, i.stream, on.ambient)
  return new StreamRecording(on.span, on.clock, i, on.ambient)
}

const clientSpanOptions: Tracer.SpanOptions = { kind: "client", captureStackTrace: false }

/** Records an admission that did not wait (the limiter-wait histogram's zero). */
export const admittedAtOnce = (ambient: Labels): void => bump(Telemetry.limiterWait, 0, limiterLabels, ambient)

/** Counts a key lease in the pool in-flight gauge; the function returned counts its end. */
export const leaseGauge = (provider: string, ambient: Labels): (() => void) => {
  const fixed = gaugeLabelsOf(provider)
  const all = ambient.length === 0 ? fixed : [...fixed, ...ambient]
  Telemetry.poolInFlight.unsafeModify(1, all)
  return () => Telemetry.poolInFlight.unsafeModify(-1, all)
}

/**
 * One stream's telemetry, driven by the request path's own stream stage rather than by
 * stream combinators (each combinator stage costs tens of µs per stream): `events` sees each
 * chunk as it is written, `end` closes the span and records latency and errors.
 */
export interface StreamRecorder {
  readonly span: Tracer.Span
  /** The clock the stream was started with, for its deadlines too. */
  readonly clock: Clock.Clock
  /** The metric labels the caller set on the fiber. */
  readonly ambient: Labels
  events(chunk: ReadonlyArray<StreamEvent>): void
  end(exit: Exit.Exit<unknown, LlmError>): void
}

/**
 * Effect's tracer builds a span's ids one character at a time: until something reads them
 * flat, each is a chain of ~13 string pieces, ~0.8 KB per open stream. A numeric read
 * flattens a string in place (the pieces become garbage); the ids keep their value.
 */
const flattenIds = (span: Tracer.Span) => {
  void Number(span.traceId)
  void Number(span.spanId)
}

/** One stream's recorder: a class, not closures, since every open stream holds one. */
class StreamRecording implements StreamRecorder {
  private readonly start: number
  private first = true
  constructor(
    readonly span: Tracer.Span,
    readonly clock: Clock.Clock,
    private readonly i: Instruments,
    readonly ambient: Labels
  ) {
    this.start = clock.unsafeCurrentTimeMillis()
  }

  events(chunk: ReadonlyArray<StreamEvent>): void {
    const { i, ambient } = this
    if (this.first && chunk.length > 0) {
      this.first = false
      bump(Telemetry.timeToFirstToken, inSeconds(this.clock.unsafeCurrentTimeMillis() - this.start), i.timing, ambient)
    }
    const last = chunk[chunk.length - 1]
    if (last !== undefined && last._tag === "Finish") {
      recordUsage(i, ambient, last.usage)
      annotateUsage(this.span, last.usage, last.finishReason, last.model)
    }
  }

  end(exit: Exit.Exit<unknown, LlmError>): void {
    const { i, ambient, span } = this
    const failed = exit._tag === "Failure" && exit.cause._tag === "Fail" ? failureLabelsOf(i, exit.cause.error._tag) : undefined
    bump(Telemetry.latency, inSeconds(this.clock.unsafeCurrentTimeMillis() - this.start), failed?.timing ?? i.timing, ambient)
    if (failed !== undefined) bump(Telemetry.errors, 1, failed.count, ambient)
    if (span.status._tag !== "Ended") span.end(this.clock.unsafeCurrentTimeNanos(), exit)
  }
}

/** Starts one stream's span and counts the request. */
export const startStream = (provider: string, model: string): Effect.Effect<StreamRecorder> => {
  const i = instruments(provider, model)
  return withAmbient((ambient) =>
    Effect.flatMap(Effect.clock, (clock) =>
      Effect.map(
        Effect.makeSpan("LanguageModel.stream", { kind: "client", attributes: spanAttributes(provider, model), captureStackTrace: false }),
        (span): StreamRecorder => {
          flattenIds(span)
          bump(Telemetry.requests, 1, i.stream, ambient)
          return new StreamRecording(span, clock, i, ambient)
        }
      ))
  )
}

/** How long admission took, for the limiter-wait histogram. */
export const timeAdmission = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.flatMap(Clock.currentTimeMillis, (start) =>
    Effect.tap(effect, () =>
      Effect.flatMap(Clock.currentTimeMillis, (end) =>
        withAmbient((ambient) => Effect.sync(() => bump(Telemetry.limiterWait, inSeconds(end - start), limiterLabels, ambient))))))

const gaugeLabels = new Map<string, Labels>()

const gaugeLabelsOf = (provider: string): Labels => {
  let fixed = gaugeLabels.get(provider)
  if (fixed === undefined) {
    fixed = labels([[Telemetry.attributes.providerName, provider]])
    gaugeLabels.set(provider, fixed)
  }
  return fixed
}

/** Counts a key lease in the pool in-flight gauge for as long as the scope holds it. */
export const countLease = (provider: string) => {
  const tags = gaugeLabelsOf(provider)
  // the decrement goes straight into the scope: Effect.acquireRelease would also diff and
  // patch the fiber's refs around it, which nothing here needs
  return withAmbient((ambient) =>
    Effect.flatMap(Effect.scope, (scope) =>
      Effect.uninterruptible(Effect.suspend(() => {
        const all = ambient.length === 0 ? tags : [...tags, ...ambient]
        Telemetry.poolInFlight.unsafeModify(1, all)
        return Scope.addFinalizer(scope, Effect.sync(() => Telemetry.poolInFlight.unsafeModify(-1, all)))
      }))))
}
