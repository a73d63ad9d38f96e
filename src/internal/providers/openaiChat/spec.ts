/** Chat Completions as a `Provider.Spec`. */
import type { Spec } from "../../../Provider.js"
import { bearer, trimUrl } from "../wire.js"
import { type MaxTokensField, toWireRequest } from "./request.js"
import { fromWireResponse } from "./response.js"
import { ChunkParser } from "./stream.js"

export const defaultBaseUrl = "https://api.openai.com/v1"

/** The options the wire reads; a provider module's options are a superset. */
export interface Options {
  readonly provider?: string | undefined
  readonly baseUrl?: string | undefined
  readonly maxTokensField?: MaxTokensField | undefined
}

export const spec = (options: Options): Spec => {
  const provider = options.provider ?? "openai"
  const url = `${trimUrl(options.baseUrl ?? defaultBaseUrl)}/chat/completions`
  const maxTokensField = options.maxTokensField ?? (provider === "openai" ? "max_completion_tokens" : "max_tokens")
  return {
    provider,
    auth: bearer,
    framing: "sse",
    url: () => url,
    body: (request, model, stream) => toWireRequest(request, model, stream, maxTokensField),
    decode: (request, model, body, status) => fromWireResponse(provider, model, request, body, status),
    parser: (request, model) => new ChunkParser(provider, model, request)
  }
}
