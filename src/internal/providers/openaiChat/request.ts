/** Chat Completions requests: a unified request as the `/chat/completions` body. */
import type * as Message from "../../../Message.js"
import { type OptionsKey, withRequestOptions } from "../bodyOptions.js"
import { schemaFields } from "../jsonSchema.js"
import { contentOf, defaultFilename, describe, refuse } from "../mediaParts.js"
import { copyOptions } from "../requestOptions.js"

/** Which field carries `maxTokens`: OpenAI wants `max_completion_tokens`, most compatible servers `max_tokens`. */
export type MaxTokensField = "max_tokens" | "max_completion_tokens"

type CacheControl = { readonly type: "ephemeral"; readonly ttl?: "5m" | "1h" }

export type WirePart =
  | { readonly type: "text"; readonly text: string; readonly cache_control?: CacheControl }
  | { readonly type: "image_url"; readonly image_url: { readonly url: string; readonly detail?: string } }
  | { readonly type: "file"; readonly file: { readonly file_data: string; readonly filename: string } }
  | { readonly type: "input_audio"; readonly input_audio: { readonly data: string; readonly format: "wav" | "mp3" } }

export type WireMessage =
  | { readonly role: "system"; readonly content: string | ReadonlyArray<WirePart> }
  | { readonly role: "user"; readonly content: string | ReadonlyArray<WirePart> }
  | {
    readonly role: "assistant"
    readonly content: string | null
    readonly tool_calls?: ReadonlyArray<
      { readonly id: string; readonly type: "function"; readonly function: { readonly name: string; readonly arguments: string } }
    >
  }
  | { readonly role: "tool"; readonly tool_call_id: string; readonly content: string | ReadonlyArray<WirePart> }

/** Chat Completions takes audio as WAV or MP3 only. */
const audioFormat = (mediaType: string): "wav" | "mp3" | undefined =>
  /^audio\/(x-)?wav$|^audio\/wave$/.test(mediaType) ? "wav" : /^audio\/(mpeg|mp3)$/.test(mediaType) ? "mp3" : undefined

/**
 * How a request maps: plain Chat Completions, or OpenRouter's, which also carries
 * `cache_control` on text parts (its way to Anthropic's and Gemini's explicit caching).
 */
interface Dialect {
  readonly cacheControl: boolean
}

const cacheControlOf = (dialect: Dialect, cache: Message.CacheBreakpoint | undefined): CacheControl | undefined =>
  !dialect.cacheControl || cache === undefined ? undefined : cache.ttl === "1h" ? { type: "ephemeral", ttl: "1h" } : { type: "ephemeral" }

const textPart = (text: string, cacheControl: CacheControl | undefined): WirePart =>
  cacheControl === undefined ? { type: "text", text } : { type: "text", text, cache_control: cacheControl }

const toWirePart = (part: Message.UserContentPart, i: number, j: number, dialect: Dialect): WirePart => {
  if (part.type === "text") return textPart(part.text, cacheControlOf(dialect, part.cache))
  if (part.type === "image") {
    return { type: "image_url", image_url: part.detail === undefined ? { url: part.url } : { url: part.url, detail: part.detail } }
  }
  const content = contentOf(part)
  if (content.kind === "url") {
    return refuse(i, j, `Chat Completions takes ${describe(part)} as bytes or base64 only, not a URL (the Responses API takes file URLs)`)
  }
  if (part.type === "file") {
    return { type: "file", file: { file_data: content.dataUrl, filename: part.filename ?? defaultFilename(part.mediaType) } }
  }
  const format = audioFormat(content.mediaType)
  if (format === undefined) return refuse(i, j, `Chat Completions takes audio as WAV or MP3, not ${content.mediaType}`)
  return { type: "input_audio", input_audio: { data: content.base64, format } }
}

/**
 * A tool result. Chat Completions takes only text in a tool message: a result's images and
 * documents go in the user message that follows the run of tool messages (`attachments`), and
 * the tool message says so; one the user message cannot take either is refused by its path.
 */
const toolContent = (
  message: Message.ToolMessage,
  i: number,
  dialect: Dialect,
  attachments: Array<WirePart>
): string | ReadonlyArray<WirePart> => {
  const cache = cacheControlOf(dialect, message.cache)
  if (typeof message.content === "string") return cache === undefined ? message.content : [textPart(message.content, cache)]
  let text = ""
  let media = 0
  message.content.forEach((part, j) => {
    if (part.type === "text") {
      text += part.text
      return
    }
    if (media === 0) attachments.push(textPart(`Attached to the result of tool call ${message.toolCallId}:`, undefined))
    attachments.push(toWirePart(part, i, j, dialect))
    media++
  })
  if (media > 0) text += `${text.length > 0 ? "\n\n" : ""}[${media === 1 ? "1 attachment follows" : `${media} attachments follow`} in the next message]`
  return cache === undefined ? text : [textPart(text, cache)]
}

/** The messages on the wire: one each, and after a run of tool results, their attachments. */
const toWireMessages = (messages: ReadonlyArray<Message.Message>, dialect: Dialect): Array<WireMessage> => {
  const out: Array<WireMessage> = []
  let attachments: Array<WirePart> = []
  messages.forEach((message, i) => {
    if (message.role !== "tool" && attachments.length > 0) {
      out.push({ role: "user", content: attachments })
      attachments = []
    }
    out.push(toWireMessage(message, i, dialect, attachments))
  })
  if (attachments.length > 0) out.push({ role: "user", content: attachments })
  return out
}

const toWireMessage = (message: Message.Message, i: number, dialect: Dialect, attachments: Array<WirePart>): WireMessage => {
  switch (message.role) {
    case "system": {
      const cache = cacheControlOf(dialect, message.cache)
      return { role: "system", content: cache === undefined ? message.content : [textPart(message.content, cache)] }
    }
    case "user":
      return {
        role: "user",
        content: typeof message.content === "string"
          ? message.content
          : message.content.map((part, j) => toWirePart(part, i, j, dialect))
      }
    case "assistant": {
      const calls = message.toolCalls
      if (calls === undefined || calls.length === 0) return { role: "assistant", content: message.content }
      return {
        role: "assistant",
        content: message.content.length === 0 ? null : message.content,
        tool_calls: calls.map((call) => ({
          id: call.id,
          type: "function" as const,
          function: { name: call.name, arguments: call.arguments }
        }))
      }
    }
    case "tool":
      return { role: "tool", tool_call_id: message.toolCallId, content: toolContent(message, i, dialect, attachments) }
  }
}

/** The `providerOptions` a provider's Chat Completions body reads: `openai`, then OpenRouter's own. */
export const optionsKeysOf = (provider: string): ReadonlyArray<OptionsKey> => (provider === "openrouter" ? ["openai", "openrouter"] : ["openai"])

/**
 * The Chat Completions request body for a unified request. A part it cannot take throws the
 * `BadInput` that names the message and part (the spec's `mapRequest` makes it an
 * `InvalidRequestError`). Prompt-cache breakpoints go nowhere
 * (OpenAI and compatible servers cache on their own) except on OpenRouter, which passes
 * `cache_control` on to the providers that want it.
 */
export const toWireRequest = (
  request: Message.ChatRequest,
  model: string,
  stream: boolean,
  maxTokensField: MaxTokensField = "max_tokens",
  provider = "openai"
): Record<string, unknown> => {
  const dialect: Dialect = { cacheControl: provider === "openrouter" }
  const body: Record<string, unknown> = { model, messages: toWireMessages(request.messages, dialect) }
  if (request.tools !== undefined && request.tools.length > 0) {
    body.tools = request.tools.map((tool) => {
      const fn: Record<string, unknown> = { name: tool.name, ...schemaFields("parameters", tool.parameters, tool.strict) }
      if (tool.description !== undefined) fn.description = tool.description
      return { type: "function", function: fn }
    })
  }
  if (request.toolChoice !== undefined) {
    body.tool_choice = typeof request.toolChoice === "string"
      ? request.toolChoice
      : { type: "function", function: { name: request.toolChoice.name } }
  }
  if (request.responseFormat !== undefined) {
    const format = request.responseFormat
    if (format.type === "json_schema") {
      const jsonSchema: Record<string, unknown> = { name: format.name, ...schemaFields("schema", format.schema, format.strict) }
      if (format.description !== undefined) jsonSchema.description = format.description
      body.response_format = { type: "json_schema", json_schema: jsonSchema }
    } else {
      body.response_format = { type: format.type }
    }
  }
  copyOptions(request, body, {
    temperature: "temperature",
    topP: "top_p",
    maxTokens: maxTokensField,
    stop: "stop",
    seed: "seed",
    presencePenalty: "presence_penalty",
    frequencyPenalty: "frequency_penalty",
    user: "user",
    reasoningEffort: "reasoning_effort"
  })
  if (stream) {
    body.stream = true
    body.stream_options = { include_usage: true }
  }
  return withRequestOptions(body, request, optionsKeysOf(provider))
}
