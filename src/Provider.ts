/**
 * The provider contract: what a wire API must say for the library to serve it, and nothing
 * more. Every built-in provider is a `Spec` made into a `LanguageModel` by `make` (and an
 * `EmbeddingsSpec` made into `Embeddings` by `makeEmbeddings`); a provider of your own is
 * too, and gets the same key pool, rate limits, deadlines, size caps, error mapping,
 * telemetry and stream guarantees. Its `readError` says what its error bodies mean; the
 * HTTP status rules are the library's.
 *
 * ```ts
 * const Echo = Provider.layer({
 *   provider: "echo",
 *   auth: (key) => ({ authorization: `Bearer ${Redacted.value(key)}` }),
 *   framing: "ndjson",
 *   url: () => "http://localhost:9000/chat",
 *   body: (request, model, stream) => ({ model, stream, messages: request.messages }),
 *   decode: (request, model, body) => …,          // a ChatResponse, or a typed LlmError
 *   parser: (request, model) => new EchoParser(), // a StreamParser
 *   readError: (body) => …                        // optional: { message, type, tag? }, or undefined
 * }, { model: "echo-1" })
 * ```
 *
 * @since 0.1.0
 */
import type * as HttpClient from "@effect/platform/HttpClient"
import * as Config from "effect/Config"
import type { ConfigError } from "effect/ConfigError"
import type * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Redacted from "effect/Redacted"
import { type BatchResult, Embeddings, type EmbedOptions, type Service as EmbeddingsService } from "./Embeddings.js"
import * as embeddings from "./internal/embeddings.js"
import * as streamParser from "./internal/providers/streamParser.js"
import * as internal from "./internal/request/model.js"
import * as KeyPool from "./KeyPool.js"
import { LanguageModel, type Service } from "./LanguageModel.js"
import type { LlmError } from "./LlmError.js"
import type * as Message from "./Message.js"
import type { RateLimiter } from "./RateLimiter.js"

/**
 * The options every provider takes.
 * @since 0.1.0 @category models
 */
export interface CommonOptions {
  readonly model: string
  readonly baseUrl?: string | undefined
  /** The provider id used in errors, spans and usage. */
  readonly provider?: string | undefined
  readonly headers?: Record<string, string> | undefined
  readonly contextWindow?: number | undefined
  /**
   * Total time for one request, including the whole body of a stream. Default 10 minutes for
   * a JSON call and 60 minutes for a stream; `Duration.infinity` for none.
   */
  readonly timeout?: Duration.DurationInput | undefined
  /** Streams: the longest wait for the first event. Default 10 minutes. */
  readonly firstTokenTimeout?: Duration.DurationInput | undefined
  /**
   * Streams: the longest wait for the next event, counted while the library waits on the
   * provider. Comments, pings and empty deltas do not renew it. Default 5 minutes.
   */
  readonly idleTimeout?: Duration.DurationInput | undefined
  /** The largest JSON reply read, in bytes; past it the call fails with `ResponseTooLargeError`. Default 64 MiB. */
  readonly maxResponseBytes?: number | undefined
  /** The largest single stream event, in characters; past it the stream fails with `ResponseTooLargeError`. Default 16 MiB. */
  readonly maxEventBytes?: number | undefined
}

/**
 * A provider's stream state machine. `onData` handles one frame (an SSE event's data, or an
 * NDJSON line) and `onEnd` flushes; both push events into `out` and may return a typed error
 * that ends the stream. It must end a finished stream with a `Finish` event, and fail one
 * that stopped before its end. Whatever it throws ends the stream as malformed.
 * @since 0.1.0 @category models
 */
export interface StreamParser {
  onData(data: string, event: string | undefined, out: Array<Message.StreamEvent>): LlmError | undefined
  onEnd(out: Array<Message.StreamEvent>): LlmError | undefined
  /** The text of the `TextDelta` events pushed so far. */
  readonly emittedText: string
  /** The tokens to settle with the rate limiter once the stream has finished, when known. */
  readonly settledTokens: number | undefined
}

/**
 * What an API's error body says, as its spec's `readError` reads it. The request path makes
 * the `LlmError` of it: the reply's HTTP status picks the class (401 `AuthenticationError`,
 * 403 `PermissionError`, 429 `RateLimitError`, 5xx `ServerError`, other 4xx
 * `InvalidRequestError`), `retry-after` and `x-should-retry` apply, and `tag` names the class
 * where the body says more than its status.
 * @since 0.1.0 @category models
 */
export interface ErrorBody {
  /** The provider's own words, quoted in the error's message. */
  readonly message?: string | undefined
  /** The provider's name for the error (its type, code or status), quoted in the error's message. */
  readonly type?: string | undefined
  /** The error it is where the body says more than the status: a spent quota, a prompt too long, a filtered reply. */
  readonly tag?: "QuotaExceededError" | "ContextLengthError" | "ContentFilterError" | undefined
  /**
   * The HTTP status it stands for, for a body that came without its own: an error object
   * sent with 2xx, a stream's error event. When absent, the words of `type` and `message`
   * decide (rate limit → 429, not found → 404, …), else it counts as a 500.
   */
  readonly status?: number | undefined
  /** How long the body asks to wait before a retry (Gemini's `RetryInfo`); a `retry-after` header wins. */
  readonly retryAfter?: Duration.Duration | undefined
}

/**
 * A wire API: how a request maps to its body and a reply to a response, and nothing else.
 * @since 0.1.0 @category models
 */
export interface Spec {
  /** The provider id used in errors, spans and usage; the options' `provider` overrides it. */
  readonly provider: string
  /** The headers that carry a key. They are hidden from every span and log. */
  readonly auth: (key: Redacted.Redacted<string>) => Record<string, string>
  /** How a stream's body is cut into frames. */
  readonly framing: "sse" | "ndjson"
  /** Headers every request carries, such as an API version; the options' `headers` override them. */
  readonly headers?: Record<string, string> | undefined
  /** The stream request's `accept` header; by default the framing's media type. */
  readonly streamAccept?: string | undefined
  readonly url: (model: string, stream: boolean) => string
  /** The wire body, or a typed error for a request this API cannot take (then nothing is sent). */
  readonly body: (request: Message.ChatRequest, model: string, stream: boolean) => unknown
  /** A 2xx body as a response, or the typed error that says what was wrong with it. */
  readonly decode: (request: Message.ChatRequest, model: string, body: string, status: number) => Message.ChatResponse | LlmError
  readonly parser: (request: Message.ChatRequest, model: string) => StreamParser
  /**
   * Reads this API's error bodies: a reply's body under a status other than 2xx, and a 2xx
   * body that may be an error object (gateways send rate limits and outages that way).
   * `undefined` means not an error body it knows: a 2xx body is then a reply, another is read
   * generically. Absent, the generic reading takes `{ "error": { "message", "type", "code" } }`
   * and `{ "error": "…" }`, a numeric `code` being the status. A reader that throws counts as
   * absent.
   */
  readonly readError?: ((body: string) => ErrorBody | undefined) | undefined
  /**
   * The prompt tokens one image, document or audio part counts for, by the API's documented
   * rule, for the rate limiter's estimate (its base64 is not counted as text). Absent,
   * OpenAI's rule: image tiles, a page image and text per PDF page.
   */
  readonly mediaTokens?: ((part: Message.MediaPart) => number) | undefined
}

/**
 * What every provider layer stands on.
 * @since 0.1.0 @category models
 */
export type Requirements = HttpClient.HttpClient | KeyPool.KeyPool | RateLimiter

/**
 * The model over `spec`. An option that cannot be used (a size cap that is not a positive
 * number) fails with a `ConfigError` naming it.
 * @since 0.1.0 @category constructors
 */
export const make: (spec: Spec, options: CommonOptions) => Effect.Effect<Service, ConfigError, Requirements> = internal.make

/**
 * @since 0.1.0 @category layers
 */
export const layer = (spec: Spec, options: CommonOptions): Layer.Layer<LanguageModel, ConfigError, Requirements> =>
  Layer.effect(LanguageModel, make(spec, options))

/**
 * A provider module's `layer` (options given) and `layerConfig` (options read from config),
 * from its `make`.
 * @since 0.1.0 @category layers
 */
export const layers = <Options, E = never>(make: (options: Options) => Effect.Effect<Service, E, Requirements>) =>
  layersOf(LanguageModel, make)

/** A service's `layer` and `layerConfig` from its `make`. */
const layersOf = <I, S, Options, E>(tag: Context.Tag<I, S>, make: (options: Options) => Effect.Effect<S, E, Requirements>) => ({
  layer: (options: Options): Layer.Layer<I, E, Requirements> => Layer.effect(tag, make(options)),
  layerConfig: (options: Config.Config.Wrap<Options>): Layer.Layer<I, ConfigError | E, Requirements> =>
    Layer.effect(tag, Effect.flatMap(Config.unwrap(options), make))
})

// ---------------------------------------------------------------------------
// Embeddings
// ---------------------------------------------------------------------------

/**
 * An embeddings wire API, as a `Spec` is a chat one: where, how keyed, the body of one call
 * and the reading of its reply, and nothing else. `makeEmbeddings` gives it the batching,
 * key pool, limits, deadlines, size caps, error mapping and telemetry of the built-in ones.
 *
 * ```ts
 * const Vectors = Provider.layerEmbeddings({
 *   provider: "vectors",
 *   auth: (key) => ({ authorization: `Bearer ${Redacted.value(key)}` }),
 *   maxBatchSize: 64,
 *   url: () => "http://localhost:9000/embed",
 *   body: (texts, model, { dimensions }) => ({ model, texts, dimensions }),
 *   decode: (texts, model, body) => …       // { vectors, inputTokens }, or a typed LlmError
 * }, { model: "vectors-1" })
 * ```
 *
 * @since 0.1.0 @category models
 */
export interface EmbeddingsSpec {
  /** The provider id used in errors, spans and usage; the options' `provider` overrides it. */
  readonly provider: string
  /** The headers that carry a key. They are hidden from every span and log. */
  readonly auth: (key: Redacted.Redacted<string>) => Record<string, string>
  /** Headers every request carries; the options' `headers` override them. */
  readonly headers?: Record<string, string> | undefined
  /** The API's most inputs per call; longer lists are split. The options' `maxBatchSize` overrides it. */
  readonly maxBatchSize: number
  readonly url: (model: string) => string
  /** The wire body of one call (its texts already under the batch size), or a typed error for input this API cannot take. */
  readonly body: (texts: ReadonlyArray<string>, model: string, options: EmbedOptions) => unknown
  /** A 2xx body as one vector per text, in their order, or the typed error that says what was wrong with it. */
  readonly decode: (texts: ReadonlyArray<string>, model: string, body: string, status: number) => BatchResult | LlmError
  /** Reads this API's error bodies, as `Spec.readError` does; the generic reading when absent. */
  readonly readError?: ((body: string) => ErrorBody | undefined) | undefined
}

/**
 * The options every embeddings provider takes.
 * @since 0.1.0 @category models
 */
export interface EmbeddingsOptions {
  readonly model: string
  /** Where the API is served, for the built-in providers' specs. */
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
  /** The most inputs per call; the spec's by default. */
  readonly maxBatchSize?: number | undefined
  /** Calls in flight at once for one `embed`. Default 4. */
  readonly concurrency?: number | undefined
}

/**
 * The `Embeddings` service over `spec`.
 * @since 0.1.0 @category constructors
 */
export const makeEmbeddings: (
  spec: EmbeddingsSpec,
  options: EmbeddingsOptions
) => Effect.Effect<EmbeddingsService, ConfigError, Requirements> = embeddings.fromSpec

/**
 * @since 0.1.0 @category layers
 */
export const layerEmbeddings = (spec: EmbeddingsSpec, options: EmbeddingsOptions): Layer.Layer<Embeddings, ConfigError, Requirements> =>
  Layer.effect(Embeddings, makeEmbeddings(spec, options))

/**
 * A provider module's embeddings `layer` (options given) and `layerConfig` (options read from
 * config), from its `make`.
 * @since 0.1.0 @category layers
 */
export const embeddingsLayers = <Options>(make: (options: Options) => Effect.Effect<EmbeddingsService, ConfigError, Requirements>) =>
  layersOf(Embeddings, make)

// ---------------------------------------------------------------------------
// Keys and parsers
// ---------------------------------------------------------------------------

/**
 * A model layer with its key pool read from `envVar` (one key, or a comma-separated list).
 * @since 0.1.0 @category layers
 */
export const withEnvKeys = (
  model: Layer.Layer<LanguageModel, ConfigError, Requirements>,
  providerId: string,
  envVar: string
): Layer.Layer<LanguageModel, ConfigError, HttpClient.HttpClient | RateLimiter> =>
  model.pipe(Layer.provide(KeyPool.layerConfig({ providerId, keys: Config.redacted(envVar) })))

/**
 * For parsers: pushes a text or reasoning delta, merged with the previous one of the same kind
 * (the same text in fewer elements).
 * @since 0.1.0 @category utils
 */
export const pushDelta: (out: Array<Message.StreamEvent>, tag: "TextDelta" | "ReasoningDelta", text: string) => void = streamParser.pushDelta
