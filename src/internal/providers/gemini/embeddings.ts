/** Gemini `batchEmbedContents`. */
import * as Schema from "effect/Schema"
import type { BatchResult } from "../../../Embeddings.js"
import * as Err from "../../../LlmError.js"
import type { EmbeddingsSpec } from "../../../Provider.js"
import type { WireOptions } from "../apiSpec.js"
import { jsonDecoder } from "../decoding.js"
import { readError } from "./error.js"
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
export const fromEmbeddingsResponse = (provider: string, model: string, body: string, status = 200): BatchResult | Err.LlmError => {
  const wire = decodeEmbeddings(provider, model, body, status)
  if (wire instanceof Err.MalformedResponseError) return wire
  return { vectors: wire.embeddings.map((e) => e.values), inputTokens: wire.usageMetadata?.promptTokenCount }
}

/** Gemini `batchEmbedContents` as a `Provider.EmbeddingsSpec`; `taskType` (e.g. `RETRIEVAL_DOCUMENT`) is sent with each text. */
export const embeddingsSpec = (options: WireOptions & { readonly taskType?: string | undefined }): EmbeddingsSpec => {
  const provider = options.provider ?? "gemini"
  return {
    provider,
    auth,
    url: (model) => urlOf(options.baseUrl, model, "batchEmbedContents"),
    maxBatchSize: 100,
    body: (texts, model, { dimensions }) => toEmbeddingsRequest(model, texts, { dimensions, taskType: options.taskType }),
    decode: (_texts, model, body, status) => fromEmbeddingsResponse(provider, model, body, status),
    readError
  }
}
