/**
 * The fake's Ollama wire format: native `/api/chat`, JSON or NDJSON (Ollama streams by default),
 * `/api/embed`, and the legacy `/api/embeddings`.
 */
import type { FakeMedia, FakeToolResult, RecordedRequest, Reply } from "../../../Testing.js"
import { embeddingsRoute } from "../../testing/embeddings.js"
import {
  approxTokens,
  arrayOf,
  bodyOf,
  defaultText,
  type FakeRoute,
  mediaOfBase64,
  parseArgs,
  splitText,
  textOf,
  writeJson,
  writeStream
} from "../../testing/route.js"

/** Ollama's error shape: a bare message. */
export const ollamaErrorBody = (_status: number, message: string) => JSON.stringify({ error: message })

const chat: FakeRoute = {
  matches: (path) => path.endsWith("/api/chat"),
  owns: (path) => path.startsWith("/api/"),
  reply: (reply, request, res, fault) => {
    const { body, broken, faultFrames, frames, headers, json } = replyOf(reply, request)
    return body.stream === false
      ? writeJson(res, reply, fault, { "content-type": "application/json; charset=utf-8", ...headers }, json, broken)
      : writeStream(res, reply, fault, { "content-type": "application/x-ndjson", ...headers }, frames(), faultFrames)
  },
  errorBody: ollamaErrorBody,
  read: (body) => {
    const toolResults: Array<FakeToolResult> = []
    const media: Array<FakeMedia> = []
    let lastUserText: string | undefined
    for (const message of arrayOf(body.messages)) {
      if (message.role !== "assistant" && Array.isArray(message.images)) {
        for (const image of message.images) media.push(mediaOfBase64("image", String(image)))
      }
      if (message.role === "assistant") toolResults.length = 0
      else if (message.role === "tool") {
        const name = typeof message.tool_name === "string" ? message.tool_name : undefined
        toolResults.push({ toolCallId: name ?? "", name, content: textOf(message.content) })
      } else if (message.role === "user") lastUserText = textOf(message.content)
    }
    const tools = arrayOf(body.tools).map((tool) => String((tool.function as { name?: unknown } | undefined)?.name ?? ""))
    return { toolResults, lastUserText, tools, media }
  }
}

/** `/api/embed`. */
const embed = embeddingsRoute({
  matches: (path) => path.endsWith("/api/embed"),
  inputs: (body) => ({
    texts: typeof body.input === "string" ? [body.input] : Array.isArray(body.input) ? (body.input as Array<string>) : [],
    dimensions: typeof body.dimensions === "number" ? body.dimensions : undefined
  }),
  payload: ({ model, reply, tokens, vectors }) => ({
    model,
    embeddings: vectors,
    total_duration: 1000,
    load_duration: 10,
    ...(reply.usage === false ? {} : { prompt_eval_count: tokens })
  }),
  errorBody: ollamaErrorBody
})

/** The legacy `/api/embeddings` (what the `ollama` client's `embeddings()` calls): one prompt, one `embedding`. */
const legacy = embeddingsRoute({
  matches: (path) => path.endsWith("/api/embeddings"),
  inputs: (body) => ({ texts: [typeof body.prompt === "string" ? body.prompt : ""], dimensions: undefined }),
  payload: ({ vectors }) => ({ embedding: vectors[0] ?? [] }),
  errorBody: ollamaErrorBody
})

export const routes: ReadonlyArray<FakeRoute> = [chat, embed, legacy]

const replyOf = (reply: Reply, request: RecordedRequest) => {
  const body = bodyOf(request)
  const model = reply.model ?? (typeof body.model === "string" ? body.model : "fake-ollama")
  const text = reply.text ?? defaultText
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

  const json = () => {
    const message: Record<string, unknown> = { role: "assistant", content: text }
    if (thinking.length > 0) message.thinking = thinking
    if (calls.length > 0) message.tool_calls = calls
    return { model, created_at: createdAt, message, done_reason: doneReason, done: true, ...stats }
  }
  const broken = {
    NullFrame: JSON.stringify({ model, message: null, done: true }),
    MalformedJson: `{"model":"${model}","message":{"role":"assistant","content":"tru`
  }

  const line = (payload: unknown) => JSON.stringify(payload) + "\n"
  const delta = (message: Record<string, unknown>) =>
    line({ model, created_at: createdAt, message: { role: "assistant", content: "", ...message }, done: false })
  const frames = () => {
    const chunks = Math.max(1, reply.chunks ?? 8)
    const lines: Array<string> = []
    for (const piece of splitText(thinking, chunks)) lines.push(delta({ thinking: piece }))
    for (const piece of splitText(text, chunks)) lines.push(delta({ content: piece }))
    if (calls.length > 0) lines.push(delta({ tool_calls: calls }))
    lines.push(line({ model, created_at: createdAt, message: { role: "assistant", content: "" }, done_reason: doneReason, done: true, ...stats }))
    return lines
  }
  const faultFrames = {
    NullFrame: line({ model, message: null, done: false }),
    MalformedJson: `{"model":"${model}","message":{"role":"assistant","content":"tru\n`,
    StreamErrorEvent: line({ error: "an error was encountered while running the model: unexpected EOF" })
  }
  return { body, broken, faultFrames, frames, headers, json }
}
