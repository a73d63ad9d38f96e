/** Messages requests: a unified request as the `/v1/messages` body. */
import * as Err from "../../../LlmError.js"
import type * as Message from "../../../Message.js"
import { tryJson } from "../../request/errorBody.js"
import { isObjectSchema, rootObject } from "../jsonSchema.js"
import { reasoningItemsOf } from "../reasoningState.js"
import { copyOptions } from "../requestOptions.js"

/** `max_tokens` when a request sets none: Anthropic requires it. */
export const defaultMaxTokens = 4096

/** Thinking budgets (tokens) per `reasoningEffort`; `none` turns thinking off. */
export type ThinkingBudgets = Partial<Record<Exclude<Message.ReasoningEffort, "none">, number>>

const defaultBudgets: Record<Exclude<Message.ReasoningEffort, "none">, number> = {
  minimal: 1024,
  low: 2048,
  medium: 8192,
  high: 24576
}

export type WireContentBlock =
  | { readonly type: "text"; readonly text: string }
  | {
    readonly type: "image"
    readonly source:
      | { readonly type: "base64"; readonly media_type: string; readonly data: string }
      | { readonly type: "url"; readonly url: string }
  }
  | { readonly type: "tool_use"; readonly id: string; readonly name: string; readonly input: unknown }
  | { readonly type: "tool_result"; readonly tool_use_id: string; readonly content: string; readonly is_error?: boolean }
  /** A thinking or redacted_thinking block sent back as the API returned it. */
  | { readonly type: "thinking" | "redacted_thinking" }

export interface WireMessage {
  readonly role: "user" | "assistant"
  readonly content: Array<WireContentBlock>
}

const imageBlock = (part: Message.ImagePart): WireContentBlock => {
  const match = /^data:([^;,]+);base64,(.*)$/s.exec(part.url)
  if (match !== null) {
    return { type: "image", source: { type: "base64", media_type: part.mediaType ?? match[1]!, data: match[2]! } }
  }
  return { type: "image", source: { type: "url", url: part.url } }
}

/** Tool arguments go back as a JSON object; text that is not one is the caller's mistake. */
const toolInput = (
  provider: string,
  model: string,
  call: Message.ToolCall,
  where: string
): unknown | Err.InvalidRequestError => {
  if (call.arguments.trim().length === 0) return {}
  const parsed = tryJson(call.arguments)
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    return new Err.InvalidRequestError({
      provider,
      model,
      message: `${where}.arguments must be a JSON object for Anthropic's tool_use input, got: ${Err.excerptOf(call.arguments, 80)}`
    })
  }
  return parsed
}

/** The output tool's description when the format has none. */
export const outputToolDescription = "Respond with the final answer as this tool's input."

/**
 * The name of the tool that carries a json_schema reply, when the request asks for one:
 * Anthropic's structured output is a forced tool call, except with extended thinking, which
 * takes the native `output_config.format` (its reply is plain text).
 */
export const outputToolOf = (request: Message.ChatRequest): string | undefined =>
  request.responseFormat?.type === "json_schema" && (request.reasoningEffort === undefined || request.reasoningEffort === "none")
    ? request.responseFormat.name
    : undefined

const isThinkingBlock = (item: unknown): item is WireContentBlock =>
  typeof item === "object" && item !== null && ((item as { type?: unknown }).type === "thinking" || (item as { type?: unknown }).type === "redacted_thinking")

/**
 * The Messages request body for a unified request: system prompts are lifted into `system`,
 * tool results become `tool_result` blocks of a user turn (parallel results share one turn),
 * and `max_tokens` is always set. Fails with `InvalidRequestError` naming the bad field.
 */
export const toWireRequest = (
  request: Message.ChatRequest,
  model: string,
  stream: boolean,
  options: {
    readonly provider?: string | undefined
    readonly defaultMaxTokens?: number | undefined
    readonly thinkingBudgets?: ThinkingBudgets | undefined
  } = {}
): Record<string, unknown> | Err.InvalidRequestError => {
  const provider = options.provider ?? "anthropic"
  const system: Array<string> = []
  const messages: Array<WireMessage> = []
  const append = (role: "user" | "assistant", blocks: Array<WireContentBlock>) => {
    if (blocks.length === 0) return
    const last = messages[messages.length - 1]
    // consecutive turns of one role are merged: tool results and a following user text share a turn
    if (last !== undefined && last.role === role) last.content.push(...blocks)
    else messages.push({ role, content: blocks })
  }
  for (let i = 0; i < request.messages.length; i++) {
    const message = request.messages[i]!
    switch (message.role) {
      case "system":
        system.push(message.content)
        break
      case "user":
        append(
          "user",
          typeof message.content === "string"
            ? [{ type: "text", text: message.content }]
            : message.content.map((part) => (part.type === "text" ? { type: "text" as const, text: part.text } : imageBlock(part)))
        )
        break
      case "assistant": {
        // thinking blocks go back first, unchanged, with their signatures: the API checks them
        const blocks: Array<WireContentBlock> = reasoningItemsOf(message, "anthropic").filter(isThinkingBlock)
        if (message.content.length > 0) blocks.push({ type: "text", text: message.content })
        const calls = message.toolCalls ?? []
        for (let j = 0; j < calls.length; j++) {
          const call = calls[j]!
          const input = toolInput(provider, model, call, `messages[${i}].toolCalls[${j}]`)
          if (input instanceof Err.InvalidRequestError) return input
          blocks.push({ type: "tool_use", id: call.id, name: call.name, input })
        }
        append("assistant", blocks)
        break
      }
      case "tool":
        append("user", [
          message.isError === true
            ? { type: "tool_result", tool_use_id: message.toolCallId, content: message.content, is_error: true }
            : { type: "tool_result", tool_use_id: message.toolCallId, content: message.content }
        ])
        break
    }
  }
  let maxTokens = request.maxTokens ?? options.defaultMaxTokens ?? defaultMaxTokens
  const body: Record<string, unknown> = { model, max_tokens: maxTokens, messages }
  if (system.length > 0) body.system = system.join("\n\n")
  if (request.reasoningEffort !== undefined && request.reasoningEffort !== "none") {
    let budget = options.thinkingBudgets?.[request.reasoningEffort] ?? defaultBudgets[request.reasoningEffort]
    // the budget counts against max_tokens: grow an implicit limit, shrink into an explicit one
    if (request.maxTokens === undefined) maxTokens += budget
    else budget = Math.min(budget, maxTokens - 1)
    if (budget < 1024) {
      return new Err.InvalidRequestError({
        provider,
        model,
        message: `maxTokens ${maxTokens} leaves no room for thinking: Anthropic needs a budget of at least 1024 tokens below max_tokens`
      })
    }
    body.max_tokens = maxTokens
    body.thinking = { type: "enabled", budget_tokens: budget }
  }
  const invalid = (message: string) => new Err.InvalidRequestError({ provider, model, message: `${provider}: ${message}` })
  const thinking = body.thinking !== undefined
  const tools: Array<Record<string, unknown>> = (request.tools ?? []).map((tool) =>
    tool.description === undefined
      ? { name: tool.name, input_schema: rootObject(tool.parameters) }
      : { name: tool.name, description: tool.description, input_schema: rootObject(tool.parameters) }
  )
  if (request.toolChoice !== undefined) {
    const choice = request.toolChoice
    if (thinking && (typeof choice === "object" || choice === "required")) {
      return invalid("request.toolChoice: Anthropic allows only \"auto\" or \"none\" with extended thinking (reasoningEffort)")
    }
    body.tool_choice = typeof choice === "object"
      ? { type: "tool", name: choice.name }
      : { type: choice === "required" ? "any" : choice }
  }
  const format = request.responseFormat
  if (format?.type === "json_object") {
    return invalid("request.responseFormat: Anthropic has no JSON mode without a schema; use a json_schema format")
  }
  if (format?.type === "json_schema") {
    const schema = rootObject(format.schema)
    if (thinking) {
      // a forced tool is refused with extended thinking: the native output format instead
      body.output_config = { format: { type: "json_schema", schema } }
    } else {
      if (!isObjectSchema(schema)) {
        return invalid("request.responseFormat.schema: Anthropic's output tool takes an object schema at the root")
      }
      if (request.toolChoice !== undefined) {
        return invalid("request.toolChoice: a json_schema responseFormat forces Anthropic's tool choice to its output tool")
      }
      if (tools.some((tool) => tool.name === format.name)) {
        return invalid(`request.responseFormat.name: "${format.name}" is also the name of a tool`)
      }
      tools.push({ name: format.name, description: format.description ?? outputToolDescription, input_schema: schema })
      body.tool_choice = { type: "tool", name: format.name }
    }
  }
  if (tools.length > 0) body.tools = tools
  copyOptions(request, body, { temperature: "temperature", topP: "top_p", stop: "stop_sequences" })
  if (request.user !== undefined) body.metadata = { user_id: request.user }
  if (stream) body.stream = true
  if (request.extra !== undefined) Object.assign(body, request.extra)
  return body
}
