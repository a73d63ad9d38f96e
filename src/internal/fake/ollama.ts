/** The fake's Ollama wire format: native `/api/chat`, JSON or NDJSON (Ollama streams by default). */
import type * as http from "node:http"
import type { RecordedRequest, Reply } from "../../Testing.js"
import { approxTokens, type FakeRoute, sleep, splitText, type StreamFault } from "./route.js"

/** Ollama's error shape: a bare message. */
export const ollamaErrorBody = (_status: number, message: string) => JSON.stringify({ error: message })

export const ollama: FakeRoute = {
  matches: (path) => path.endsWith("/api/chat"),
  reply: (reply, request, res, fault) => replyOllama(reply, request, res, fault),
  errorBody: ollamaErrorBody
}

const parseArgs = (text: string): unknown => {
  try {
    return JSON.parse(text)
  } catch {
    return {}
  }
}

const replyOllama = async (
  reply: Reply,
  request: RecordedRequest,
  res: http.ServerResponse,
  fault: StreamFault | undefined
): Promise<void> => {
  const body = (typeof request.body === "object" && request.body !== null ? request.body : {}) as Record<string, unknown>
  const model = reply.model ?? (typeof body.model === "string" ? body.model : "fake-ollama")
  const text = reply.text ?? "Hello from the fake provider."
  const thinking = reply.reasoning ?? ""
  const calls = (reply.toolCalls ?? []).map((call) => ({ function: { name: call.name, arguments: parseArgs(call.arguments) } }))
  const promptTokens = approxTokens(JSON.stringify(body.messages ?? ""))
  const evalCount = approxTokens(text + thinking + JSON.stringify(calls))
  const stats = reply.usage === false
    ? {}
    : { total_duration: 1_000_000, load_duration: 1000, prompt_eval_count: promptTokens, eval_count: evalCount, eval_duration: 900_000 }
  const doneReason = reply.finishReason ?? "stop"
  const createdAt = new Date(1_700_000_000_000 + request.index * 1000).toISOString()
  const headers: Record<string, string> = { ...reply.headers }

  if (body.stream === false) {
    if (fault?._tag === "NullFrame") {
      res.writeHead(200, { "content-type": "application/json; charset=utf-8", ...headers })
      res.end(JSON.stringify({ model, message: null, done: true }))
      return
    }
    if (fault?._tag === "MalformedJson") {
      res.writeHead(200, { "content-type": "application/json; charset=utf-8", ...headers })
      res.end(`{"model":"${model}","message":{"role":"assistant","content":"tru`)
      return
    }
    const message: Record<string, unknown> = { role: "assistant", content: text }
    if (thinking.length > 0) message.thinking = thinking
    if (calls.length > 0) message.tool_calls = calls
    if (reply.delayMs) await sleep(reply.delayMs)
    res.writeHead(200, { "content-type": "application/json; charset=utf-8", ...headers })
    res.end(JSON.stringify({ model, created_at: createdAt, message, done_reason: doneReason, done: true, ...stats }))
    return
  }

  const line = (payload: unknown) => JSON.stringify(payload) + "\n"
  const delta = (message: Record<string, unknown>) =>
    line({ model, created_at: createdAt, message: { role: "assistant", content: "", ...message }, done: false })
  const chunks = Math.max(1, reply.chunks ?? 8)
  const lines: Array<string> = []
  for (const piece of splitText(thinking, chunks)) lines.push(delta({ thinking: piece }))
  for (const piece of splitText(text, chunks)) lines.push(delta({ content: piece }))
  if (calls.length > 0) lines.push(delta({ tool_calls: calls }))
  lines.push(line({ model, created_at: createdAt, message: { role: "assistant", content: "" }, done_reason: doneReason, done: true, ...stats }))

  if (reply.delayMs) await sleep(reply.delayMs)
  res.writeHead(200, { "content-type": "application/x-ndjson", ...headers })
  const cutAt = fault === undefined ? -1 : (fault.afterChunks ?? 0)
  for (let i = 0; i < lines.length; i++) {
    if (fault !== undefined && i === cutAt) {
      if (fault._tag === "CutStream") {
        if (fault.mode === "end") res.end()
        else res.destroy()
        return
      }
      if (fault._tag === "NullFrame") {
        res.write(line({ model, message: null, done: false }))
        res.end()
        return
      }
      if (fault._tag === "MalformedJson") {
        res.write(`{"model":"${model}","message":{"role":"assistant","content":"tru\n`)
        res.end()
        return
      }
      if (fault._tag === "StreamErrorEvent") {
        res.write(line({ error: "an error was encountered while running the model: unexpected EOF" }))
        res.end()
        return
      }
    }
    res.write(lines[i])
    if (reply.chunkDelayMs) await sleep(reply.chunkDelayMs)
  }
  res.end()
}
