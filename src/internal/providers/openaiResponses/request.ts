/** Responses requests: a unified request as the `/responses` body. */
import type * as Message from "../../../Message.js"
import { schemaFields } from "../jsonSchema.js"
import { reasoningItemsOf } from "../reasoningState.js"
import { withRequestOptions } from "../bodyOptions.js"
import { contentOf, defaultFilename, refuse } from "../mediaParts.js"
import { copyOptions } from "../requestOptions.js"

/** What `reasoning.summary` asks for. */
export type ReasoningSummary = "auto" | "concise" | "detailed"

export type WireContentPart =
  | { readonly type: "input_text"; readonly text: string }
  | { readonly type: "input_image"; readonly image_url: string; readonly detail: "auto" | "low" | "high" }
  | { readonly type: "input_file"; readonly filename: string; readonly file_data: string }
  | { readonly type: "input_file"; readonly file_url: string; readonly filename?: string }

export type WireInputItem =
  | { readonly role: "user" | "assistant"; readonly content: string | ReadonlyArray<WireContentPart> }
  | { readonly type: "function_call"; readonly call_id: string; readonly name: string; readonly arguments: string }
  | { readonly type: "function_call_output"; readonly call_id: string; readonly output: string | ReadonlyArray<WireContentPart> }
  /** A reasoning item sent back as the API returned it (id, summary, encrypted content). */
  | { readonly type: "reasoning" }

/** One part as Responses input content; audio it cannot take. */
const toWirePart = (part: Message.UserContentPart, i: number, j: number): WireContentPart => {
  switch (part.type) {
    case "text":
      return { type: "input_text", text: part.text }
    case "image":
      return { type: "input_image", image_url: part.url, detail: part.detail ?? "auto" }
    case "file": {
      const content = contentOf(part)
      if (content.kind === "data") return { type: "input_file", filename: part.filename ?? defaultFilename(part.mediaType), file_data: content.dataUrl }
      return part.filename === undefined
        ? { type: "input_file", file_url: content.url }
        : { type: "input_file", file_url: content.url, filename: part.filename }
    }
    case "audio":
      return refuse(i, j, `the Responses API takes no audio input (${part.mediaType}); Chat Completions takes WAV and MP3`)
  }
}

const toInputItems = (message: Message.Message, i: number): Array<WireInputItem> => {
  switch (message.role) {
    case "system":
      return []
    case "user":
      return [{
        role: "user",
        content: typeof message.content === "string" ? message.content : message.content.map((part, j) => toWirePart(part, i, j))
      }]
    case "assistant": {
      // reasoning items first, as they came before the turn's message and calls
      const items: Array<WireInputItem> = reasoningItemsOf(message, "openai-responses").filter(isReasoningItem)
      if (message.content.length > 0) items.push({ role: "assistant", content: message.content })
      for (const call of message.toolCalls ?? []) {
        items.push({ type: "function_call", call_id: call.id, name: call.name, arguments: call.arguments })
      }
      return items
    }
    case "tool":
      return [{
        type: "function_call_output",
        call_id: message.toolCallId,
        output: typeof message.content === "string" ? message.content : message.content.map((part, j) => toWirePart(part, i, j))
      }]
  }
}

const isReasoningItem = (item: unknown): item is { readonly type: "reasoning" } =>
  typeof item === "object" && item !== null && (item as { type?: unknown }).type === "reasoning"

/**
 * The Responses request body for a unified request: system prompts become `instructions`,
 * tool calls and results become `function_call` and `function_call_output` items, and
 * `reasoningEffort` becomes `reasoning: { effort }`. Chat Completions parameters that the
 * Responses API lacks (`stop`, `seed`, penalties) are left out; `extra` can still set anything.
 */
export const toWireRequest = (
  request: Message.ChatRequest,
  model: string,
  stream: boolean,
  options: { readonly reasoningSummary?: ReasoningSummary | undefined } = {}
): Record<string, unknown> => {
  const instructions: Array<string> = []
  const input: Array<WireInputItem> = []
  request.messages.forEach((message, i) => {
    if (message.role === "system") instructions.push(message.content)
    else input.push(...toInputItems(message, i))
  })
  const body: Record<string, unknown> = { model, input }
  if (instructions.length > 0) body.instructions = instructions.join("\n\n")
  if (request.tools !== undefined && request.tools.length > 0) {
    body.tools = request.tools.map((tool) => {
      // Responses makes functions strict unless told otherwise; most schemas are not written for that
      const wire: Record<string, unknown> = { type: "function", name: tool.name, ...schemaFields("parameters", tool.parameters, tool.strict ?? false) }
      if (tool.description !== undefined) wire.description = tool.description
      return wire
    })
  }
  if (request.toolChoice !== undefined) {
    body.tool_choice = typeof request.toolChoice === "string"
      ? request.toolChoice
      : { type: "function", name: request.toolChoice.name }
  }
  if (request.responseFormat !== undefined) {
    const format = request.responseFormat
    if (format.type === "json_schema") {
      const wire: Record<string, unknown> = { type: "json_schema", name: format.name, ...schemaFields("schema", format.schema, format.strict) }
      if (format.description !== undefined) wire.description = format.description
      body.text = { format: wire }
    } else {
      body.text = { format: { type: format.type } }
    }
  }
  copyOptions(request, body, { temperature: "temperature", topP: "top_p", maxTokens: "max_output_tokens", user: "safety_identifier" })
  if (request.reasoningEffort !== undefined) {
    body.reasoning = options.reasoningSummary === undefined
      ? { effort: request.reasoningEffort }
      : { effort: request.reasoningEffort, summary: options.reasoningSummary }
    // reasoning items then carry their encrypted content, so a transcript does not depend on
    // the server's stored copy (store: false, zero data retention, expiry)
    if (request.reasoningEffort !== "none") body.include = ["reasoning.encrypted_content"]
  } else if (request.extra?.store === false) {
    // not stored, a reasoning item sent back by id alone is not found: its content must travel
    body.include = ["reasoning.encrypted_content"]
  }
  if (stream) body.stream = true
  return withRequestOptions(body, request, ["openai"])
}
