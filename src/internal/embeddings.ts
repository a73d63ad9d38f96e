/**
 * The embeddings service from a per-batch call (batching, checks, usage, the span) and the
 * service over an `EmbeddingsSpec`; `Embeddings` and `Provider` are its public faces.
 */
import type { ConfigError } from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import type { EmbedOptions, EmbedResult, MakeOptions, Service } from "../Embeddings.js"
import * as Err from "../LlmError.js"
import type { EmbeddingsOptions, EmbeddingsSpec, Requirements } from "../Provider.js"
import { estimateTokens } from "../RateLimiter.js"
import { resolveEndpoint } from "./request/endpoint.js"
import { readErrorBody } from "./request/errorBody.js"
import { sendJsonAs } from "./request/exchange.js"

export const inputsCounter = Metric.counter("effect_llm_embeddings_inputs_total", {
  description: "texts embedded",
  incremental: true
})

/**
 * The service from a per-batch call: checks the input, splits it under `maxBatchSize`,
 * runs the calls, checks each returned the right number of vectors, and joins results
 * and usage in input order.
 */
export const make = (options: MakeOptions): Service => {
  const { provider, model } = options
  const maxBatchSize = Math.max(1, Math.floor(options.maxBatchSize ?? 2048))
  const concurrency = Math.max(1, options.concurrency ?? 4)

  const embedOne = (texts: ReadonlyArray<string>, embedOptions: EmbedOptions) =>
    Effect.flatMap(options.embedBatch(texts, embedOptions), (result) =>
      result.vectors.length === texts.length
        ? Effect.succeed(result)
        : Effect.fail(
          new Err.MalformedResponseError({
            provider,
            model,
            message: `${provider} returned ${result.vectors.length} embeddings for ${texts.length} inputs`,
            excerpt: ""
          })
        ))

  const embed = (texts: ReadonlyArray<string>, embedOptions: EmbedOptions = {}): Effect.Effect<EmbedResult, Err.LlmError> =>
    Effect.suspend(() => {
      const bad = validate(provider, model, texts, embedOptions)
      if (bad !== undefined) return Effect.fail(bad)
      if (texts.length === 0) {
        return Effect.succeed<EmbedResult>({
          embeddings: [],
          model,
          provider,
          usage: { inputTokens: 0, outputTokens: 0, totalTokens: 0, estimated: false }
        })
      }
      const batches: Array<ReadonlyArray<string>> = []
      for (let i = 0; i < texts.length; i += maxBatchSize) batches.push(texts.slice(i, i + maxBatchSize))
      return Effect.forEach(batches, (batch) => embedOne(batch, embedOptions), { concurrency }).pipe(
        Effect.map((results): EmbedResult => {
          const embeddings: Array<ReadonlyArray<number>> = []
          let tokens = 0
          let estimated = false
          results.forEach((result, b) => {
            for (const vector of result.vectors) embeddings.push(vector)
            if (result.inputTokens === undefined) {
              estimated = true
              for (const text of batches[b]!) tokens += estimateTokens(text)
            } else tokens += result.inputTokens
          })
          return { embeddings, model, provider, usage: { inputTokens: tokens, outputTokens: 0, totalTokens: tokens, estimated } }
        }),
        Effect.tap(() => Metric.incrementBy(inputsCounter, texts.length)),
        Effect.withSpan("Embeddings.embed", {
          attributes: { "gen_ai.system": provider, "gen_ai.request.model": model, "effect_llm.inputs": texts.length }
        })
      )
    })

  return { provider, model, maxBatchSize, embed }
}

/** Rejects, before any call, what every provider would reject, naming the offending input. */
const validate = (
  provider: string,
  model: string,
  texts: ReadonlyArray<string>,
  options: EmbedOptions
): Err.InvalidRequestError | undefined => {
  const fail = (message: string) => new Err.InvalidRequestError({ provider, model, message: `${provider} embeddings: ${message}` })
  if (options.dimensions !== undefined && (!Number.isInteger(options.dimensions) || options.dimensions <= 0)) {
    return fail(`dimensions must be a positive integer, got ${options.dimensions}`)
  }
  for (let i = 0; i < texts.length; i++) {
    const text = texts[i]
    if (typeof text !== "string") return fail(`texts[${i}] is not a string`)
    if (text.length === 0) return fail(`texts[${i}] is empty`)
  }
  return undefined
}

/** The body of one call, or the typed error for input the spec cannot map (then nothing is sent). */
const bodyOf = (
  spec: EmbeddingsSpec,
  provider: string,
  model: string,
  texts: ReadonlyArray<string>,
  options: EmbedOptions
): string | Err.LlmError => {
  try {
    const wire = spec.body(texts, model, options)
    return Err.isLlmError(wire) ? wire : JSON.stringify(wire)
  } catch (thrown) {
    return new Err.InvalidRequestError({
      provider,
      model,
      message: `${provider} embeddings could not map the request: ${thrown instanceof Error ? thrown.message : String(thrown)}`
    })
  }
}

/** The service over an embeddings spec: one endpoint, each batch sent through the pool and limiter. */
export const fromSpec = (spec: EmbeddingsSpec, options: EmbeddingsOptions): Effect.Effect<Service, ConfigError, Requirements> => {
  const provider = options.provider ?? spec.provider
  const model = options.model
  const readError = spec.readError ?? readErrorBody
  return Effect.map(
    resolveEndpoint({
      provider,
      auth: spec.auth,
      headers: spec.headers === undefined ? options.headers : { ...spec.headers, ...options.headers },
      timeout: options.timeout,
      maxResponseBytes: options.maxResponseBytes ?? 256 * 1024 * 1024
    }),
    (endpoint) =>
      make({
        provider,
        model,
        maxBatchSize: options.maxBatchSize ?? spec.maxBatchSize,
        concurrency: options.concurrency,
        embedBatch: (texts, embedOptions) =>
          Effect.suspend(() => {
            const body = bodyOf(spec, provider, model, texts, embedOptions)
            if (typeof body !== "string") return Effect.fail(body)
            let url: string
            try {
              url = spec.url(model)
            } catch (thrown) {
              return Effect.fail(
                new Err.InvalidRequestError({
                  provider,
                  model,
                  message: `${provider} embeddings has no URL: ${thrown instanceof Error ? thrown.message : String(thrown)}`
                })
              )
            }
            let tokens = 0
            for (const text of texts) tokens += estimateTokens(text)
            return sendJsonAs(
              endpoint,
              { url, model, body, estimatedTokens: tokens },
              readError,
              (reply, status) => spec.decode(texts, model, reply, status),
              (result) => result.inputTokens ?? 0
            )
          })
      })
  )
}
