/** Gemini `batchEmbedContents`. */
import * as Schema from "effect/Schema"
import * as Err from "../../../LlmError.js"
import { jsonDecoder } from "../decoding.js"
import type { EmbeddingsBatch, EmbeddingsSpec } from "../embeddingsSpec.js"
import { auth, modelPath, urlOf } from "./spec.js"

/** The `batchEmbedContents` request body. */
export const toEmbeddingsRequest = (
  model: string,
  texts: ReadonlyArray<string>,
  options?: { readonly dimensions?: number | undefined; readonly taskType?: string | undefined }
): Record<string, unknown> => ({
  requests: texts.map((text) => {
    const one: Record<string, unknown> = { model: modelPath(model), content: { parts: [{ text }] } }
    if (options?.dimensions !== undefined) one.outputDimensionality = options.dimensions
    if (options?.taskType !== undefined) one.taskType = options.taskType
    return one
  })
})

export const WireEmbeddingsResponse = Schema.Struct({
  embeddings: Schema.Array(Schema.Struct({ values: Schema.Array(Schema.Number) })),
  usageMetadata: Schema.optional(Schema.Struct({ promptTokenCount: Schema.optional(Schema.Number) }))
})

const decodeEmbeddings = jsonDecoder(WireEmbeddingsResponse)

/** Decodes a `batchEmbedContents` body: vectors in input order, and the prompt tokens when Gemini reports them. */
export const fromEmbeddingsResponse = (provider: string, model: string, body: string, status = 200): EmbeddingsBatch | Err.LlmError => {
  const wire = decodeEmbeddings(provider, model, body, status)
  if (wire instanceof Err.MalformedResponseError) return wire
  return { vectors: wire.embeddings.map((e) => e.values), inputTokens: wire.usageMetadata?.promptTokenCount }
}

/** `taskType` (e.g. `RETRIEVAL_DOCUMENT`) is sent with each text. */
export const embeddings = (options: {
  readonly model: string
  readonly provider?: string | undefined
  readonly baseUrl?: string | undefined
  readonly taskType?: string | undefined
}): EmbeddingsSpec => {
  const provider = options.provider ?? "gemini"
  return {
    provider,
    auth,
    url: urlOf(options.baseUrl, options.model, "batchEmbedContents"),
    maxBatchSize: 100,
    body: (texts, dimensions) => toEmbeddingsRequest(options.model, texts, { dimensions, taskType: options.taskType }),
    decode: (body, status) => fromEmbeddingsResponse(provider, options.model, body, status)
  }
}
