/** OpenAI-compatible `/embeddings` (OpenAI, OpenRouter, Together, vLLM, Ollama's `/v1`, …). */
import * as Schema from "effect/Schema"
import type { BatchResult } from "../../../Embeddings.js"
import * as Err from "../../../LlmError.js"
import type { EmbeddingsSpec } from "../../../Provider.js"
import { malformed } from "../../request/errors.js"
import { bearer, urlAt, type WireOptions } from "../apiSpec.js"
import { jsonDecoder } from "../decoding.js"
import { readError } from "./error.js"
import { defaultBaseUrl } from "./spec.js"

export const WireEmbeddingsResponse = Schema.Struct({
  data: Schema.Array(Schema.Struct({ index: Schema.optional(Schema.Number), embedding: Schema.Array(Schema.Number) })),
  model: Schema.optional(Schema.String),
  usage: Schema.optional(Schema.Struct({ prompt_tokens: Schema.Number, total_tokens: Schema.optional(Schema.Number) }))
})

const decodeEmbeddings = jsonDecoder(WireEmbeddingsResponse)

/** Decodes an `/embeddings` body, ordering vectors by their `index`. */
export const fromEmbeddingsResponse = (provider: string, model: string, body: string, status = 200): BatchResult | Err.LlmError => {
  const wire = decodeEmbeddings(provider, model, body, status)
  if (wire instanceof Err.MalformedResponseError) return wire
  const data = wire.data
  const vectors: Array<ReadonlyArray<number>> = new Array(data.length)
  for (let i = 0; i < data.length; i++) {
    const item = data[i]!
    const at = item.index ?? i
    if (at < 0 || at >= data.length || vectors[at] !== undefined) {
      return malformed(provider, model, body, `embedding index ${at} is out of range or repeated`, status)
    }
    vectors[at] = item.embedding
  }
  return { vectors, inputTokens: wire.usage?.prompt_tokens }
}

/** OpenAI-compatible `/embeddings` as a `Provider.EmbeddingsSpec`. */
export const embeddingsSpec = (options: WireOptions): EmbeddingsSpec => {
  const provider = options.provider ?? "openai"
  const url = urlAt(options.baseUrl, defaultBaseUrl, "/embeddings")
  return {
    provider,
    auth: bearer,
    url: () => url,
    maxBatchSize: 2048,
    body: (texts, model, { dimensions }) => {
      const wire: Record<string, unknown> = { model, input: texts, encoding_format: "float" }
      if (dimensions !== undefined) wire.dimensions = dimensions
      return wire
    },
    decode: (_texts, model, body, status) => fromEmbeddingsResponse(provider, model, body, status),
    readError
  }
}
