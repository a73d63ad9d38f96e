/** Chat Completions requests: a unified request as the `/chat/completions` body. */
import type * as Message from "../../../Message.js"
import { schemaFields } from "../jsonSchema.js"
import { copyOptions } from "../requestOptions.js"

/** Which field carries `maxTokens`: OpenAI wants `max_completion_tokens`, most compatible servers `max_tokens`. */
export type MaxTokensField = "max_tokens" | "max_completion_tokens"

export type WireMessage =
  | { readonly role: "system"; readonly content: string }
  | {
    readonly role: "user"
    readonly content:
      | string
      | ReadonlyArray<
        | { readonly type: "text"; readonly text: string }
        | { readonly type: "image_url"; readonly image_url: { readonly url: string; readonly detail?: string } }
      >
  }
  | {
    readonly role: "assistant"
    readonly content: string | null
    readonly tool_calls?: ReadonlyArray<
      { readonly id: string; readonly type: "function"; readonly function: { readonly name: string; readonly arguments: string } }
    >
  }
  | { readonly role: "tool"; readonly tool_call_id: string; readonly content: string }

const toWireMessage = (message: Message.Message): WireMessage => {
  switch (message.role) {
    case "system":
      return { role: "system", content: message.content }
    case "user":
      return {
        role: "user",
        content: typeof message.content === "string"
          ? message.content
          : message.content.map((part) =>
            part.type === "text"
              ? { type: "text" as const, text: part.text }
              : {
                type: "image_url" as const,
                image_url: part.detail === undefined ? { url: part.url } : { url: part.url, detail: part.detail }
              }
          )
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
      return { role: "tool", tool_call_id: message.toolCallId, content: message.content }
  }
}

/** The Chat Completions request body for a unified request. */
export const toWireRequest = (
  request: Message.ChatRequest,
  model: string,
  stream: boolean,
  maxTokensField: MaxTokensField = "max_tokens"
): Record<string, unknown> => {
  const body: Record<string, unknown> = { model, messages: request.messages.map(toWireMessage) }
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
  if (request.extra !== undefined) Object.assign(body, request.extra)
  return body
}
