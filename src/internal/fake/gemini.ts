/** The fake's Gemini wire format: `:generateContent` (JSON) and `:streamGenerateContent?alt=sse`. */
import type * as http from "node:http"
import type { RecordedRequest, Reply } from "../../Testing.js"
import { approxTokens, type ErrorBodyOptions, type FakeRoute, sleep, splitText, type StreamFault } from "./route.js"

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
export const gemini: FakeRoute = {
  matches: (path) => path.endsWith(":generateContent") || path.endsWith(":streamGenerateContent"),
  reply: (reply, request, res, fault) => replyGemini(reply, request, res, fault),
  errorBody: geminiErrorBody
}

const modelOf = (path: string) => /\/models\/([^:/]+):/.exec(path)?.[1] ?? "fake-gemini"

const parseArgs = (text: string): unknown => {
  try {
    return JSON.parse(text)
  } catch {
    return {}
  }
}

const replyGemini = async (
  reply: Reply,
  request: RecordedRequest,
  res: http.ServerResponse,
  fault: StreamFault | undefined
): Promise<void> => {
  const path = request.path.split("?")[0]!
  const streaming = path.endsWith(":streamGenerateContent")
  const body = (typeof request.body === "object" && request.body !== null ? request.body : {}) as Record<string, unknown>
  const model = reply.model ?? modelOf(path)
  const text = reply.text ?? "Hello from the fake provider."
  const reasoning = reply.reasoning ?? ""
  const calls = (reply.toolCalls ?? []).map((call) => ({ name: call.name, args: parseArgs(call.arguments) }))
  const promptTokens = approxTokens(JSON.stringify(body.contents ?? "") + JSON.stringify(body.systemInstruction ?? ""))
  const candidateTokens = approxTokens(text + calls.map((c) => c.name + JSON.stringify(c.args)).join(""))
  const thoughtTokens = approxTokens(reasoning)
  const usageMetadata = {
    promptTokenCount: promptTokens,
    candidatesTokenCount: candidateTokens,
    totalTokenCount: promptTokens + candidateTokens + thoughtTokens,
    ...(thoughtTokens > 0 ? { thoughtsTokenCount: thoughtTokens } : {})
  }
  const finishReason = reply.finishReason ?? "STOP"
  const responseId = `fake-gemini-${request.index}`
  const headers: Record<string, string> = { ...reply.headers }
  const envelope = (parts: Array<Record<string, unknown>>, finish?: string) => ({
    candidates: [{ content: { parts, role: "model" }, ...(finish === undefined ? {} : { finishReason: finish }), index: 0 }],
    ...(reply.usage === false ? {} : { usageMetadata }),
    modelVersion: model,
    responseId
  })

  if (!streaming) {
    if (fault?._tag === "NullFrame") {
      res.writeHead(200, { "content-type": "application/json", ...headers })
      res.end(`{"candidates":[null]}`)
      return
    }
    if (fault?._tag === "MalformedJson") {
      res.writeHead(200, { "content-type": "application/json", ...headers })
      res.end(`{"candidates":[{"content":{"parts":[{"text":"tru`)
      return
    }
    const parts: Array<Record<string, unknown>> = []
    if (reasoning.length > 0) parts.push({ text: reasoning, thought: true })
    if (text.length > 0) parts.push({ text })
    for (const call of calls) parts.push({ functionCall: { name: call.name, args: call.args } })
    if (reply.delayMs) await sleep(reply.delayMs)
    res.writeHead(200, { "content-type": "application/json; charset=UTF-8", ...headers })
    res.end(JSON.stringify(envelope(parts, finishReason)))
    return
  }

  const frame = (payload: unknown) => `data: ${JSON.stringify(payload)}\r\n\r\n`
  const chunks = Math.max(1, reply.chunks ?? 8)
  const frames: Array<string> = []
  for (const piece of splitText(reasoning, chunks)) frames.push(frame(envelope([{ text: piece, thought: true }])))
  for (const piece of splitText(text, chunks)) frames.push(frame(envelope([{ text: piece }])))
  // parallel calls arrive together in one chunk, whole, as the Gemini API sends them
  if (calls.length > 0) frames.push(frame(envelope(calls.map((c) => ({ functionCall: { name: c.name, args: c.args } })))))
  frames.push(frame(envelope([{ text: "" }], finishReason)))

  if (reply.delayMs) await sleep(reply.delayMs)
  res.writeHead(200, { "content-type": "text/event-stream", ...headers })
  const cutAt = fault === undefined ? -1 : (fault.afterChunks ?? 0)
  for (let i = 0; i < frames.length; i++) {
    if (fault !== undefined && i === cutAt) {
      if (fault._tag === "CutStream") {
        if (fault.mode === "end") res.end()
        else res.destroy()
        return
      }
      if (fault._tag === "NullFrame") {
        res.write(`data: {"candidates":[null]}\r\n\r\n`)
        res.end()
        return
      }
      if (fault._tag === "MalformedJson") {
        res.write(`data: {"candidates":[{"content":{"parts":[{"text":"tru\r\n\r\n`)
        res.end()
        return
      }
      if (fault._tag === "StreamErrorEvent") {
        res.write(frame(JSON.parse(geminiErrorBody(503, "The model is overloaded. Please try again later.", {}))))
        res.end()
        return
      }
    }
    res.write(frames[i])
    if (reply.chunkDelayMs) await sleep(reply.chunkDelayMs)
  }
  res.end()
}
