/** The fake's OpenAI Chat Completions wire format. */
import type * as http from "node:http"
import type { RecordedRequest, Reply } from "../../Testing.js"
import { approxTokens, type FakeRoute, sleep, splitText, type StreamFault } from "./route.js"

/** OpenAI Chat Completions, JSON and SSE. */
export const openAiChat: FakeRoute = {
  matches: (path) => path.endsWith("/chat/completions"),
  reply: (reply, request, res, fault) => replyChat(reply, request, res, fault)
}

const replyChat = async (
  reply: Reply,
  request: RecordedRequest,
  res: http.ServerResponse,
  fault: StreamFault | undefined
): Promise<void> => {
  const body = (typeof request.body === "object" && request.body !== null ? request.body : {}) as Record<string, unknown>
  const model = reply.model ?? (typeof body.model === "string" ? body.model : "fake-model")
  const text = reply.text ?? "Hello from the fake provider."
  const toolCalls = (reply.toolCalls ?? []).map((call, i) => ({ id: call.id ?? `call_${i}`, name: call.name, arguments: call.arguments }))
  const promptTokens = approxTokens(JSON.stringify(body.messages ?? ""))
  const completionTokens = approxTokens(text + (reply.reasoning ?? "") + toolCalls.map((c) => c.name + c.arguments).join(""))
  const usage = { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens }
  const finishReason = reply.finishReason ?? (toolCalls.length > 0 ? "tool_calls" : "stop")
  const id = `chatcmpl-fake-${request.index}`
  const created = 1_700_000_000
  const headers: Record<string, string> = { ...reply.headers }

  if (body.stream !== true) {
    if (fault?._tag === "NullFrame") {
      res.writeHead(200, { "content-type": "application/json", ...headers })
      res.end(JSON.stringify({ id, object: "chat.completion", created, model, choices: [null] }))
      return
    }
    if (fault?._tag === "MalformedJson") {
      res.writeHead(200, { "content-type": "application/json", ...headers })
      res.end(`{"id":"${id}","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"tru`)
      return
    }
    const message: Record<string, unknown> = { role: "assistant", content: text.length > 0 || toolCalls.length === 0 ? text : null }
    if (reply.reasoning !== undefined) message.reasoning_content = reply.reasoning
    if (toolCalls.length > 0) {
      message.tool_calls = toolCalls.map((c) => ({ id: c.id, type: "function", function: { name: c.name, arguments: c.arguments } }))
    }
    if (reply.delayMs) await sleep(reply.delayMs)
    res.writeHead(200, { "content-type": "application/json", ...headers })
    res.end(
      JSON.stringify({
        id,
        object: "chat.completion",
        created,
        model,
        choices: [{ index: 0, message, logprobs: null, finish_reason: finishReason }],
        ...(reply.usage === false ? {} : { usage })
      })
    )
    return
  }

  // Streaming: build every frame first, then write them with the configured pacing.
  const frames: Array<string> = []
  const frame = (payload: unknown) => `data: ${JSON.stringify(payload)}\n\n`
  const chunk = (delta: Record<string, unknown>, finish: string | null = null) =>
    frame({ id, object: "chat.completion.chunk", created, model, choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] })
  const chunks = Math.max(1, reply.chunks ?? 8)
  frames.push(chunk({ role: "assistant", content: "" }))
  for (const piece of splitText(reply.reasoning ?? "", chunks)) frames.push(chunk({ reasoning_content: piece }))
  for (const piece of splitText(text, chunks)) frames.push(chunk({ content: piece }))
  toolCalls.forEach((call, index) => {
    const args = splitText(call.arguments, Math.max(1, Math.min(4, chunks)))
    frames.push(chunk({ tool_calls: [{ index, id: call.id, type: "function", function: { name: call.name, arguments: "" } }] }))
    for (const piece of args) frames.push(chunk({ tool_calls: [{ index, function: { arguments: piece } }] }))
  })
  frames.push(chunk({}, finishReason))
  const streamOptions = body.stream_options as { include_usage?: boolean } | undefined
  if (reply.usage !== false && streamOptions?.include_usage === true) {
    frames.push(frame({ id, object: "chat.completion.chunk", created, model, choices: [], usage }))
  }
  frames.push("data: [DONE]\n\n")

  if (reply.delayMs) await sleep(reply.delayMs)
  res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", ...headers })
  const cutAt = fault === undefined ? -1 : (fault.afterChunks ?? 0)
  for (let i = 0; i < frames.length; i++) {
    if (fault !== undefined && i === cutAt) {
      if (fault._tag === "CutStream") {
        if (fault.mode === "end") res.end()
        else res.destroy()
        return
      }
      if (fault._tag === "NullFrame") {
        res.write(frame({ id, object: "chat.completion.chunk", created, model, choices: [null] }))
        res.end()
        return
      }
      if (fault._tag === "MalformedJson") {
        res.write(`data: {"id":"${id}","choices":[{"delta":{"content":"tru\n\n`)
        res.end()
        return
      }
      if (fault._tag === "StreamErrorEvent") {
        res.write(frame({ error: { message: "The server had an error while processing your request.", type: "server_error", code: null } }))
        res.end()
        return
      }
    }
    // Before a fault, each frame must reach the socket: otherwise a cut right after
    // synchronous writes drops them with the headers, and looks like a reset.
    if (fault !== undefined) await new Promise<void>((resolve) => res.write(frames[i], () => resolve()))
    else res.write(frames[i])
    if (reply.chunkDelayMs) await sleep(reply.chunkDelayMs)
  }
  res.end()
}
