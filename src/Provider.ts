/**
 * The provider contract: what a wire API must say for the library to serve it, and nothing
 * more. Every built-in provider is a `Spec` made into a `LanguageModel` by `make`; a provider
 * of your own is too, and gets the same key pool, rate limits, deadlines, size caps, error
 * mapping, telemetry and stream guarantees.
 *
 * ```ts
 * const Echo = Provider.layer({
 *   provider: "echo",
 *   auth: (key) => ({ authorization: `Bearer ${Redacted.value(key)}` }),
 *   framing: "ndjson",
 *   url: () => "http://localhost:9000/chat",
 *   body: (request, model, stream) => ({ model, stream, messages: request.messages }),
 *   decode: (request, model, body) => …,         // a ChatResponse, or a typed LlmError
 *   parser: (request, model) => new EchoParser() // a StreamParser
 * }, { model: "echo-1" })
 * ```
 *
 * @since 0.1.0
 */
import type * as HttpClient from "@effect/platform/HttpClient"
import * as Config from "effect/Config"
import type { ConfigError } from "effect/ConfigError"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Redacted from "effect/Redacted"
import * as wire from "./internal/providers/wire.js"
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
export const layers = <Options>(make: (options: Options) => Effect.Effect<Service, ConfigError, Requirements>) => ({
  layer: (options: Options): Layer.Layer<LanguageModel, ConfigError, Requirements> => Layer.effect(LanguageModel, make(options)),
  layerConfig: (options: Config.Config.Wrap<Options>): Layer.Layer<LanguageModel, ConfigError, Requirements> =>
    Layer.effect(LanguageModel, Effect.flatMap(Config.unwrap(options), make))
})

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
export const pushDelta: (out: Array<Message.StreamEvent>, tag: "TextDelta" | "ReasoningDelta", text: string) => void = wire.pushDelta
