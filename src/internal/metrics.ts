/**
 * The metrics and span attribute names of `Telemetry`, named by the OpenTelemetry GenAI
 * conventions where one exists, and readable without their labels.
 *
 * Every update carries labels (provider, model, …), and Effect keys a metric by its name and
 * labels: a plain `Metric.value(metric)` would read a series no one updates, and a tagged read
 * would have to name every label, in order. So each metric here reads as the sum of its
 * series: `Metric.value(Telemetry.requests)` is every call, and
 * `Metric.tagged(Telemetry.requests, "gen_ai.provider.name", "openai")` the series with that
 * label among theirs. Updates go to the labelled series only, so an exporter sees each once.
 */
import * as Metric from "effect/Metric"
import * as MetricBoundaries from "effect/MetricBoundaries"
import type * as MetricKeyType from "effect/MetricKeyType"
import type * as MetricLabel from "effect/MetricLabel"
import * as MetricState from "effect/MetricState"

export const attributes = {
  /** The provider id; the older conventions' name for `gen_ai.provider.name`, written too. */
  system: "gen_ai.system",
  providerName: "gen_ai.provider.name",
  /** `chat` for every call of a `LanguageModel`, streamed or not. */
  operationName: "gen_ai.operation.name",
  requestModel: "gen_ai.request.model",
  responseModel: "gen_ai.response.model",
  inputTokens: "gen_ai.usage.input_tokens",
  outputTokens: "gen_ai.usage.output_tokens",
  /** A list of strings, as the conventions say (one reason: a call has one choice). */
  finishReasons: "gen_ai.response.finish_reasons",
  /** `input` or `output`, on `gen_ai.client.token.usage`. */
  tokenType: "gen_ai.token.type",
  /** The error's tag, on a failed call's duration and on the error count. */
  errorType: "error.type",
  /** `true` for `stream`, `false` for `chat`: not in the conventions, which count both as `chat`. */
  stream: "effect_llm.stream",
  /** On `Tool.call <name>` spans of the tool loop. */
  toolName: "gen_ai.tool.name",
  toolCallId: "gen_ai.tool.call.id"
} as const

// the conventions' explicit bucket boundaries
const durationBoundaries = MetricBoundaries.fromIterable([0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92])
const tokenBoundaries = MetricBoundaries.fromIterable([1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864])

const hasLabels = (tags: ReadonlyArray<MetricLabel.MetricLabel>, wanted: ReadonlyArray<MetricLabel.MetricLabel>): boolean =>
  wanted.every((w) => tags.some((t) => t.key === w.key && t.value === w.value))

/** The states of every series of `name` that has all of `wanted` among its labels. */
const seriesOf = (name: string, wanted: ReadonlyArray<MetricLabel.MetricLabel>): Array<MetricState.MetricState.Untyped> =>
  Metric.unsafeSnapshot().flatMap((pair) => (pair.metricKey.name === name && hasLabels(pair.metricKey.tags, wanted) ? [pair.metricState] : []))

/** `base`, read as the sum of its series (see the module's comment). */
const summed = <Type, In, Out>(base: Metric.Metric<Type, In, Out>, name: string, sum: (states: Array<MetricState.MetricState.Untyped>) => Out) =>
  Metric.make(
    base.keyType,
    (input: In, extraTags) => base.unsafeUpdate(input, extraTags),
    (extraTags) => sum(seriesOf(name, extraTags)),
    (input: In, extraTags) => base.unsafeModify(input, extraTags)
  )

const counter = (name: string, description: string): Metric.Metric.Counter<number> =>
  summed(Metric.counter(name, { description, incremental: true }), name, (states) =>
    MetricState.counter(states.reduce((n, s) => n + (MetricState.isCounterState(s) ? Number(s.count) : 0), 0)))

const gauge = (name: string, description: string): Metric.Metric.Gauge<number> =>
  summed(Metric.gauge(name, { description }), name, (states) =>
    MetricState.gauge(states.reduce((n, s) => n + (MetricState.isGaugeState(s) ? Number(s.value) : 0), 0)))

const histogram = (name: string, boundaries: MetricBoundaries.MetricBoundaries, description: string): Metric.Metric<
  MetricKeyType.MetricKeyType.Histogram,
  number,
  MetricState.MetricState.Histogram
> =>
  summed(Metric.histogram(name, boundaries, description), name, (states) => {
    const histograms = states.filter(MetricState.isHistogramState)
    return MetricState.histogram({
      buckets: boundaries.values.map((boundary, i) => [boundary, histograms.reduce((n, h) => n + (h.buckets[i]?.[1] ?? 0), 0)] as const),
      count: histograms.reduce((n, h) => n + h.count, 0),
      min: histograms.reduce((m, h) => Math.min(m, h.min), Number.MAX_VALUE),
      max: histograms.reduce((m, h) => Math.max(m, h.max), Number.MIN_VALUE),
      sum: histograms.reduce((n, h) => n + h.sum, 0)
    })
  })

export const requests = counter(
  "effect_llm.client.requests",
  "Provider calls started, by gen_ai.provider.name, gen_ai.request.model and effect_llm.stream"
)

export const errors = counter(
  "effect_llm.client.errors",
  "Provider calls that failed, by gen_ai.provider.name, gen_ai.request.model and error.type (the error's tag)"
)

export const tokens = histogram(
  "gen_ai.client.token.usage",
  tokenBoundaries,
  "Tokens of each call ({token}), by gen_ai.token.type (input | output), gen_ai.provider.name and gen_ai.request.model"
)

export const latency = histogram(
  "gen_ai.client.operation.duration",
  durationBoundaries,
  "Seconds from admission to the end of a provider call; error.type on failures"
)

export const timeToFirstToken = histogram(
  "gen_ai.client.operation.time_to_first_chunk",
  durationBoundaries,
  "Seconds from the start of a stream to its first event"
)

export const limiterWait = histogram(
  "effect_llm.rate_limiter.wait_duration",
  MetricBoundaries.fromIterable([0.001, 0.004, 0.016, 0.064, 0.256, 1.024, 4.096, 16.384, 65.536]),
  "Seconds a call waited for rate-limit admission"
)

export const poolInFlight = gauge("effect_llm.key_pool.in_flight", "Calls holding a key lease, by gen_ai.provider.name")
