/** The fake's OpenAI Responses wire format (`/responses`): JSON, and SSE with `event:` lines. */
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
  requestIdOf,
  splitText,
  sseOrJson,
  textOf
} from "../../testing/route.js"

/** The images and files of input content. */
const mediaIn = (content: unknown, into: Array<FakeMedia>): void => {
  for (const part of arrayOf(content)) {
    if (part.type === "input_image") into.push(mediaOf("image", String(part.image_url ?? part.file_id ?? "")))
    else if (part.type === "input_file") {
      into.push(mediaOf("file", String(part.file_data ?? part.file_url ?? part.file_id ?? ""), undefined, typeof part.filename === "string" ? part.filename : undefined))
    }
  }
}

/** OpenAI Responses, JSON and SSE. Errors use OpenAI's body shape, the default. */
const responses: FakeRoute = {
  matches: (path) => path.endsWith("/responses"),
  requestId: "x-request-id",
  reply: sseOrJson((reply, request, fault, cache) => replyOf(reply, request, fault?.afterChunks ?? 0, cache)),
  automaticCache: true,
  promptBlocks: (body) => [
    block(body.tools ?? []),
    block(body.instructions ?? ""),
    ...(typeof body.input === "string" ? [block(body.input)] : arrayOf(body.input).map((item) => block(item)))
  ],
  read: (body) => {
    const names = new Map<string, string>()
    const toolResults: Array<FakeToolResult> = []
    const media: Array<FakeMedia> = []
    const reasoningState: Array<unknown> = []
    let lastUserText: string | undefined
    for (const item of typeof body.input === "string" ? [{ role: "user", content: body.input }] : arrayOf(body.input)) {
      if (item.type === "function_call" || item.type === "reasoning" || item.role === "assistant") {
        toolResults.length = 0
        if (item.type === "reasoning") reasoningState.push(item)
        if (typeof item.call_id === "string" && typeof item.name === "string") names.set(item.call_id, item.name)
      } else if (item.type === "function_call_output") {
        const id = String(item.call_id ?? "")
        toolResults.push({ toolCallId: id, name: names.get(id), content: typeof item.output === "string" ? item.output : textOf(item.output) })
        mediaIn(item.output, media)
      } else if (item.role === "user") {
        lastUserText = textOf(item.content)
        mediaIn(item.content, media)
      }
    }
    return { toolResults, lastUserText, tools: arrayOf(body.tools).map((tool) => String(tool.name ?? "")), reasoningState, media }
  }
}

export const routes: ReadonlyArray<FakeRoute> = [responses]

const replyOf = (reply: Reply, request: RecordedRequest, faultAt: number, cache: CacheUsage) => {
  const body = bodyOf(request)
  const model = reply.model ?? (typeof body.model === "string" ? body.model : "fake-model")
  const text = reply.text ?? defaultText
  const toolCalls = (reply.toolCalls ?? []).map((call, i) => ({
    id: `fc_fake_${i}`,
    call_id: call.id ?? `call_${i}`,
    name: call.name,
    arguments: call.arguments
  }))
  const inputTokens = Math.max(approxTokens(JSON.stringify(body.input ?? "") + JSON.stringify(body.instructions ?? "")), cache.read + cache.write)
  const reasoningTokens = approxTokens(reply.reasoning ?? "")
  const outputTokens = approxTokens(text + toolCalls.map((c) => c.name + c.arguments).join("")) + reasoningTokens
  const usage = reply.usage === false
    ? null
    : {
      input_tokens: inputTokens,
      input_tokens_details: { cached_tokens: cache.read },
      output_tokens: outputTokens,
      output_tokens_details: { reasoning_tokens: reasoningTokens },
      total_tokens: inputTokens + outputTokens
    }
  const id = `resp_fake_${request.index}`
  const headers: Record<string, string> = { "x-request-id": requestIdOf(request), ...reply.headers }
  // `length` and `content_filter` end a response as incomplete, as the API reports them
  const incomplete = reply.finishReason === "length"
    ? "max_output_tokens"
    : reply.finishReason === "content_filter"
    ? "content_filter"
    : undefined

  // with the encrypted content the request asks for, as the API sends it
  const encrypted = Array.isArray(body.include) && body.include.includes("reasoning.encrypted_content")
  const reasoningItem = reply.reasoning === undefined
    ? undefined
    : {
      id: "rs_fake_0",
      type: "reasoning",
      summary: [{ type: "summary_text", text: reply.reasoning }],
      ...(encrypted ? { encrypted_content: reply.signature ?? defaultSignature } : {})
    }
  const messageItem = text.length === 0 && toolCalls.length > 0
    ? undefined
    : {
      id: "msg_fake_0",
      type: "message",
      status: "completed",
      role: "assistant",
      content: [{ type: "output_text", annotations: [], logprobs: [], text }]
    }
  const callItems = toolCalls.map((c) => ({ type: "function_call", status: "completed", ...c }))
  const output = [
    ...(reasoningItem === undefined ? [] : [reasoningItem]),
    ...(messageItem === undefined ? [] : [messageItem]),
    ...callItems
  ]
  const response = (status: string, items: Array<unknown>, withUsage: boolean) => ({
    id,
    object: "response",
    created_at: 1_700_000_000,
    status,
    error: null,
    incomplete_details: status === "incomplete" ? { reason: incomplete } : null,
    instructions: body.instructions ?? null,
    model,
    output: items,
    parallel_tool_calls: true,
    usage: withUsage ? usage : null
  })
  const finalStatus = incomplete === undefined ? "completed" : "incomplete"

  const json = () => response(finalStatus, output, true)
  const broken = {
    NullFrame: JSON.stringify({ id, object: "response", status: "completed", output: [null] }),
    MalformedJson: `{"id":"${id}","object":"response","output":[{"type":"message","content":[{"type":"output_text","text":"tru`
  }

  // The stream: every frame built first, then written with the reply's pacing.
  const frames: Array<string> = []
  let sequence = 0
  const frame = (payload: Record<string, unknown> & { readonly type: string }) =>
    frames.push(`event: ${payload.type}\ndata: ${JSON.stringify({ ...payload, sequence_number: sequence++ })}\n\n`)
  const chunks = Math.max(1, reply.chunks ?? 8)
  frame({ type: "response.created", response: response("in_progress", [], false) })
  frame({ type: "response.in_progress", response: response("in_progress", [], false) })
  let outputIndex = 0
  if (reasoningItem !== undefined) {
    const item_id = reasoningItem.id
    frame({ type: "response.output_item.added", output_index: outputIndex, item: { ...reasoningItem, summary: [] } })
    frame({ type: "response.reasoning_summary_part.added", item_id, output_index: outputIndex, summary_index: 0, part: { type: "summary_text", text: "" } })
    for (const piece of splitText(reply.reasoning ?? "", chunks)) {
      frame({ type: "response.reasoning_summary_text.delta", item_id, output_index: outputIndex, summary_index: 0, delta: piece })
    }
    frame({ type: "response.reasoning_summary_text.done", item_id, output_index: outputIndex, summary_index: 0, text: reply.reasoning })
    frame({ type: "response.reasoning_summary_part.done", item_id, output_index: outputIndex, summary_index: 0, part: { type: "summary_text", text: reply.reasoning } })
    frame({ type: "response.output_item.done", output_index: outputIndex, item: reasoningItem })
    outputIndex++
  }
  if (messageItem !== undefined) {
    const item_id = messageItem.id
    frame({ type: "response.output_item.added", output_index: outputIndex, item: { ...messageItem, status: "in_progress", content: [] } })
    frame({ type: "response.content_part.added", item_id, output_index: outputIndex, content_index: 0, part: { type: "output_text", annotations: [], logprobs: [], text: "" } })
    for (const piece of splitText(text, chunks)) {
      frame({ type: "response.output_text.delta", item_id, output_index: outputIndex, content_index: 0, delta: piece, logprobs: [] })
    }
    frame({ type: "response.output_text.done", item_id, output_index: outputIndex, content_index: 0, text, logprobs: [] })
    frame({ type: "response.content_part.done", item_id, output_index: outputIndex, content_index: 0, part: messageItem.content[0] })
    frame({ type: "response.output_item.done", output_index: outputIndex, item: messageItem })
    outputIndex++
  }
  for (const call of callItems) {
    frame({ type: "response.output_item.added", output_index: outputIndex, item: { ...call, status: "in_progress", arguments: "" } })
    for (const piece of splitText(call.arguments, Math.max(1, Math.min(4, chunks)))) {
      frame({ type: "response.function_call_arguments.delta", item_id: call.id, output_index: outputIndex, delta: piece })
    }
    frame({ type: "response.function_call_arguments.done", item_id: call.id, output_index: outputIndex, arguments: call.arguments })
    frame({ type: "response.output_item.done", output_index: outputIndex, item: call })
    outputIndex++
  }
  frame({ type: incomplete === undefined ? "response.completed" : "response.incomplete", response: response(finalStatus, output, true) })

  // what the API sends when a response fails mid-way: an `error` event, its error nested, then `response.failed`
  const error = { code: "server_error", message: "The server had an error while processing your request." }
  // a fault's frames take the place of frame `faultAt`, and its sequence numbers
  sequence = Math.min(faultAt, frames.length)
  const errorEvent = { type: "error", sequence_number: sequence++, error: { type: "server_error", ...error, param: null } }
  const failed = { ...response("failed", [], false), error }
  const faultFrames = {
    NullFrame: `event: response.output_item.added\ndata: {"type":"response.output_item.added","output_index":7,"item":null}\n\n`,
    MalformedJson: `event: response.output_text.delta\ndata: {"type":"response.output_text.delta","delta":"tru\n\n`,
    StreamErrorEvent: `event: error\ndata: ${JSON.stringify(errorEvent)}\n\n` +
      `event: response.failed\ndata: ${JSON.stringify({ type: "response.failed", response: failed, sequence_number: sequence++ })}\n\n`
  }
  return { body, broken, faultFrames, frames, headers, json }
}
