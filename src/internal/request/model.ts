/**
 * A `LanguageModel` over a provider's `Spec`: each call is validated, mapped to its wire body
 * and sent down the request path; nothing else differs between providers.
 */
import * as Channel from "effect/Channel"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import type { Service } from "../../LanguageModel.js"
import * as Err from "../../LlmError.js"
import type * as Message from "../../Message.js"
import type { CommonOptions, Spec } from "../../Provider.js"
import { estimateTokens } from "../../RateLimiter.js"
import { mediaAdjustment, mediaTokens } from "../mediaTokens.js"
import { reporting, type Tracker } from "./delivered.js"
import { type Endpoint, type Outgoing, resolveEndpoint } from "./endpoint.js"
import { readErrorBody } from "./errorBody.js"
import { sendChat } from "./chatJson.js"
import { streamChannel } from "./stream.js"
import { validateRequest } from "./validate.js"

const acceptOf = { sse: "text/event-stream", ndjson: "application/x-ndjson" } as const

/** The endpoint options of `CommonOptions`. */
export const endpointOptions = (options: Omit<CommonOptions, "model">) => ({
  headers: options.headers,
  timeout: options.timeout,
  firstTokenTimeout: options.firstTokenTimeout,
  idleTimeout: options.idleTimeout,
  maxResponseBytes: options.maxResponseBytes,
  maxEventBytes: options.maxEventBytes
})

/** The model over `spec`, with `options`' deadlines, caps and headers resolved once. */
export const make = (spec: Spec, options: CommonOptions) =>
  Effect.map(
    resolveEndpoint({
      provider: options.provider ?? spec.provider,
      auth: spec.auth,
      ...endpointOptions(options),
      headers: spec.headers === undefined ? options.headers : { ...spec.headers, ...options.headers }
    }),
    (endpoint) => languageModel(spec, options, endpoint)
  )

export const languageModel = (spec: Spec, options: CommonOptions, endpoint: Endpoint): Service => {
  const provider = endpoint.provider
  const streamHeaders = { accept: spec.streamAccept ?? acceptOf[spec.framing] }
  const readError = spec.readError ?? readErrorBody
  const countMedia = spec.mediaTokens ?? ((part: Message.MediaPart) => mediaTokens(part, "openai"))
  const outgoing = (request: Message.ChatRequest, stream: boolean): Outgoing | Err.LlmError => {
    const model = request.model ?? options.model
    const invalid = validateRequest(request, provider, model)
    if (invalid !== undefined) return invalid
    let wire: unknown
    let url: string
    try {
      wire = spec.body(request, model, stream)
      if (Err.isLlmError(wire)) return wire
      url = spec.url(model, stream)
    } catch (thrown) {
      // a spec's mapping that throws (a custom provider's, or a request it cannot map) is typed
      return new Err.InvalidRequestError({
        provider,
        model,
        message: `${provider} could not map the request: ${thrown instanceof Error ? thrown.message : String(thrown)}`
      })
    }
    const body = JSON.stringify(wire)
    // media count by the API's rule, not by the length of their base64
    const estimatedTokens = Math.max(1, estimateTokens(body) + mediaAdjustment(request, countMedia))
    return stream
      ? { url, model, body, estimatedTokens, headers: streamHeaders }
      : { url, model, body, estimatedTokens }
  }
  return {
    provider,
    model: options.model,
    contextWindow: options.contextWindow,
    chat: (request) =>
      Effect.suspend(() => {
        const out = outgoing(request, false)
        if (Err.isLlmError(out)) return Effect.fail(out)
        return sendChat(endpoint, out, readError, (body, status) => spec.decode(request, out.model, body, status))
      }),
    // a provider's stream reports what it delivered itself, at no cost per chunk
    stream: reporting((request: Message.ChatRequest, tracker?: Tracker) =>
      Stream.fromChannel(Channel.suspend(() => {
        const out = outgoing(request, true)
        if (Err.isLlmError(out)) return Channel.fail(out)
        const model = out.model
        return streamChannel(endpoint, out, spec.framing, readError, () => spec.parser(request, model), tracker)
      })))
  }
}
