/**
 * Records every provider call: a span with the OpenTelemetry GenAI attributes, and the
 * metrics of `Telemetry`. Tagged metrics are built once per provider and model, not per call.
 */
import * as Channel from "effect/Channel"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as Stream from "effect/Stream"
import type { LlmError } from "../LlmError.js"
import type { ChatResponse, StreamEvent, Usage } from "../Message.js"
import * as Telemetry from "../Telemetry.js"

interface Instruments {
  readonly chatRequests: Metric.Metric.Counter<number>
  readonly streamRequests: Metric.Metric.Counter<number>
  readonly inputTokens: Metric.Metric.Counter<number>
  readonly outputTokens: Metric.Metric.Counter<number>
  readonly latency: Metric.Metric.Histogram<number>
  readonly timeToFirstToken: Metric.Metric.Histogram<number>
  readonly errorsByTag: Map<string, Metric.Metric.Counter<number>>
  readonly provider: string
  readonly model: string
}

const cache = new Map<string, Instruments>()

const instruments = (provider: string, model: string): Instruments => {
  const key = `${provider}\u0000${model}`
  let found = cache.get(key)
  if (found === undefined) {
    const tag = <T, I, O>(metric: Metric.Metric<T, I, O>): Metric.Metric<T, I, O> =>
      metric.pipe(Metric.tagged("provider", provider), Metric.tagged("model", model))
    found = {
      chatRequests: tag(Telemetry.requests).pipe(Metric.tagged("operation", "chat")),
      streamRequests: tag(Telemetry.requests).pipe(Metric.tagged("operation", "stream")),
      inputTokens: tag(Telemetry.tokens).pipe(Metric.tagged("type", "input")),
      outputTokens: tag(Telemetry.tokens).pipe(Metric.tagged("type", "output")),
      latency: tag(Telemetry.latency),
      timeToFirstToken: tag(Telemetry.timeToFirstToken),
      errorsByTag: new Map(),
      provider,
      model
    }
    cache.set(key, found)
  }
  return found
}

const errorCounter = (i: Instruments, tag: string) => {
  let counter = i.errorsByTag.get(tag)
  if (counter === undefined) {
    counter = Telemetry.errors.pipe(
      Metric.tagged("provider", i.provider),
      Metric.tagged("model", i.model),
      Metric.tagged("error", tag)
    )
    i.errorsByTag.set(tag, counter)
  }
  return counter
}

const recordUsage = (i: Instruments, usage: Usage, finishReason: string, responseModel: string) =>
  Effect.all([
    Metric.incrementBy(i.inputTokens, usage.inputTokens),
    Metric.incrementBy(i.outputTokens, usage.outputTokens),
    Effect.annotateCurrentSpan({
      [Telemetry.attributes.inputTokens]: usage.inputTokens,
      [Telemetry.attributes.outputTokens]: usage.outputTokens,
      [Telemetry.attributes.finishReasons]: [finishReason],
      [Telemetry.attributes.responseModel]: responseModel
    })
  ], { discard: true })

const spanAttributes = (provider: string, model: string) => ({
  [Telemetry.attributes.system]: provider,
  [Telemetry.attributes.requestModel]: model
})

/** Wraps one chat call: span, request count, latency, errors by tag, tokens. */
export const chat = (
  provider: string,
  model: string,
  effect: Effect.Effect<ChatResponse, LlmError>
): Effect.Effect<ChatResponse, LlmError> => {
  const i = instruments(provider, model)
  return Effect.flatMap(Clock.currentTimeMillis, (start) =>
    Metric.increment(i.chatRequests).pipe(
      Effect.zipRight(effect),
      Effect.tapBoth({
        onSuccess: (response) => recordUsage(i, response.usage, response.finishReason, response.model),
        onFailure: (error) => Metric.increment(errorCounter(i, error._tag))
      }),
      Effect.ensuring(Effect.flatMap(Clock.currentTimeMillis, (end) => Metric.update(i.latency, end - start)))
    )).pipe(Effect.withSpan("LanguageModel.chat", { kind: "client", attributes: spanAttributes(provider, model), captureStackTrace: false }))
}

/** Wraps one stream: span, request count, time to first event, latency, errors, tokens. */
export const stream = (
  provider: string,
  model: string,
  events: Stream.Stream<StreamEvent, LlmError>
): Stream.Stream<StreamEvent, LlmError> => {
  const i = instruments(provider, model)
  // Channel.unwrap rather than Stream.unwrap, which flattens a stream of streams per call
  return Stream.fromChannel(Channel.unwrap(
    Effect.gen(function* () {
      yield* Metric.increment(i.streamRequests)
      const start = yield* Clock.currentTimeMillis
      let first = true
      return Stream.toChannel(events.pipe(
        Stream.mapChunksEffect((chunk) => {
          let effect: Effect.Effect<void> = Effect.void
          if (first && chunk.length > 0) {
            first = false
            effect = Effect.flatMap(Clock.currentTimeMillis, (now) => Metric.update(i.timeToFirstToken, now - start))
          }
          for (const event of chunk) {
            if (event._tag === "Finish") {
              effect = Effect.zipRight(effect, recordUsage(i, event.usage, event.finishReason, event.model))
            }
          }
          return Effect.as(effect, chunk)
        }),
        Stream.tapError((error) => Metric.increment(errorCounter(i, error._tag))),
        Stream.ensuring(Effect.flatMap(Clock.currentTimeMillis, (end) => Metric.update(i.latency, end - start)))
      ))
    })
  )).pipe(Stream.withSpan("LanguageModel.stream", { kind: "client", attributes: spanAttributes(provider, model), captureStackTrace: false }))
}

/** How long admission took, for the limiter-wait histogram. */
export const timeAdmission = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.flatMap(Clock.currentTimeMillis, (start) =>
    Effect.tap(effect, () => Effect.flatMap(Clock.currentTimeMillis, (end) => Metric.update(Telemetry.limiterWait, end - start))))

const gauges = new Map<string, Metric.Metric.Gauge<number>>()

/** Counts a key lease in the pool in-flight gauge for as long as the scope holds it. */
export const countLease = (provider: string) => {
  let gauge = gauges.get(provider)
  if (gauge === undefined) {
    gauge = Telemetry.poolInFlight.pipe(Metric.tagged("provider", provider))
    gauges.set(provider, gauge)
  }
  const g = gauge
  return Effect.acquireRelease(Metric.increment(g), () => Metric.incrementBy(g, -1))
}
