/** OpenAI Responses as a `Provider.Spec`. */
import type { Spec } from "../../../Provider.js"
import { mapRequest } from "../mapRequest.js"
import { bearer, specOf, urlAt, type WireOptions } from "../apiSpec.js"
import { type ReasoningSummary, toWireRequest } from "./request.js"
import { readResponsesError } from "./error.js"
import { fromWireResponse } from "./response.js"
import { EventParser } from "./stream.js"

export const defaultBaseUrl = "https://api.openai.com/v1"

export interface Options extends WireOptions {
  readonly reasoningSummary?: ReasoningSummary | undefined
}

export const spec = (options: Options): Spec => {
  const url = urlAt(options.baseUrl, defaultBaseUrl, "/responses")
  const wireOptions = { reasoningSummary: options.reasoningSummary }
  const provider = options.provider ?? "openai"
  return specOf(provider, {
    auth: bearer,
    framing: "sse",
    url: () => url,
    body: (request, model, stream) => mapRequest(provider, model, () => toWireRequest(request, model, stream, wireOptions)),
    decode: fromWireResponse,
    Parser: EventParser,
    readError: readResponsesError
  })
}
