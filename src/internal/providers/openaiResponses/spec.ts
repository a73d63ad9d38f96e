/** OpenAI Responses as a `Provider.Spec`. */
import type { Spec } from "../../../Provider.js"
import { bearer, trimUrl } from "../wire.js"
import { type ReasoningSummary, toWireRequest } from "./request.js"
import { fromWireResponse } from "./response.js"
import { EventParser } from "./stream.js"

export const defaultBaseUrl = "https://api.openai.com/v1"

/** The options the wire reads; a provider module's options are a superset. */
export interface Options {
  readonly provider?: string | undefined
  readonly baseUrl?: string | undefined
  readonly reasoningSummary?: ReasoningSummary | undefined
}

export const spec = (options: Options): Spec => {
  const provider = options.provider ?? "openai"
  const url = `${trimUrl(options.baseUrl ?? defaultBaseUrl)}/responses`
  const wireOptions = { reasoningSummary: options.reasoningSummary }
  return {
    provider,
    auth: bearer,
    framing: "sse",
    url: () => url,
    body: (request, model, stream) => toWireRequest(request, model, stream, wireOptions),
    decode: (request, model, body, status) => fromWireResponse(provider, model, request, body, status),
    parser: (request, model) => new EventParser(provider, model, request)
  }
}
