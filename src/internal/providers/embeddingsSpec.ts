import type * as Redacted from "effect/Redacted"
import type * as Err from "../../LlmError.js"

/** One embeddings call's result: vectors in input order, and the input tokens when reported. */
export interface EmbeddingsBatch {
  readonly vectors: ReadonlyArray<ReadonlyArray<number>>
  readonly inputTokens: number | undefined
}

/** An embeddings wire API, as a chat API is a `Spec`: where, how keyed, the body, the decode. */
export interface EmbeddingsSpec {
  readonly provider: string
  readonly auth: (key: Redacted.Redacted<string>) => Record<string, string>
  readonly url: string
  /** The API's most inputs per call. */
  readonly maxBatchSize: number
  readonly body: (texts: ReadonlyArray<string>, dimensions: number | undefined) => Record<string, unknown>
  readonly decode: (body: string, status: number) => EmbeddingsBatch | Err.LlmError
}
