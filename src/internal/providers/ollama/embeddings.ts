/** Ollama `/api/embed`. */
import * as Schema from "effect/Schema"
import type { BatchResult } from "../../../Embeddings.js"
import * as Err from "../../../LlmError.js"
import type { EmbeddingsSpec } from "../../../Provider.js"
import type { WireOptions } from "../apiSpec.js"
import { jsonDecoder } from "../decoding.js"
import { readError } from "./error.js"
import { auth, urlOf } from "./spec.js"

/** The `/api/embed` request body. */
export const toEmbeddingsRequest = (
  model: string,
  texts: ReadonlyArray<string>,
  options?: { readonly dimensions?: number | undefined; readonly keepAlive?: string | undefined }
): Record<string, unknown> => {
  const body: Record<string, unknown> = { model, input: texts }
  if (options?.dimensions !== undefined) body.dimensions = options.dimensions
  if (options?.keepAlive !== undefined) body.keep_alive = options.keepAlive
  return body
}

export const WireEmbeddingsResponse = Schema.Struct({
  embeddings: Schema.Array(Schema.Array(Schema.Number)),
  prompt_eval_count: Schema.optional(Schema.Number)
})

const decodeEmbeddings = jsonDecoder(WireEmbeddingsResponse)

/** Decodes an `/api/embed` body: vectors in input order and the prompt tokens. */
export const fromEmbeddingsResponse = (provider: string, model: string, body: string, status = 200): BatchResult | Err.LlmError => {
  const wire = decodeEmbeddings(provider, model, body, status)
  if (wire instanceof Err.MalformedResponseError) return wire
  return { vectors: wire.embeddings, inputTokens: wire.prompt_eval_count }
}

/** Ollama `/api/embed` as a `Provider.EmbeddingsSpec`. */
export const embeddingsSpec = (options: WireOptions & { readonly keepAlive?: string | undefined }): EmbeddingsSpec => {
  const provider = options.provider ?? "ollama"
  const url = urlOf(options.baseUrl, "/api/embed")
  return {
    provider,
    auth,
    url: () => url,
    maxBatchSize: 2048,
    body: (texts, model, { dimensions }) => toEmbeddingsRequest(model, texts, { dimensions, keepAlive: options.keepAlive }),
    decode: (_texts, model, body, status) => fromEmbeddingsResponse(provider, model, body, status),
    readError
  }
}
