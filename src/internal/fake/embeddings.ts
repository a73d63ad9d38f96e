/**
 * The fake's embeddings endpoints: OpenAI-compatible `/embeddings`, Gemini
 * `:batchEmbedContents` and Ollama `/api/embed`. Vectors are a deterministic function of
 * the text, so tests can check that order is kept across batches.
 */
import type * as http from "node:http"
import type { RecordedRequest, Reply } from "../../Testing.js"
import { geminiErrorBody } from "./gemini.js"
import { ollamaErrorBody } from "./ollama.js"
import { approxTokens, errorBody, type FakeRoute, sleep, type StreamFault } from "./route.js"

type Format = "openai" | "gemini" | "ollama"

const formatOf = (path: string): Format | undefined =>
  path.endsWith("/embeddings") ? "openai" : path.endsWith(":batchEmbedContents") ? "gemini" : path.endsWith("/api/embed") ? "ollama" : undefined

/** A unit-free vector from the text: FNV-1a seeded per component. */
export const fakeVector = (text: string, dimensions: number): Array<number> => {
  const out: Array<number> = []
  for (let j = 0; j < dimensions; j++) {
    let h = 0x811c9dc5 ^ j
    for (let i = 0; i < text.length; i++) {
      h ^= text.charCodeAt(i)
      h = Math.imul(h, 0x01000193)
    }
    out.push(((h >>> 0) % 20001) / 10000 - 1)
  }
  return out
}

const errorFor = (format: Format, status: number, message: string) =>
  format === "gemini"
    ? geminiErrorBody(status, message, {})
    : format === "ollama"
    ? ollamaErrorBody(status, message)
    : errorBody(message, status >= 500 ? "server_error" : "invalid_request_error", null)

export const embeddings: FakeRoute = {
  matches: (path) => formatOf(path) !== undefined,
  reply: (reply, request, res, fault) => replyEmbeddings(reply, request, res, fault),
  errorBody: (status, message, options) => {
    const format = formatOf(options.path ?? "") ?? "openai"
    if (format === "gemini") return geminiErrorBody(status, message, options)
    if (format === "ollama") return ollamaErrorBody(status, message)
    return options.insufficientQuota
      ? errorBody("You exceeded your current quota.", "insufficient_quota", "insufficient_quota")
      : errorFor(format, status, message)
  }
}

const replyEmbeddings = async (
  reply: Reply,
  request: RecordedRequest,
  res: http.ServerResponse,
  fault: StreamFault | undefined
): Promise<void> => {
  const path = request.path.split("?")[0]!
  const format = formatOf(path)!
  const body = (typeof request.body === "object" && request.body !== null ? request.body : {}) as Record<string, unknown>
  let texts: Array<string>
  let dimensions: number | undefined
  if (format === "gemini") {
    const requests = Array.isArray(body.requests) ? (body.requests as Array<Record<string, unknown>>) : []
    texts = requests.map((r) => {
      const parts = (r.content as { parts?: Array<{ text?: string }> } | undefined)?.parts ?? []
      return parts.map((p) => p.text ?? "").join("")
    })
    const first = requests[0]?.outputDimensionality
    dimensions = typeof first === "number" ? first : undefined
  } else {
    texts = typeof body.input === "string" ? [body.input] : Array.isArray(body.input) ? (body.input as Array<string>) : []
    dimensions = typeof body.dimensions === "number" ? body.dimensions : undefined
  }
  const size = dimensions ?? reply.embeddingDimensions ?? 8
  const headers: Record<string, string> = { "content-type": "application/json", ...reply.headers }
  if (reply.delayMs) await sleep(reply.delayMs)

  if (reply.maxEmbeddingInputs !== undefined && texts.length > reply.maxEmbeddingInputs) {
    res.writeHead(400, headers)
    res.end(errorFor(format, 400, `too many inputs: ${texts.length} > ${reply.maxEmbeddingInputs}`))
    return
  }
  if (fault?._tag === "StreamErrorEvent") {
    res.writeHead(500, headers)
    res.end(errorFor(format, 500, "fake embeddings failure"))
    return
  }
  const vectors = texts.map((t) => fakeVector(t, size))
  const tokens = texts.reduce((n, t) => n + approxTokens(t), 0)
  const model = reply.model ?? (typeof body.model === "string" ? body.model : "fake-embedding")
  const payload = format === "openai"
    ? {
      object: "list",
      data: vectors.map((embedding, index) => ({ object: "embedding", index, embedding })),
      model,
      ...(reply.usage === false ? {} : { usage: { prompt_tokens: tokens, total_tokens: tokens } })
    }
    : format === "gemini"
    ? { embeddings: vectors.map((values) => ({ values })) }
    : { model, embeddings: vectors, total_duration: 1000, load_duration: 10, ...(reply.usage === false ? {} : { prompt_eval_count: tokens }) }
  const text = JSON.stringify(payload)
  res.writeHead(200, headers)
  if (fault?._tag === "MalformedJson") {
    res.end(text.slice(0, Math.floor(text.length / 2)))
    return
  }
  if (fault?._tag === "CutStream") {
    res.write(text.slice(0, Math.floor(text.length / 2)))
    res.destroy()
    return
  }
  res.end(text)
}
