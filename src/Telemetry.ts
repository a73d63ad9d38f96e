/**
 * Metrics and span attributes. Every provider call records these through the shared
 * request path; export them with `@effect/opentelemetry` (see the README). Names follow
 * the OpenTelemetry GenAI semantic conventions where one exists.
 *
 * @since 0.1.0
 */
import * as Metric from "effect/Metric"
import * as MetricBoundaries from "effect/MetricBoundaries"

const latencyBoundaries = MetricBoundaries.exponential({ start: 5, factor: 2, count: 14 }) // 5 ms … ~41 s

/** @since 0.1.0 @category metrics */
export const requests = Metric.counter("effect_llm_requests_total", {
  description: "Provider calls started (chat and stream), by provider, model and operation",
  incremental: true
})

/** @since 0.1.0 @category metrics */
export const errors = Metric.counter("effect_llm_errors_total", {
  description: "Provider calls that failed, by provider, model and error tag",
  incremental: true
})

/** @since 0.1.0 @category metrics */
export const tokens = Metric.counter("effect_llm_tokens_total", {
  description: "Tokens used, by provider, model and type (input | output)",
  incremental: true
})

/** @since 0.1.0 @category metrics */
export const latency = Metric.histogram(
  "effect_llm_request_duration_ms",
  latencyBoundaries,
  "Time from admission to the last byte of a provider call, in milliseconds"
)

/** @since 0.1.0 @category metrics */
export const timeToFirstToken = Metric.histogram(
  "effect_llm_time_to_first_token_ms",
  latencyBoundaries,
  "Time from the start of a stream to its first event, in milliseconds"
)

/** @since 0.1.0 @category metrics */
export const limiterWait = Metric.histogram(
  "effect_llm_rate_limiter_wait_ms",
  MetricBoundaries.exponential({ start: 1, factor: 2, count: 16 }),
  "Time a call waited for rate-limit admission, in milliseconds"
)

/** @since 0.1.0 @category metrics */
export const poolInFlight = Metric.gauge("effect_llm_key_pool_in_flight", {
  description: "Calls currently holding a key lease, by provider"
})

/**
 * Span attribute names of the OpenTelemetry GenAI conventions.
 * @since 0.1.0 @category spans
 */
export const attributes = {
  system: "gen_ai.system",
  requestModel: "gen_ai.request.model",
  responseModel: "gen_ai.response.model",
  inputTokens: "gen_ai.usage.input_tokens",
  outputTokens: "gen_ai.usage.output_tokens",
  finishReasons: "gen_ai.response.finish_reasons",
  /** On `Tool.call <name>` spans of the tool loop. */
  toolName: "gen_ai.tool.name",
  toolCallId: "gen_ai.tool.call.id"
} as const
