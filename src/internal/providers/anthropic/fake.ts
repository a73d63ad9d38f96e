/** The fake's Anthropic Messages wire format: JSON, and SSE with `event:` lines. */
import type { FakeMedia, FakeToolResult, RecordedRequest, Reply } from "../../../Testing.js"
import type { CacheUsage } from "../../testing/promptCache.js"
import {
  approxTokens,
  arrayOf,
  block,
  bodyOf,
  defaultSignature,
  defaultText,
  type FakeRoute,
  mediaOf,
  mediaOfBase64,
  parseArgs,
  requestIdOf,
  splitText,
  sseOrJson,
  textOf
} from "../../testing/route.js"

/** The images and documents of content blocks, tool results' included. */
const mediaIn = (blocks: ReadonlyArray<Record<string, unknown>>, into: Array<FakeMedia>): void => {
  for (const b of blocks) {
    if (b.type === "tool_result") mediaIn(arrayOf(b.content), into)
    if (b.type !== "image" && b.type !== "document") continue
    const source = (b.source ?? {}) as { type?: unknown; media_type?: unknown; data?: unknown; url?: unknown }
    const kind = b.type === "image" ? "image" : "file"
    const mediaType = typeof source.media_type === "string" ? source.media_type : undefined
    const title = typeof b.title === "string" ? b.title : undefined
    if (source.type === "base64") into.push(mediaOfBase64(kind, String(source.data ?? ""), mediaType, title))
    else if (source.type === "text") into.push({ kind, mediaType: "text/plain", bytes: Buffer.byteLength(String(source.data ?? "")), ...(title === undefined ? {} : { filename: title }) })
    else into.push(mediaOf(kind, String(source.url ?? ""), mediaType, title))
  }
}

/** The prompt as Anthropic reads it for caching: tools, system, then each message's blocks, breakpoints where `cache_control` is. */
const promptBlocks = (body: Record<string, unknown>) => {
  const marked = (b: Record<string, unknown>) => block(b, b.cache_control !== undefined)
  const system = typeof body.system === "string" ? [block(body.system)] : arrayOf(body.system).map(marked)
  const messages = arrayOf(body.messages).flatMap((message) =>
    typeof message.content === "string" ? [block(message.content)] : arrayOf(message.content).map(marked)
  )
  return [...arrayOf(body.tools).map(marked), ...system, ...messages]
}

/** Anthropic Messages, JSON and SSE. */
const messages: FakeRoute = {
  matches: (path) => path.endsWith("/v1/messages"),
  requestId: "request-id",
  // Anthropic's other paths, and any request an Anthropic client sends
  owns: (path, request) => /\/v1\/(messages|complete)(\/|$)/.test(path) || request.headers["anthropic-version"] !== undefined,
  reply: sseOrJson((reply, request, _fault, cache) => replyOf(reply, request, cache)),
  promptBlocks,
  errorBody: (status, message, options) =>
    options.insufficientQuota === true
      ? anthropicErrorBody("Your credit balance is too low to access the Anthropic API.", errorType(status, "insufficient_quota"))
      : anthropicErrorBody(message, errorType(status, "")),
  read: (body) => {
    const names = new Map<string, string>()
    const toolResults: Array<FakeToolResult> = []
    const reasoningState: Array<unknown> = []
    const media: Array<FakeMedia> = []
    let lastUserText: string | undefined
    for (const message of arrayOf(body.messages)) {
      const blocks = typeof message.content === "string" ? [{ type: "text", text: message.content }] : arrayOf(message.content)
      if (message.role === "user") mediaIn(blocks, media)
      if (message.role === "assistant") {
        toolResults.length = 0
        for (const block of blocks) {
          if (block.type === "thinking" || block.type === "redacted_thinking") reasoningState.push(block)
          if (block.type === "tool_use" && typeof block.id === "string" && typeof block.name === "string") names.set(block.id, block.name)
        }
        continue
      }
      const text = blocks.filter((b) => b.type === "text")
      if (text.length > 0) lastUserText = textOf(text)
      for (const block of blocks) {
        if (block.type !== "tool_result") continue
        const id = String(block.tool_use_id ?? "")
        toolResults.push({ toolCallId: id, name: names.get(id), content: textOf(block.content) })
      }
    }
    return { toolResults, lastUserText, tools: arrayOf(body.tools).map((tool) => String(tool.name ?? "")), reasoningState, media }
  }
}

const errorType = (status: number, openAiType: string): string => {
  if (openAiType === "insufficient_quota") return "billing_error"
  switch (status) {
    case 401: return "authentication_error"
    case 402: return "billing_error"
    case 403: return "permission_error"
    case 404: return "not_found_error"
    case 413: return "request_too_large"
    case 429: return "rate_limit_error"
    case 529: return "overloaded_error"
    default: return status >= 500 ? "api_error" : "invalid_request_error"
  }
}

export const routes: ReadonlyArray<FakeRoute> = [messages]

const anthropicErrorBody = (message: string, type: string) => JSON.stringify({ type: "error", error: { type, message } })

const stopReasonOf = (finishReason: string | undefined, hasTools: boolean): string => {
  switch (finishReason) {
    case undefined: return hasTools ? "tool_use" : "end_turn"
    case "stop": return "end_turn"
    case "length": return "max_tokens"
    case "tool_calls": return "tool_use"
    default: return finishReason
  }
}

const replyOf = (reply: Reply, request: RecordedRequest, cachedPrompt: CacheUsage) => {
  const body = bodyOf(request)
  const model = reply.model ?? (typeof body.model === "string" ? body.model : "fake-model")
  // a forced tool (structured output): the reply's text is that tool's input, unless calls are scripted
  const forced = body.tool_choice as { type?: unknown; name?: unknown } | undefined
  const outputTool = forced?.type === "tool" && typeof forced.name === "string" && reply.toolCalls === undefined ? forced.name : undefined
  const scripted = outputTool === undefined ? reply.toolCalls ?? [] : [{ name: outputTool, arguments: reply.text ?? "{}" }]
  const text = outputTool === undefined ? reply.text ?? defaultText : ""
  const toolCalls = scripted.map((call, i) => ({ id: call.id ?? `toolu_fake_${i}`, name: call.name, arguments: call.arguments }))
  const signature = reply.signature ?? defaultSignature
  // Anthropic's input_tokens leaves out what was read from or written to the cache
  const promptTokens = Math.max(approxTokens(JSON.stringify(body.messages ?? "") + JSON.stringify(body.system ?? "")), cachedPrompt.read + cachedPrompt.write)
  const inputTokens = promptTokens - cachedPrompt.read - cachedPrompt.write
  const outputTokens = approxTokens(text + (reply.reasoning ?? "") + toolCalls.map((c) => c.name + c.arguments).join(""))
  const stopReason = stopReasonOf(reply.finishReason, toolCalls.length > 0)
  const id = `msg_fake_${request.index}`
  const headers: Record<string, string> = { "request-id": requestIdOf(request), ...reply.headers }
  // the cache counts are 0 without prompt caching, but always sent
  const cache = { cache_creation_input_tokens: cachedPrompt.write, cache_read_input_tokens: cachedPrompt.read }
  const usage = reply.usage === false ? undefined : { input_tokens: inputTokens, ...cache, output_tokens: outputTokens }
  // an input that is not a JSON object (a scripted bad reply) goes as {} in JSON, as it is in a stream
  const input = (args: string): unknown => {
    const parsed = parseArgs(args)
    return typeof parsed === "object" && parsed !== null && !Array.isArray(parsed) ? parsed : {}
  }

  const json = () => {
    const content: Array<unknown> = []
    if (reply.reasoning !== undefined) content.push({ type: "thinking", thinking: reply.reasoning, signature })
    if (text.length > 0 || toolCalls.length === 0) content.push({ type: "text", text })
    for (const call of toolCalls) content.push({ type: "tool_use", id: call.id, name: call.name, input: input(call.arguments) })
    return {
      id,
      type: "message",
      role: "assistant",
      model,
      content,
      stop_reason: stopReason,
      stop_sequence: null,
      ...(usage === undefined ? {} : { usage })
    }
  }
  const broken = {
    NullFrame: JSON.stringify({ id, type: "message", role: "assistant", content: [null], stop_reason: "end_turn" }),
    MalformedJson: `{"id":"${id}","type":"message","content":[{"type":"text","text":"tru`
  }

  // The stream: every frame built first, then written with the reply's pacing.
  const frame = (payload: Record<string, unknown> & { readonly type: string }) => `event: ${payload.type}\ndata: ${JSON.stringify(payload)}\n\n`
  const frames = () => {
    const frames: Array<string> = []
    const chunks = Math.max(1, reply.chunks ?? 8)
    frames.push(frame({
      type: "message_start",
      message: {
        id,
        type: "message",
        role: "assistant",
        model,
        content: [],
        stop_reason: null,
        stop_sequence: null,
        usage: usage === undefined ? undefined : { input_tokens: inputTokens, ...cache, output_tokens: 1 }
      }
    }))
    let index = 0
    if (reply.reasoning !== undefined) {
      frames.push(frame({ type: "content_block_start", index, content_block: { type: "thinking", thinking: "", signature: "" } }))
      for (const piece of splitText(reply.reasoning, chunks)) {
        frames.push(frame({ type: "content_block_delta", index, delta: { type: "thinking_delta", thinking: piece } }))
      }
      frames.push(frame({ type: "content_block_delta", index, delta: { type: "signature_delta", signature } }))
      frames.push(frame({ type: "content_block_stop", index }))
      index++
    }
    if (text.length > 0 || toolCalls.length === 0) {
      frames.push(frame({ type: "content_block_start", index, content_block: { type: "text", text: "" } }))
      frames.push(frame({ type: "ping" }))
      for (const piece of splitText(text, chunks)) {
        frames.push(frame({ type: "content_block_delta", index, delta: { type: "text_delta", text: piece } }))
      }
      frames.push(frame({ type: "content_block_stop", index }))
      index++
    }
    for (const call of toolCalls) {
      frames.push(frame({ type: "content_block_start", index, content_block: { type: "tool_use", id: call.id, name: call.name, input: {} } }))
      frames.push(frame({ type: "content_block_delta", index, delta: { type: "input_json_delta", partial_json: "" } }))
      for (const piece of splitText(call.arguments, Math.max(1, Math.min(4, chunks)))) {
        frames.push(frame({ type: "content_block_delta", index, delta: { type: "input_json_delta", partial_json: piece } }))
      }
      frames.push(frame({ type: "content_block_stop", index }))
      index++
    }
    frames.push(frame({
      type: "message_delta",
      delta: { stop_reason: stopReason, stop_sequence: null },
      // the final counts, input and cache included, as the API now sends them
      ...(usage === undefined ? {} : { usage })
    }))
    frames.push(frame({ type: "message_stop" }))
    return frames
  }
  const faultFrames = {
    NullFrame: `event: content_block_start\ndata: {"type":"content_block_start","index":9,"content_block":null}\n\n`,
    MalformedJson: `event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"tru\n\n`,
    StreamErrorEvent: `event: error\ndata: ${anthropicErrorBody("Overloaded", "overloaded_error")}\n\n`
  }
  return { body, broken, faultFrames, frames, headers, json }
}
