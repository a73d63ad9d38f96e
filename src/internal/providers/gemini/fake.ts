/**
 * The fake's Gemini wire format: `:generateContent` (JSON), `:streamGenerateContent?alt=sse`,
 * `:batchEmbedContents` and `:embedContent`.
 */
import type { FakeMedia, FakeToolResult, RecordedRequest, Reply } from "../../../Testing.js"
import type { CacheUsage } from "../../testing/promptCache.js"
import { embeddingsRoute } from "../../testing/embeddings.js"
import {
  approxTokens,
  arrayOf,
  block,
  bodyOf,
  defaultSignature,
  defaultText,
  type ErrorBodyOptions,
  type FakeRoute,
  mediaOf,
  mediaOfBase64,
  parseArgs,
  splitText,
  textOf,
  writeJson,
  writeStream
} from "../../testing/route.js"

const statusNames: Record<number, string> = {
  400: "INVALID_ARGUMENT",
  401: "UNAUTHENTICATED",
  403: "PERMISSION_DENIED",
  404: "NOT_FOUND",
  429: "RESOURCE_EXHAUSTED",
  500: "INTERNAL",
  503: "UNAVAILABLE",
  504: "DEADLINE_EXCEEDED"
}

/** Google's error shape; a 429 carries `RetryInfo` when a delay is known. */
export const geminiErrorBody = (status: number, message: string, options: ErrorBodyOptions): string => {
  const details: Array<Record<string, unknown>> = []
  if (options.retryAfterMs !== undefined) {
    details.push({ "@type": "type.googleapis.com/google.rpc.RetryInfo", retryDelay: `${options.retryAfterMs / 1000}s` })
  }
  return JSON.stringify({
    error: { code: status, message, status: statusNames[status] ?? (status >= 500 ? "INTERNAL" : "FAILED_PRECONDITION"), details }
  })
}

/** Gemini, JSON and SSE; events are separated by CRLF CRLF, as Google sends them. */
const generate: FakeRoute = {
  matches: (path) => path.endsWith(":generateContent") || path.endsWith(":streamGenerateContent"),
  // Google's paths (`/v1beta/…`, a `:method`) and any request a Google client sends; a bare `/v1/` is OpenAI's
  owns: (path, request) => /^\/v1(beta|alpha)\d*\/|:[a-zA-Z]+$/.test(path) || request.headers["x-goog-api-key"] !== undefined,
  reply: (reply, request, res, fault, cache) => {
    const { broken, faultFrames, frames, headers, json, streaming } = replyOf(reply, request, cache)
    return streaming
      ? writeStream(res, reply, fault, { "content-type": "text/event-stream", ...headers }, frames(), faultFrames)
      : writeJson(res, reply, fault, { "content-type": "application/json; charset=UTF-8", ...headers }, json, broken)
  },
  errorBody: geminiErrorBody,
  automaticCache: true,
  promptBlocks: (body) => [block(body.tools ?? []), block(body.systemInstruction ?? ""), ...arrayOf(body.contents).map((content) => block(content))],
  read: (body) => {
    const toolResults: Array<FakeToolResult> = []
    const reasoningState: Array<unknown> = []
    const media: Array<FakeMedia> = []
    let lastUserText: string | undefined
    for (const content of arrayOf(body.contents)) {
      const parts = arrayOf(content.parts)
      if (content.role === "model") {
        toolResults.length = 0
        for (const part of parts) if (typeof part.thoughtSignature === "string") reasoningState.push(part.thoughtSignature)
        continue
      }
      const text = parts.filter((p) => typeof p.text === "string")
      if (text.length > 0) lastUserText = textOf(text)
      for (const part of parts) {
        const inline = part.inlineData as { mimeType?: unknown; data?: unknown } | undefined
        const file = part.fileData as { mimeType?: unknown; fileUri?: unknown } | undefined
        if (inline !== undefined) media.push(mediaOfBase64(kindOf(inline.mimeType), String(inline.data ?? ""), String(inline.mimeType ?? "")))
        if (file !== undefined) media.push(mediaOf(kindOf(file.mimeType), String(file.fileUri ?? ""), typeof file.mimeType === "string" ? file.mimeType : undefined))
        const result = part.functionResponse as { id?: unknown; name?: unknown; response?: unknown } | undefined
        if (result === undefined) continue
        const name = typeof result.name === "string" ? result.name : undefined
        toolResults.push({ toolCallId: typeof result.id === "string" ? result.id : name ?? "", name, content: JSON.stringify(result.response ?? {}) })
      }
    }
    const tools = arrayOf(body.tools).flatMap((tool) => arrayOf(tool.functionDeclarations).map((fn) => String(fn.name ?? "")))
    return { toolResults, lastUserText, tools, reasoningState, media }
  }
}

const textOfContent = (content: unknown): string =>
  ((content as { parts?: Array<{ text?: string }> } | undefined)?.parts ?? []).map((p) => p.text ?? "").join("")

/** `:embedContent`: one text, one `embedding`. */
const embedOne = embeddingsRoute({
  matches: (path) => path.endsWith(":embedContent"),
  inputs: (body) => ({
    texts: [textOfContent(body.content)],
    dimensions: typeof body.outputDimensionality === "number" ? body.outputDimensionality : undefined
  }),
  payload: ({ vectors }) => ({ embedding: { values: vectors[0] ?? [] } }),
  errorBody: geminiErrorBody
})

/** `:batchEmbedContents`. */
const embeddings = embeddingsRoute({
  matches: (path) => path.endsWith(":batchEmbedContents"),
  inputs: (body) => {
    const requests = Array.isArray(body.requests) ? (body.requests as Array<Record<string, unknown>>) : []
    const texts = requests.map((r) => {
      const parts = (r.content as { parts?: Array<{ text?: string }> } | undefined)?.parts ?? []
      return parts.map((p) => p.text ?? "").join("")
    })
    const first = requests[0]?.outputDimensionality
    return { texts, dimensions: typeof first === "number" ? first : undefined }
  },
  payload: ({ vectors }) => ({ embeddings: vectors.map((values) => ({ values })) }),
  errorBody: geminiErrorBody
})

export const routes: ReadonlyArray<FakeRoute> = [generate, embeddings, embedOne]

const modelOf = (path: string) => /\/models\/([^:/]+):/.exec(path)?.[1] ?? "fake-gemini"

/** A part's kind by its media type. */
const kindOf = (mimeType: unknown): FakeMedia["kind"] =>
  typeof mimeType === "string" && mimeType.startsWith("image/") ? "image" : typeof mimeType === "string" && mimeType.startsWith("audio/") ? "audio" : "file"

const replyOf = (reply: Reply, request: RecordedRequest, cache: CacheUsage) => {
  const path = request.path.split("?")[0]!
  const streaming = path.endsWith(":streamGenerateContent")
  const body = bodyOf(request)
  const model = reply.model ?? modelOf(path)
  const text = reply.text ?? defaultText
  const reasoning = reply.reasoning ?? ""
  const calls = (reply.toolCalls ?? []).map((call) => ({ name: call.name, args: parseArgs(call.arguments) }))
  const promptTokens = Math.max(approxTokens(JSON.stringify(body.contents ?? "") + JSON.stringify(body.systemInstruction ?? "")), cache.read)
  // implicit caching's hits, counted within the prompt, as Gemini reports them
  const cached = cache.read > 0 ? { cachedContentTokenCount: cache.read } : {}
  const candidateTokens = approxTokens(text + calls.map((c) => c.name + JSON.stringify(c.args)).join(""))
  const thoughtTokens = approxTokens(reasoning)
  const usageMetadata = {
    promptTokenCount: promptTokens,
    candidatesTokenCount: candidateTokens,
    totalTokenCount: promptTokens + candidateTokens + thoughtTokens,
    ...(thoughtTokens > 0 ? { thoughtsTokenCount: thoughtTokens } : {}),
    ...cached
  }
  const finishReason = reply.finishReason ?? "STOP"
  const responseId = `fake-gemini-${request.index}`
  const headers: Record<string, string> = { ...reply.headers }
  // a stream chunk's usage counts what was generated so far, as Gemini's do; the last one, all
  const usageSoFar = (generated: string) => {
    const candidates = Math.min(candidateTokens, approxTokens(generated.slice(reasoning.length)))
    const thoughts = Math.min(thoughtTokens, approxTokens(generated.slice(0, reasoning.length)))
    return {
      promptTokenCount: promptTokens,
      candidatesTokenCount: candidates,
      totalTokenCount: promptTokens + candidates + thoughts,
      ...(thoughts > 0 ? { thoughtsTokenCount: thoughts } : {}),
      ...cached
    }
  }
  const envelope = (parts: Array<Record<string, unknown>>, finish?: string, usage: Record<string, unknown> = usageMetadata) => ({
    candidates: [{ content: { parts, role: "model" }, ...(finish === undefined ? {} : { finishReason: finish }), index: 0 }],
    ...(reply.usage === false ? {} : { usageMetadata: usage }),
    modelVersion: model,
    responseId
  })

  // a thought signature on the first function call, else on the last text part, as Gemini 3 sends them
  const signature = reply.reasoning !== undefined || reply.signature !== undefined ? reply.signature ?? defaultSignature : undefined
  const signed = (part: Record<string, unknown>) => (signature === undefined ? part : { ...part, thoughtSignature: signature })
  const callParts = () => calls.map((c, i) => (i === 0 ? signed : (p: Record<string, unknown>) => p)({ functionCall: { name: c.name, args: c.args } }))

  const json = () => {
    const parts: Array<Record<string, unknown>> = []
    if (reasoning.length > 0) parts.push({ text: reasoning, thought: true })
    if (text.length > 0) parts.push(calls.length === 0 ? signed({ text }) : { text })
    parts.push(...callParts())
    return envelope(parts, finishReason)
  }
  const broken = { NullFrame: `{"candidates":[null]}`, MalformedJson: `{"candidates":[{"content":{"parts":[{"text":"tru` }

  const frame = (payload: unknown) => `data: ${JSON.stringify(payload)}\r\n\r\n`
  const frames = () => {
    const chunks = Math.max(1, reply.chunks ?? 8)
    const out: Array<string> = []
    let generated = ""
    const partial = (piece: string) => usageSoFar(generated += piece)
    for (const piece of splitText(reasoning, chunks)) out.push(frame(envelope([{ text: piece, thought: true }], undefined, partial(piece))))
    for (const piece of splitText(text, chunks)) out.push(frame(envelope([{ text: piece }], undefined, partial(piece))))
    // parallel calls arrive together in one chunk, whole, as the Gemini API sends them
    if (calls.length > 0) out.push(frame(envelope(callParts())))
    out.push(frame(envelope([calls.length === 0 ? signed({ text: "" }) : { text: "" }], finishReason)))
    return out
  }
  const faultFrames = {
    NullFrame: `data: {"candidates":[null]}\r\n\r\n`,
    MalformedJson: `data: {"candidates":[{"content":{"parts":[{"text":"tru\r\n\r\n`,
    StreamErrorEvent: frame(JSON.parse(geminiErrorBody(503, "The model is overloaded. Please try again later.", {})))
  }
  return { broken, faultFrames, frames, headers, json, streaming }
}
