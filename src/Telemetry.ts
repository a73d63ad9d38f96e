/**
 * Metrics and span attributes. Every provider call records these through the shared request
 * path: a span `LanguageModel.chat` or `LanguageModel.stream` with the OpenTelemetry GenAI
 * attributes, and the metrics below. Names follow the GenAI conventions where one exists
 * (`gen_ai.client.token.usage`, `gen_ai.client.operation.duration`,
 * `gen_ai.client.operation.time_to_first_chunk`, durations in seconds); the others are
 * `effect_llm.*`. Export them with `@effect/opentelemetry` 0.64 (the Effect 3 line; see the
 * README's Telemetry section).
 *
 * Each metric reads as the sum of its series: `Metric.value(Telemetry.requests)` counts every
 * call, and `Telemetry.requests.pipe(Metric.tagged("gen_ai.provider.name", "openai"))` the
 * calls whose labels include that one. Updates go to the labelled series only, so an exporter
 * sees each once.
 *
 * @since 0.1.0
 */
import * as internal from "./internal/metrics.js"

/**
 * Calls started (`chat` and `stream`): labels `gen_ai.operation.name`, `gen_ai.provider.name`,
 * `gen_ai.request.model`, `effect_llm.stream`.
 * @since 0.1.0 @category metrics
 */
export const requests = internal.requests

/**
 * Calls that failed: the request labels and `error.type`, the error's tag.
 * @since 0.1.0 @category metrics
 */
export const errors = internal.errors

/**
 * `gen_ai.client.token.usage`: a histogram of each call's tokens, labelled `gen_ai.token.type`
 * (`input` | `output`); its `sum` is the total.
 * @since 0.1.0 @category metrics
 */
export const tokens = internal.tokens

/**
 * `gen_ai.client.operation.duration`: seconds from admission to the end of a call; a failed
 * call's carries `error.type`.
 * @since 0.1.0 @category metrics
 */
export const latency = internal.latency

/**
 * `gen_ai.client.operation.time_to_first_chunk`: seconds from the start of a stream to its first event.
 * @since 0.1.0 @category metrics
 */
export const timeToFirstToken = internal.timeToFirstToken

/**
 * `effect_llm.rate_limiter.wait_duration`: seconds a call waited for rate-limit admission.
 * @since 0.1.0 @category metrics
 */
export const limiterWait = internal.limiterWait

/**
 * `effect_llm.key_pool.in_flight`: calls holding a key lease, labelled `gen_ai.provider.name`.
 * @since 0.1.0 @category metrics
 */
export const poolInFlight = internal.poolInFlight

/**
 * Span attribute and metric label names: the OpenTelemetry GenAI conventions', and
 * `effect_llm.stream`. `gen_ai.response.finish_reasons` is a list of strings, also through
 * `@effect/opentelemetry`'s bridge to the OpenTelemetry SDK (which prints other lists as text).
 * @since 0.1.0 @category spans
 */
export const attributes = internal.attributes
