/** Messages requests: a unified request as the `/v1/messages` body. */
import * as Err from "../../../LlmError.js"
import type * as Message from "../../../Message.js"
import { tryJson } from "../../request/errorBody.js"
import { isObjectSchema, rootObject } from "../jsonSchema.js"
import { reasoningItemsOf } from "../reasoningState.js"
import { withRequestOptions } from "../bodyOptions.js"
import { mapRequest } from "../mapRequest.js"
import { contentOf, describe, refuse } from "../mediaParts.js"
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

/** A prompt-cache breakpoint as Anthropic takes it. */
export type CacheControl = { readonly type: "ephemeral"; readonly ttl?: "1h" }

type Source =
  | { readonly type: "base64"; readonly media_type: string; readonly data: string }
  | { readonly type: "url"; readonly url: string }
  | { readonly type: "text"; readonly media_type: "text/plain"; readonly data: string }

export type WireContentBlock =
  | { readonly type: "text"; readonly text: string; readonly cache_control?: CacheControl }
  | { readonly type: "image"; readonly source: Source; readonly cache_control?: CacheControl }
  | { readonly type: "document"; readonly source: Source; readonly title?: string; readonly cache_control?: CacheControl }
  | { readonly type: "tool_use"; readonly id: string; readonly name: string; readonly input: unknown }
  | {
    readonly type: "tool_result"
    readonly tool_use_id: string
    readonly content: string | ReadonlyArray<WireContentBlock>
    readonly is_error?: boolean
    readonly cache_control?: CacheControl
  }
  /** A thinking or redacted_thinking block sent back as the API returned it. */
  | { readonly type: "thinking" | "redacted_thinking" }

export interface WireMessage {
  readonly role: "user" | "assistant"
  readonly content: Array<WireContentBlock>
}

/** Anthropic allows this many `cache_control` breakpoints in one request. */
export const maxBreakpoints = 4

const cacheControlOf = (cache: Message.CacheBreakpoint | undefined): CacheControl | undefined =>
  cache === undefined ? undefined : cache.ttl === "1h" ? { type: "ephemeral", ttl: "1h" } : { type: "ephemeral" }

/** `block` with the breakpoint's `cache_control`, when it has one. */
const cached = <B extends WireContentBlock>(block: B, cache: Message.CacheBreakpoint | undefined): B => {
  const control = cacheControlOf(cache)
  return control === undefined ? block : { ...block, cache_control: control }
}

/** A media part as an `image` or `document` block; audio, and documents other than PDF and text, it cannot take. */
const mediaBlock = (part: Message.MediaPart, i: number, j: number): WireContentBlock => {
  const content = contentOf(part)
  if (part.type === "image") {
    return content.kind === "data"
      ? { type: "image", source: { type: "base64", media_type: content.mediaType, data: content.base64 } }
      : { type: "image", source: { type: "url", url: content.url } }
  }
  if (part.type === "audio") return refuse(i, j, `Anthropic takes no audio input (${part.mediaType})`)
  const titled = (block: WireContentBlock & { readonly type: "document" }) => (part.filename === undefined ? block : { ...block, title: part.filename })
  if (part.mediaType === "application/pdf") {
    return titled(
      content.kind === "data"
        ? { type: "document", source: { type: "base64", media_type: "application/pdf", data: content.base64 } }
        : { type: "document", source: { type: "url", url: content.url } }
    )
  }
  if (part.mediaType.startsWith("text/") && content.kind === "data") {
    // plain-text documents travel as their text
    return titled({ type: "document", source: { type: "text", media_type: "text/plain", data: Buffer.from(content.base64, "base64").toString("utf8") } })
  }
  return refuse(i, j, `Anthropic takes PDF documents (by URL or data) and text documents (as data), not ${describe(part)}`)
}

const partBlock = (part: Message.UserContentPart, i: number, j: number): WireContentBlock =>
  cached(part.type === "text" ? { type: "text", text: part.text } : mediaBlock(part, i, j), part.cache)

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

/**
 * The breakpoints of a request, in the order Anthropic reads the prompt (tools, system,
 * messages): at most `maxBreakpoints`, and no 1-hour one after a 5-minute one, which the API
 * refuses. Why it cannot be sent, or undefined.
 */
const breakpointProblem = (tools: ReadonlyArray<{ readonly cache_control?: CacheControl }>, system: ReadonlyArray<{ readonly cache_control?: CacheControl }>, messages: ReadonlyArray<WireMessage>): string | undefined => {
  const controls: Array<CacheControl> = []
  const collect = (block: { readonly cache_control?: CacheControl | undefined; readonly content?: unknown }) => {
    if (block.cache_control !== undefined) controls.push(block.cache_control)
    // a tool result's own blocks may carry breakpoints too
    if (Array.isArray(block.content)) for (const inner of block.content as ReadonlyArray<typeof block>) collect(inner)
  }
  tools.forEach(collect)
  system.forEach(collect)
  for (const message of messages) message.content.forEach((block) => collect(block as { readonly cache_control?: CacheControl }))
  if (controls.length > maxBreakpoints) {
    return `${controls.length} prompt-cache breakpoints, and Anthropic takes at most ${maxBreakpoints} (cache: on system messages, parts, tool results and tools)`
  }
  let shortSeen = false
  for (const control of controls) {
    if (control.ttl === undefined) shortSeen = true
    else if (shortSeen) return "a 1-hour prompt-cache breakpoint comes after a 5-minute one; Anthropic wants the 1-hour ones first (tools, then system, then messages)"
  }
  return undefined
}

const isThinkingBlock = (item: unknown): item is WireContentBlock =>
  typeof item === "object" && item !== null && ((item as { type?: unknown }).type === "thinking" || (item as { type?: unknown }).type === "redacted_thinking")

/**
 * The Messages request body for a unified request: system prompts are lifted into `system`
 * (as blocks when one carries a prompt-cache breakpoint), breakpoints become `cache_control`
 * (at most 4, checked), images and PDF or text documents become blocks (in tool results too),
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
  const system: Array<WireContentBlock & { readonly type: "text" }> = []
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
        system.push(cached({ type: "text", text: message.content }, message.cache))
        break
      case "user": {
        const content = message.content
        const blocks = mapRequest(provider, model, () =>
          typeof content === "string" ? [{ type: "text" as const, text: content }] : content.map((part, j) => partBlock(part, i, j))
        )
        if (blocks instanceof Err.InvalidRequestError) return blocks
        append("user", blocks)
        break
      }
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
      case "tool": {
        const content = message.content
        const result = mapRequest(provider, model, () => (typeof content === "string" ? content : content.map((part, j) => partBlock(part, i, j))))
        if (result instanceof Err.InvalidRequestError) return result
        const block: WireContentBlock = message.isError === true
          ? { type: "tool_result", tool_use_id: message.toolCallId, content: result, is_error: true }
          : { type: "tool_result", tool_use_id: message.toolCallId, content: result }
        append("user", [cached(block, message.cache)])
        break
      }
    }
  }
  let maxTokens = request.maxTokens ?? options.defaultMaxTokens ?? defaultMaxTokens
  const body: Record<string, unknown> = { model, max_tokens: maxTokens, messages }
  // a breakpoint needs blocks; without one, the prompts joined as one string, as before
  if (system.length > 0) body.system = system.some((block) => block.cache_control !== undefined) ? system : system.map((block) => block.text).join("\n\n")
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
  const tools: Array<Record<string, unknown>> = (request.tools ?? []).map((tool) => {
    const wire: Record<string, unknown> = tool.description === undefined
      ? { name: tool.name, input_schema: rootObject(tool.parameters) }
      : { name: tool.name, description: tool.description, input_schema: rootObject(tool.parameters) }
    const control = cacheControlOf(tool.cache)
    if (control !== undefined) wire.cache_control = control
    return wire
  })
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
  const problem = breakpointProblem(tools as ReadonlyArray<{ readonly cache_control?: CacheControl }>, system, messages)
  if (problem !== undefined) return invalid(problem)
  copyOptions(request, body, { temperature: "temperature", topP: "top_p", stop: "stop_sequences" })
  if (request.user !== undefined) body.metadata = { user_id: request.user }
  if (stream) body.stream = true
  return withRequestOptions(body, request, ["anthropic"])
}
