/**
 * What the fake's embeddings routes share (OpenAI-compatible `/embeddings`, Gemini
 * `:batchEmbedContents` and `:embedContent`, Ollama `/api/embed` and `/api/embeddings`): vectors are a deterministic function of the
 * text, so tests can check that order is kept across batches.
 */
import type { Reply } from "../../Testing.js"
import { approxTokens, bodyOf, cut, type ErrorBodyOptions, type FakeRoute, flushed, requestIdOf, sleep } from "./route.js"

/** A unit-free vector from the text: FNV-1a seeded per component. */
export const fakeVector = (text: string, dimensions: number): Array<number> => {
  const out: Array<number> = []
  for (let j = 0; j < dimensions; j++) {
    let h = 0x811c9dc5 ^ j
    for (let i = 0; i < text.length; i++) {
      h ^= text.charCodeAt(i)
      h = Math.imul(h, 0x01000193)
    }
    // float32 values, as real embeddings are, so base64 and JSON replies carry the same numbers
    out.push(Math.fround(((h >>> 0) % 20001) / 10000 - 1))
  }
  return out
}

/** One embeddings wire format, as the fake speaks it. */
export interface EmbeddingsFormat {
  readonly matches: (path: string) => boolean
  /** The texts to embed and the dimensions asked for. */
  readonly inputs: (body: Record<string, unknown>) => { readonly texts: ReadonlyArray<string>; readonly dimensions: number | undefined }
  readonly payload: (reply: {
    readonly body: Record<string, unknown>
    readonly vectors: ReadonlyArray<ReadonlyArray<number>>
    readonly tokens: number
    readonly model: string
    readonly reply: Reply
  }) => unknown
  readonly errorBody: (status: number, message: string, options: ErrorBodyOptions) => string
  /** The header carrying a request id, when the API sends one. */
  readonly requestId?: string
}

export const embeddingsRoute = (format: EmbeddingsFormat): FakeRoute => ({
  matches: format.matches,
  errorBody: format.errorBody,
  ...(format.requestId === undefined ? {} : { requestId: format.requestId }),
  reply: async (reply, request, res, fault) => {
    const body = bodyOf(request)
    const { dimensions, texts } = format.inputs(body)
    const size = dimensions ?? reply.embeddingDimensions ?? 8
    const headers: Record<string, string> = {
      "content-type": "application/json",
      ...(format.requestId === undefined ? {} : { [format.requestId]: requestIdOf(request) }),
      ...reply.headers
    }
    if (reply.delayMs) await sleep(reply.delayMs)

    if (reply.maxEmbeddingInputs !== undefined && texts.length > reply.maxEmbeddingInputs) {
      res.writeHead(400, headers)
      res.end(format.errorBody(400, `too many inputs: ${texts.length} > ${reply.maxEmbeddingInputs}`, {}))
      return
    }
    if (fault?._tag === "StreamErrorEvent") {
      res.writeHead(500, headers)
      res.end(format.errorBody(500, "fake embeddings failure", {}))
      return
    }
    const vectors = texts.map((t) => fakeVector(t, size))
    const tokens = texts.reduce((n, t) => n + approxTokens(t), 0)
    const model = reply.model ?? (typeof body.model === "string" ? body.model : "fake-embedding")
    const text = JSON.stringify(format.payload({ body, vectors, tokens, model, reply }))
    res.writeHead(200, headers)
    if (fault?._tag === "MalformedJson") {
      res.end(text.slice(0, Math.floor(text.length / 2)))
      return
    }
    if (fault?._tag === "CutStream") {
      // mid-body, as on the streaming routes: half the body reaches the client, then the socket dies
      if (fault.mode !== "end") await flushed(res, text.slice(0, Math.floor(text.length / 2)))
      else res.write(text.slice(0, Math.floor(text.length / 2)))
      await cut(res, fault.mode)
      return
    }
    res.end(text)
  }
})
