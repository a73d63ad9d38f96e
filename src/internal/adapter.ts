/**
 * What every provider adapter shares once its wire format is written: turning a request
 * into an outgoing call, and `chat` / `stream` over `internal/http`. A provider supplies
 * its URL, body, decoder and stream parser; nothing else differs.
 */
import type * as HttpClient from "@effect/platform/HttpClient"
import * as Config from "effect/Config"
import type { ConfigError } from "effect/ConfigError"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import * as KeyPool from "../KeyPool.js"
import { LanguageModel, type Service } from "../LanguageModel.js"
import * as Err from "../LlmError.js"
import type * as Message from "../Message.js"
import { estimateTokens, type RateLimiter } from "../RateLimiter.js"
import * as Http from "./request/index.js"
import { watchable } from "./request/delivered.js"
import { validateRequest } from "./request/validate.js"

/** The options every provider takes. */
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

export interface Spec {
  readonly provider: string
  readonly options: CommonOptions
  readonly endpoint: Http.Endpoint
  readonly framing: Http.Framing
  /** The stream's `accept` header. */
  readonly streamAccept: string
  readonly url: (model: string, stream: boolean) => string
  /** The wire body, or a typed error for a request this provider cannot take (sent nowhere). */
  readonly body: (request: Message.ChatRequest, model: string, stream: boolean) => unknown
  readonly decode: (request: Message.ChatRequest, model: string, body: string, status: number) => Message.ChatResponse | Err.LlmError
  readonly parser: (request: Message.ChatRequest, model: string) => Http.StreamParser
}

/** The endpoint options of `CommonOptions`, for `Http.resolveEndpoint`. */
export const endpointOptions = (options: Omit<CommonOptions, "model">) => ({
  headers: options.headers,
  timeout: options.timeout,
  firstTokenTimeout: options.firstTokenTimeout,
  idleTimeout: options.idleTimeout,
  maxResponseBytes: options.maxResponseBytes,
  maxEventBytes: options.maxEventBytes
})

/** A `LanguageModel` over a provider's wire format. */
export const languageModel = (spec: Spec): Service => {
  const streamHeaders = { accept: spec.streamAccept }
  const outgoing = (request: Message.ChatRequest, stream: boolean): Http.Outgoing | Err.LlmError => {
    const model = request.model ?? spec.options.model
    const invalid = validateRequest(request, spec.provider, model)
    if (invalid !== undefined) return invalid
    const wire = spec.body(request, model, stream)
    if (Err.isLlmError(wire)) return wire
    const body = JSON.stringify(wire)
    const url = spec.url(model, stream)
    return stream
      ? { url, model, body, estimatedTokens: estimateTokens(body), headers: streamHeaders }
      : { url, model, body, estimatedTokens: estimateTokens(body) }
  }
  return {
    provider: spec.provider,
    model: spec.options.model,
    contextWindow: spec.options.contextWindow,
    chat: (request) =>
      Effect.suspend(() => {
        const out = outgoing(request, false)
        if (Err.isLlmError(out)) return Effect.fail(out)
        return Http.sendJson(spec.endpoint, out, (body, status) => spec.decode(request, out.model, body, status))
      }),
    stream: (request) =>
      watchable((watch) =>
        Stream.suspend(() => {
          const out = outgoing(request, true)
          if (Err.isLlmError(out)) return Stream.fail(out)
          return Http.sendStream(spec.endpoint, out, spec.framing, () => spec.parser(request, out.model), watch)
        })
      )
  }
}

/** Merges consecutive deltas of one kind within a network read: same text, fewer elements. */
export const pushDelta = (out: Array<Message.StreamEvent>, tag: "TextDelta" | "ReasoningDelta", text: string): void => {
  const last = out[out.length - 1]
  if (last !== undefined && last._tag === tag) out[out.length - 1] = { _tag: tag, text: last.text + text }
  else out.push({ _tag: tag, text })
}

/** What every provider layer stands on. */
export type Requirements = HttpClient.HttpClient | KeyPool.KeyPool | RateLimiter

/** A provider's `layer` (options given) and `layerConfig` (options read from config), from its `make`. */
export const layers = <Options>(make: (options: Options) => Effect.Effect<Service, never, Requirements>) => ({
  layer: (options: Options): Layer.Layer<LanguageModel, never, Requirements> => Layer.effect(LanguageModel, make(options)),
  layerConfig: (options: Config.Config.Wrap<Options>): Layer.Layer<LanguageModel, ConfigError, Requirements> =>
    Layer.effect(LanguageModel, Effect.flatMap(Config.unwrap(options), make))
})

/** A model layer with its key pool read from `envVar` (one key, or a comma-separated list). */
export const withEnvKeys = (
  model: Layer.Layer<LanguageModel, never, Requirements>,
  providerId: string,
  envVar: string
): Layer.Layer<LanguageModel, ConfigError, HttpClient.HttpClient | RateLimiter> =>
  model.pipe(Layer.provide(KeyPool.layerConfig({ providerId, keys: Config.redacted(envVar) })))
