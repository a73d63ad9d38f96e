/** The fake's OpenAI Chat Completions wire format (JSON and SSE), and its OpenAI-compatible `/embeddings`. */
import type { FakeMedia, FakeToolResult, RecordedRequest, Reply } from "../../../Testing.js"
import { embeddingsRoute } from "../../testing/embeddings.js"
import type { CacheUsage } from "../../testing/promptCache.js"
import {
  approxTokens,
  arrayOf,
  block,
  bodyOf,
  defaultText,
  errorBody,
  type FakeRoute,
  mediaOf,
  mediaOfBase64,
  requestIdOf,
  splitText,
  sseOrJson,
  textOf
} from "../../testing/route.js"

/** The images, files and audio of a message's content parts. */
const mediaIn = (content: unknown, into: Array<FakeMedia>): void => {
  for (const part of arrayOf(content)) {
    if (part.type === "image_url") into.push(mediaOf("image", String((part.image_url as { url?: unknown } | undefined)?.url ?? "")))
    else if (part.type === "file") {
      const file = (part.file ?? {}) as { file_data?: unknown; file_id?: unknown; filename?: unknown }
      into.push(mediaOf("file", String(file.file_data ?? file.file_id ?? ""), undefined, typeof file.filename === "string" ? file.filename : undefined))
    } else if (part.type === "input_audio") {
      const audio = (part.input_audio ?? {}) as { data?: unknown; format?: unknown }
      into.push(mediaOfBase64("audio", String(audio.data ?? ""), `audio/${String(audio.format ?? "wav")}`))
    }
  }
}

/** A message carries a breakpoint: a part with `cache_control` (OpenRouter's way to explicit caching). */
const hasBreakpoint = (message: Record<string, unknown>): boolean => arrayOf(message.content).some((part) => part.cache_control !== undefined)

/** OpenAI Chat Completions, JSON and SSE. Errors use OpenAI's body shape, the default. */
const chat: FakeRoute = {
  matches: (path) => path.endsWith("/chat/completions"),
  requestId: "x-request-id",
  reply: sseOrJson((reply, request, _fault, cache) => replyOf(reply, request, cache)),
  automaticCache: true,
  promptBlocks: (body) => [block(body.tools ?? []), ...arrayOf(body.messages).map((message) => block(message, hasBreakpoint(message)))],
  read: (body) => {
    const messages = arrayOf(body.messages)
    const names = new Map<string, string>()
    const toolResults: Array<FakeToolResult> = []
    const media: Array<FakeMedia> = []
    let lastUserText: string | undefined
    for (const message of messages) {
      if (message.role === "assistant") {
        toolResults.length = 0
        for (const call of arrayOf(message.tool_calls)) {
          const fn = call.function as { name?: unknown } | undefined
          if (typeof call.id === "string" && typeof fn?.name === "string") names.set(call.id, fn.name)
        }
      } else if (message.role === "tool") {
        const id = String(message.tool_call_id ?? "")
        toolResults.push({ toolCallId: id, name: names.get(id), content: textOf(message.content) })
      } else if (message.role === "user") {
        lastUserText = textOf(message.content)
        mediaIn(message.content, media)
      }
    }
    const tools = arrayOf(body.tools).map((tool) => String((tool.function as { name?: unknown } | undefined)?.name ?? ""))
    return { toolResults, lastUserText, tools, media }
  }
}

const replyOf = (reply: Reply, request: RecordedRequest, cache: CacheUsage) => {
  const body = bodyOf(request)
  const model = reply.model ?? (typeof body.model === "string" ? body.model : "fake-model")
  const text = reply.text ?? defaultText
  const toolCalls = (reply.toolCalls ?? []).map((call, i) => ({ id: call.id ?? `call_${i}`, name: call.name, arguments: call.arguments }))
  const promptTokens = Math.max(approxTokens(JSON.stringify(body.messages ?? "")), cache.read + cache.write)
  const completionTokens = approxTokens(text + (reply.reasoning ?? "") + toolCalls.map((c) => c.name + c.arguments).join(""))
  // cache reads as OpenAI reports them; writes only where breakpoints asked for them, as OpenRouter reports them
  const details = cache.write > 0 ? { cached_tokens: cache.read, cache_write_tokens: cache.write } : { cached_tokens: cache.read }
  const usage = { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens, prompt_tokens_details: details }
  const finishReason = reply.finishReason ?? (toolCalls.length > 0 ? "tool_calls" : "stop")
  const id = `chatcmpl-fake-${request.index}`
  const created = 1_700_000_000
  const headers: Record<string, string> = { "x-request-id": requestIdOf(request), ...reply.headers }

  const json = () => {
    const message: Record<string, unknown> = { role: "assistant", content: text.length > 0 || toolCalls.length === 0 ? text : null }
    if (reply.reasoning !== undefined) message.reasoning_content = reply.reasoning
    if (toolCalls.length > 0) {
      message.tool_calls = toolCalls.map((c) => ({ id: c.id, type: "function", function: { name: c.name, arguments: c.arguments } }))
    }
    return {
      id,
      object: "chat.completion",
      created,
      model,
      choices: [{ index: 0, message, logprobs: null, finish_reason: finishReason }],
      ...(reply.usage === false ? {} : { usage })
    }
  }
  const broken = {
    NullFrame: JSON.stringify({ id, object: "chat.completion", created, model, choices: [null] }),
    MalformedJson: `{"id":"${id}","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"tru`
  }

  const frame = (payload: unknown) => `data: ${JSON.stringify(payload)}\n\n`
  const streamOptions = body.stream_options as { include_usage?: boolean } | undefined
  const includeUsage = reply.usage !== false && streamOptions?.include_usage === true
  // under include_usage every chunk says `"usage": null` until the last, as the API sends them
  const chunk = (delta: Record<string, unknown>, finish: string | null = null) =>
    frame({
      id,
      object: "chat.completion.chunk",
      created,
      model,
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
      ...(includeUsage ? { usage: null } : {})
    })
  const frames = () => {
    const out: Array<string> = []
    const chunks = Math.max(1, reply.chunks ?? 8)
    out.push(chunk({ role: "assistant", content: "" }))
    for (const piece of splitText(reply.reasoning ?? "", chunks)) out.push(chunk({ reasoning_content: piece }))
    for (const piece of splitText(text, chunks)) out.push(chunk({ content: piece }))
    toolCalls.forEach((call, index) => {
      const args = splitText(call.arguments, Math.max(1, Math.min(4, chunks)))
      out.push(chunk({ tool_calls: [{ index, id: call.id, type: "function", function: { name: call.name, arguments: "" } }] }))
      for (const piece of args) out.push(chunk({ tool_calls: [{ index, function: { arguments: piece } }] }))
    })
    out.push(chunk({}, finishReason))
    if (includeUsage) {
      out.push(frame({ id, object: "chat.completion.chunk", created, model, choices: [], usage }))
    }
    out.push("data: [DONE]\n\n")
    return out
  }
  const faultFrames = {
    NullFrame: frame({ id, object: "chat.completion.chunk", created, model, choices: [null] }),
    MalformedJson: `data: {"id":"${id}","choices":[{"delta":{"content":"tru\n\n`,
    StreamErrorEvent: frame({ error: { message: "The server had an error while processing your request.", type: "server_error", code: null } })
  }
  return { body, frames, headers, json, broken, faultFrames }
}

/** A format's error body for the embeddings route's own failures. */
const embeddingsError = (status: number, message: string) =>
  errorBody(message, status >= 500 ? "server_error" : "invalid_request_error", null)

/** An input item: a text, or (as the API also takes) token ids, embedded as their list. */
const inputText = (item: unknown): string => (typeof item === "string" ? item : `tokens:${(item as Array<number>).join(",")}`)

/** The inputs of an `/embeddings` body: a text, texts, one token array, or token arrays. */
const inputTexts = (input: unknown): Array<string> => {
  if (typeof input === "string") return [input]
  if (!Array.isArray(input)) return []
  if (input.length > 0 && input.every((x) => typeof x === "number")) return [inputText(input)]
  return input.map(inputText)
}

/** A vector as `encoding_format: "base64"` sends it: little-endian float32, base64. */
const base64Of = (vector: ReadonlyArray<number>): string => {
  const bytes = Buffer.alloc(vector.length * 4)
  vector.forEach((x, i) => bytes.writeFloatLE(x, i * 4))
  return bytes.toString("base64")
}

/** OpenAI-compatible `/embeddings` (Ollama's legacy `/api/embeddings` is its own route). */
const embeddings = embeddingsRoute({
  matches: (path) => path.endsWith("/embeddings") && !path.endsWith("/api/embeddings"),
  inputs: (body) => ({
    texts: inputTexts(body.input),
    dimensions: typeof body.dimensions === "number" ? body.dimensions : undefined
  }),
  payload: ({ body, model, reply, tokens, vectors }) => ({
    object: "list",
    data: vectors.map((vector, index) => ({
      object: "embedding",
      index,
      embedding: body.encoding_format === "base64" ? base64Of(vector) : vector
    })),
    model,
    ...(reply.usage === false ? {} : { usage: { prompt_tokens: tokens, total_tokens: tokens } })
  }),
  errorBody: (status, message, options) =>
    options.insufficientQuota
      ? errorBody("You exceeded your current quota.", "insufficient_quota", "insufficient_quota")
      : embeddingsError(status, message),
  requestId: "x-request-id"
})

export const routes: ReadonlyArray<FakeRoute> = [chat, embeddings]
