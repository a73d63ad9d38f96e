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
  // a list of floats, or (`encoding_format: "base64"`) their little-endian float32 bytes in base64
  data: Schema.Array(Schema.Struct({ index: Schema.optional(Schema.Number), embedding: Schema.Union(Schema.Array(Schema.Number), Schema.String) })),
  model: Schema.optional(Schema.String),
  usage: Schema.optional(Schema.Struct({ prompt_tokens: Schema.Number, total_tokens: Schema.optional(Schema.Number) }))
})

const decodeEmbeddings = jsonDecoder(WireEmbeddingsResponse)

/** A base64 vector: little-endian float32s, as `encoding_format: "base64"` sends them; undefined when not whole floats. */
export const decodeBase64Vector = (base64: string): Array<number> | undefined => {
  const bytes = Buffer.from(base64, "base64")
  if (bytes.length % 4 !== 0) return undefined
  // copied into an aligned buffer of its own: a Float32Array needs 4-byte alignment
  const aligned = new Uint8Array(bytes.length)
  aligned.set(bytes)
  if (littleEndian) return Array.from(new Float32Array(aligned.buffer))
  const view = new DataView(aligned.buffer)
  return Array.from({ length: aligned.length / 4 }, (_, i) => view.getFloat32(i * 4, true))
}

const littleEndian = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1

/** Providers whose `/embeddings` takes `encoding_format: "base64"` (a quarter of the bytes of JSON floats). */
const base64Providers = new Set(["openai"])

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
    if (typeof item.embedding === "string") {
      const vector = decodeBase64Vector(item.embedding)
      if (vector === undefined) return malformed(provider, model, body, `embedding ${at} is not base64 of whole float32 values`, status)
      vectors[at] = vector
    } else vectors[at] = item.embedding
  }
  return { vectors, inputTokens: wire.usage?.prompt_tokens }
}

/**
 * OpenAI-compatible `/embeddings` as a `Provider.EmbeddingsSpec`. OpenAI itself is asked for
 * base64 vectors (`encoding_format: "base64"`), decoded here; compatible servers, which do not
 * all take it, for floats.
 */
export const embeddingsSpec = (options: WireOptions): EmbeddingsSpec => {
  const provider = options.provider ?? "openai"
  const url = urlAt(options.baseUrl, defaultBaseUrl, "/embeddings")
  const encoding = base64Providers.has(provider) ? "base64" : "float"
  return {
    provider,
    auth: bearer,
    url: () => url,
    maxBatchSize: 2048,
    body: (texts, model, { dimensions }) => {
      const wire: Record<string, unknown> = { model, input: texts, encoding_format: encoding }
      if (dimensions !== undefined) wire.dimensions = dimensions
      return wire
    },
    decode: (_texts, model, body, status) => fromEmbeddingsResponse(provider, model, body, status),
    readError
  }
}
