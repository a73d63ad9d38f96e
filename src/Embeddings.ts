/**
 * Text embeddings: one service, `embed(texts, { dimensions? })`, over OpenAI-compatible
 * `/embeddings`, Gemini `batchEmbedContents` and Ollama `/api/embed`. Long input lists
 * are split into calls under the provider's per-call limit and reassembled in order.
 * Every call goes through the same `KeyPool` and `RateLimiter` as chat, and fails with
 * typed `LlmError`s (with `retryable` set) that `Retry` can act on.
 *
 * @since 0.1.0
 */
import type * as HttpClient from "@effect/platform/HttpClient"
import * as Config from "effect/Config"
import type { ConfigError } from "effect/ConfigError"
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as GeminiWire from "./internal/providers/gemini/embeddings.js"
import * as OllamaWire from "./internal/providers/ollama/embeddings.js"
import * as OpenAiWire from "./internal/providers/openaiChat/embeddings.js"
import type { EmbeddingsSpec } from "./internal/providers/wire.js"
import { resolveEndpoint } from "./internal/request/endpoint.js"
import { sendJsonAs } from "./internal/request/exchange.js"
import type * as KeyPool from "./KeyPool.js"
import * as Err from "./LlmError.js"
import type { Usage } from "./Message.js"
import type * as RateLimiter from "./RateLimiter.js"
import { estimateTokens } from "./RateLimiter.js"

// ---------------------------------------------------------------------------
// The service
// ---------------------------------------------------------------------------

/** @since 0.1.0 @category models */
export interface EmbedOptions {
  /** Vector length, for models that can shorten their output (text-embedding-3, Gemini, some Ollama models). */
  readonly dimensions?: number | undefined
}

/** @since 0.1.0 @category models */
export interface EmbedResult {
  /** One vector per input text, in input order. */
  readonly embeddings: ReadonlyArray<ReadonlyArray<number>>
  readonly model: string
  readonly provider: string
  /** Input tokens over every call; `outputTokens` is 0. `estimated` when the provider reported none. */
  readonly usage: Usage
}

/** @since 0.1.0 @category models */
export interface Service {
  readonly provider: string
  readonly model: string
  /** The most inputs sent in one call. */
  readonly maxBatchSize: number
  readonly embed: (texts: ReadonlyArray<string>, options?: EmbedOptions) => Effect.Effect<EmbedResult, Err.LlmError>
}

/** @since 0.1.0 @category tags */
export class Embeddings extends Context.Tag("effect-llm/Embeddings")<Embeddings, Service>() {}

/** @since 0.1.0 @category accessors */
export const embed = (texts: ReadonlyArray<string>, options?: EmbedOptions): Effect.Effect<EmbedResult, Err.LlmError, Embeddings> =>
  Effect.flatMap(Embeddings, (service) => service.embed(texts, options))

/** @since 0.1.0 @category layers */
export const layer = (service: Service): Layer.Layer<Embeddings> => Layer.succeed(Embeddings, service)

/**
 * What one call returns, before batches are joined.
 * @since 0.1.0 @category models
 */
export interface BatchResult {
  readonly vectors: ReadonlyArray<ReadonlyArray<number>>
  /** Input tokens of the call, when the provider reported them. */
  readonly inputTokens: number | undefined
}

/** @since 0.1.0 @category models */
export interface MakeOptions {
  readonly provider: string
  readonly model: string
  /** Default 2048 inputs per call. */
  readonly maxBatchSize?: number | undefined
  /** Calls in flight at once for one `embed`. Default 4. */
  readonly concurrency?: number | undefined
  /** Embeds one batch, already under the size limit. */
  readonly embedBatch: (texts: ReadonlyArray<string>, options: EmbedOptions) => Effect.Effect<BatchResult, Err.LlmError>
}

/** @since 0.1.0 @category metrics */
export const inputsCounter = Metric.counter("effect_llm_embeddings_inputs_total", {
  description: "texts embedded",
  incremental: true
})

/**
 * The service from a per-batch call: checks the input, splits it under `maxBatchSize`,
 * runs the calls, checks each returned the right number of vectors, and joins results
 * and usage in input order.
 * @since 0.1.0 @category constructors
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

// ---------------------------------------------------------------------------
// Implementations
// ---------------------------------------------------------------------------

/**
 * Options common to the embeddings layers.
 * @since 0.1.0 @category models
 */
export interface ProviderOptions {
  readonly model: string
  readonly baseUrl?: string | undefined
  /** The provider id used in errors, spans and usage. */
  readonly provider?: string | undefined
  readonly headers?: Record<string, string> | undefined
  /** Total time for one call. Default 10 minutes. */
  readonly timeout?: Duration.DurationInput | undefined
  /**
   * The largest reply read, in bytes; past it the call fails with `ResponseTooLargeError`.
   * Default 256 MiB (2048 vectors of 3072 floats as JSON text are about 130 MB).
   */
  readonly maxResponseBytes?: number | undefined
  /** The most inputs per call; the provider's limit by default (OpenAI 2048, Gemini 100, Ollama 2048). */
  readonly maxBatchSize?: number | undefined
  /** Calls in flight at once for one `embed`. Default 4. */
  readonly concurrency?: number | undefined
}

type Requirements = HttpClient.HttpClient | KeyPool.KeyPool | RateLimiter.RateLimiter

/** The service over an embeddings wire API: one endpoint, each batch sent through the pool and limiter. */
const fromWire = (wire: EmbeddingsSpec, options: ProviderOptions): Effect.Effect<Service, never, Requirements> =>
  Effect.map(
    resolveEndpoint({
      provider: wire.provider,
      auth: wire.auth,
      headers: options.headers,
      timeout: options.timeout,
      maxResponseBytes: options.maxResponseBytes ?? 256 * 1024 * 1024
    }),
    (endpoint) =>
      make({
        provider: wire.provider,
        model: options.model,
        maxBatchSize: options.maxBatchSize ?? wire.maxBatchSize,
        concurrency: options.concurrency,
        embedBatch: (texts, { dimensions }) => {
          let tokens = 0
          for (const text of texts) tokens += estimateTokens(text)
          const outgoing = { url: wire.url, model: options.model, body: JSON.stringify(wire.body(texts, dimensions)), estimatedTokens: tokens }
          return sendJsonAs(endpoint, outgoing, wire.decode, (result) => result.inputTokens ?? 0)
        }
      })
  )

/**
 * OpenAI-compatible `/embeddings` (OpenAI, OpenRouter, Together, vLLM, Ollama's `/v1`, …).
 * @since 0.1.0 @category constructors
 */
export const makeOpenAiCompatible = (options: ProviderOptions): Effect.Effect<Service, never, Requirements> =>
  fromWire(OpenAiWire.embeddings(options), options)

/**
 * Gemini `batchEmbedContents`; `taskType` (e.g. `RETRIEVAL_DOCUMENT`) is sent with each text.
 * @since 0.1.0 @category constructors
 */
export const makeGemini = (
  options: ProviderOptions & { readonly taskType?: string | undefined }
): Effect.Effect<Service, never, Requirements> => fromWire(GeminiWire.embeddings(options), options)

/**
 * Ollama `/api/embed`.
 * @since 0.1.0 @category constructors
 */
export const makeOllama = (
  options: ProviderOptions & { readonly keepAlive?: string | undefined }
): Effect.Effect<Service, never, Requirements> => fromWire(OllamaWire.embeddings(options), options)

/** @since 0.1.0 @category layers */
export const layerOpenAiCompatible = (options: ProviderOptions): Layer.Layer<Embeddings, never, Requirements> =>
  Layer.effect(Embeddings, makeOpenAiCompatible(options))

/** @since 0.1.0 @category layers */
export const layerOpenAiCompatibleConfig = (
  options: Config.Config.Wrap<ProviderOptions>
): Layer.Layer<Embeddings, ConfigError, Requirements> =>
  Layer.effect(Embeddings, Effect.flatMap(Config.unwrap(options), makeOpenAiCompatible))

/** @since 0.1.0 @category layers */
export const layerGemini = (
  options: ProviderOptions & { readonly taskType?: string | undefined }
): Layer.Layer<Embeddings, never, Requirements> => Layer.effect(Embeddings, makeGemini(options))

/** @since 0.1.0 @category layers */
export const layerGeminiConfig = (
  options: Config.Config.Wrap<ProviderOptions & { readonly taskType?: string | undefined }>
): Layer.Layer<Embeddings, ConfigError, Requirements> => Layer.effect(Embeddings, Effect.flatMap(Config.unwrap(options), makeGemini))

/** @since 0.1.0 @category layers */
export const layerOllama = (
  options: ProviderOptions & { readonly keepAlive?: string | undefined }
): Layer.Layer<Embeddings, never, Requirements> => Layer.effect(Embeddings, makeOllama(options))

/** @since 0.1.0 @category layers */
export const layerOllamaConfig = (
  options: Config.Config.Wrap<ProviderOptions & { readonly keepAlive?: string | undefined }>
): Layer.Layer<Embeddings, ConfigError, Requirements> => Layer.effect(Embeddings, Effect.flatMap(Config.unwrap(options), makeOllama))
