/**
 * Anthropic Messages (`/v1/messages`). The wire format, its mapping and the stream state
 * machine live here; HTTP, keys and limits come from `internal/http`, like every provider.
 *
 * @since 0.1.0
 */
import type * as HttpClient from "@effect/platform/HttpClient"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { decodeJsonBody, fromStreamErrorEvent, tryJson, jsonObjectFrame } from "./internal/request/errors.js"
import * as Provider from "./Provider.js"
import * as KeyPool from "./KeyPool.js"
import { LanguageModel } from "./LanguageModel.js"
import * as Err from "./LlmError.js"
import * as Message from "./Message.js"
import { estimatedUsage } from "./OpenAiCompatible.js"
import type * as RateLimiter from "./RateLimiter.js"

// ---------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------

/** @since 0.1.0 @category models */
export interface Options extends Provider.CommonOptions {
  readonly model: string
  /** Defaults to `https://api.anthropic.com`. */
  readonly baseUrl?: string | undefined
  /** The provider id used in errors, spans and usage. Default `anthropic`. */
  readonly provider?: string | undefined
  readonly headers?: Record<string, string> | undefined
  readonly contextWindow?: number | undefined
  /** Total time for one request, including the whole body of a stream. */
  readonly timeout?: Duration.DurationInput | undefined
  /** The `anthropic-version` header. Default `2023-06-01`. */
  readonly version?: string | undefined
  /** `max_tokens` when a request sets none: Anthropic requires it. Default 4096. */
  readonly defaultMaxTokens?: number | undefined
  /**
   * Thinking budgets (tokens) per `reasoningEffort`. Defaults: minimal 1024, low 2048,
   * medium 8192, high 24576; `none` turns thinking off.
   */
  readonly thinkingBudgets?: Partial<Record<Exclude<Message.ReasoningEffort, "none">, number>> | undefined
}

/** @since 0.1.0 @category constants */
export const defaultBaseUrl = "https://api.anthropic.com"

/** @since 0.1.0 @category constants */
export const defaultVersion = "2023-06-01"

/** @since 0.1.0 @category constants */
export const defaultMaxTokens = 4096

const defaultBudgets: Record<Exclude<Message.ReasoningEffort, "none">, number> = {
  minimal: 1024,
  low: 2048,
  medium: 8192,
  high: 24576
}

// ---------------------------------------------------------------------------
// Wire format: requests
// ---------------------------------------------------------------------------

/** @since 0.1.0 @category wire */
export type WireContentBlock =
  | { readonly type: "text"; readonly text: string }
  | {
    readonly type: "image"
    readonly source:
      | { readonly type: "base64"; readonly media_type: string; readonly data: string }
      | { readonly type: "url"; readonly url: string }
  }
  | { readonly type: "tool_use"; readonly id: string; readonly name: string; readonly input: unknown }
  | { readonly type: "tool_result"; readonly tool_use_id: string; readonly content: string }

/** @since 0.1.0 @category wire */
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

/**
 * The Messages request body for a unified request: system prompts are lifted into `system`,
 * tool results become `tool_result` blocks of a user turn (parallel results share one turn),
 * and `max_tokens` is always set. Fails with `InvalidRequestError` naming the bad field.
 * @since 0.1.0 @category wire
 */
export const toWireRequest = (
  request: Message.ChatRequest,
  model: string,
  stream: boolean,
  options: {
    readonly provider?: string | undefined
    readonly defaultMaxTokens?: number | undefined
    readonly thinkingBudgets?: Options["thinkingBudgets"]
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
        const blocks: Array<WireContentBlock> = []
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
        append("user", [{ type: "tool_result", tool_use_id: message.toolCallId, content: message.content }])
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
  if (request.tools !== undefined && request.tools.length > 0) {
    body.tools = request.tools.map((tool) =>
      tool.description === undefined
        ? { name: tool.name, input_schema: tool.parameters }
        : { name: tool.name, description: tool.description, input_schema: tool.parameters }
    )
  }
  if (request.toolChoice !== undefined) {
    const choice = request.toolChoice
    body.tool_choice = typeof choice === "object"
      ? { type: "tool", name: choice.name }
      : { type: choice === "required" ? "any" : choice }
  }
  if (request.temperature !== undefined) body.temperature = request.temperature
  if (request.topP !== undefined) body.top_p = request.topP
  if (request.stop !== undefined) body.stop_sequences = request.stop
  if (request.user !== undefined) body.metadata = { user_id: request.user }
  if (stream) body.stream = true
  if (request.extra !== undefined) Object.assign(body, request.extra)
  return body
}

// ---------------------------------------------------------------------------
// Wire format: responses (decoded tolerantly: only what we use, unknown fields ignored)
// ---------------------------------------------------------------------------

const optionalNullable = <S extends Schema.Schema.Any>(schema: S) => Schema.optional(Schema.NullOr(schema))

/** @since 0.1.0 @category wire */
export const WireUsage = Schema.Struct({
  input_tokens: optionalNullable(Schema.Number),
  output_tokens: optionalNullable(Schema.Number),
  cache_read_input_tokens: optionalNullable(Schema.Number),
  cache_creation_input_tokens: optionalNullable(Schema.Number)
})
/** @since 0.1.0 @category wire */
export type WireUsage = typeof WireUsage.Type

/** A content block; the `type` stays an open string so new block kinds never break a decode. */
const WireBlock = Schema.Struct({
  type: Schema.String,
  text: Schema.optional(Schema.String),
  thinking: Schema.optional(Schema.String),
  id: Schema.optional(Schema.String),
  name: Schema.optional(Schema.String),
  input: Schema.optional(Schema.Unknown)
})

/** @since 0.1.0 @category wire */
export const WireResponse = Schema.Struct({
  id: Schema.optional(Schema.String),
  model: Schema.optional(Schema.String),
  content: Schema.Array(WireBlock),
  stop_reason: optionalNullable(Schema.String),
  usage: optionalNullable(WireUsage)
})

const decodeWireResponse = Schema.decodeUnknownEither(WireResponse)

/**
 * Maps Anthropic's `stop_reason` to the unified set; unknown values become `"other"`.
 * @since 0.1.0 @category wire
 */
export const finishReasonOf = (reason: string | null | undefined, hasToolCalls: boolean): Message.FinishReason => {
  switch (reason) {
    case "end_turn":
    case "stop_sequence":
      return hasToolCalls ? "tool_calls" : "stop"
    case "max_tokens":
    case "model_context_window_exceeded":
      return "length"
    case "tool_use":
      return "tool_calls"
    case "refusal":
      return "content_filter"
    case null:
    case undefined:
      return hasToolCalls ? "tool_calls" : "stop"
    default:
      return "other"
  }
}

/**
 * Anthropic counts cache reads and writes apart from `input_tokens`; the unified
 * `inputTokens` is all of the prompt, as OpenAI reports it.
 * @since 0.1.0 @category wire
 */
export const usageOf = (usage: WireUsage): Message.Usage => {
  const cacheRead = usage.cache_read_input_tokens ?? 0
  const inputTokens = (usage.input_tokens ?? 0) + cacheRead + (usage.cache_creation_input_tokens ?? 0)
  const outputTokens = usage.output_tokens ?? 0
  const result: Message.Usage = { inputTokens, outputTokens, totalTokens: inputTokens + outputTokens, estimated: false }
  return usage.cache_read_input_tokens === undefined || usage.cache_read_input_tokens === null
    ? result
    : { ...result, cachedInputTokens: cacheRead }
}

const requestChars = (request: Message.ChatRequest): number => {
  let n = 0
  for (const message of request.messages) n += Message.contentText(message).length
  return n
}

const outputChars = (text: string, reasoning: string | undefined, calls: ReadonlyArray<Message.ToolCall>): number => {
  let n = text.length + (reasoning?.length ?? 0)
  for (const call of calls) n += call.name.length + call.arguments.length
  return n
}

/**
 * Streamed input JSON in the form `chat` gives it (`JSON.stringify` of the decoded `input`),
 * so that a collected stream equals the `chat` response; text that does not parse (a call
 * cut by `max_tokens`) is kept as it came.
 */
const canonical = (args: string): string => {
  const parsed = tryJson(args)
  return parsed === undefined ? args : JSON.stringify(parsed)
}

/** An input object as argument text; an empty input is `{}`, as the stream assembles it. */
const argumentsOf = (input: unknown): string => (input === undefined || input === null ? "{}" : JSON.stringify(input))

/**
 * Decodes a non-streaming Messages body into a `ChatResponse`. Server-side tool blocks
 * (`server_tool_use`, web search results) are the provider's own business and are left out.
 * @since 0.1.0 @category wire
 */
export const fromWireResponse = (
  provider: string,
  model: string,
  request: Message.ChatRequest,
  body: string,
  status = 200
): Message.ChatResponse | Err.LlmError => {
  const decoded = decodeJsonBody(decodeWireResponse, provider, model, body, status)
  if (Either.isLeft(decoded)) return decoded.left
  const wire = decoded.right
  let text = ""
  let reasoning = ""
  const toolCalls: Array<Message.ToolCall> = []
  for (const block of wire.content) {
    if (block.type === "text" && block.text !== undefined) text += block.text
    else if (block.type === "thinking" && block.thinking !== undefined) reasoning += block.thinking
    else if (block.type === "tool_use" && block.id !== undefined && block.name !== undefined) {
      toolCalls.push({ id: block.id, name: block.name, arguments: argumentsOf(block.input) })
    }
  }
  const reasoningOut = reasoning.length > 0 ? reasoning : undefined
  const response: Message.ChatResponse = {
    id: wire.id ?? "",
    model: wire.model ?? model,
    provider,
    text,
    toolCalls,
    finishReason: finishReasonOf(wire.stop_reason, toolCalls.length > 0),
    usage: wire.usage
      ? usageOf(wire.usage)
      : estimatedUsage(requestChars(request), outputChars(text, reasoningOut, toolCalls))
  }
  return reasoningOut === undefined ? response : { ...response, reasoning: reasoningOut }
}

// ---------------------------------------------------------------------------
// Wire format: stream events (a light, tolerant parse: no Schema per event)
// ---------------------------------------------------------------------------

interface OpenBlock {
  readonly kind: "text" | "thinking" | "tool" | "other"
  /** For tool blocks: the call's position among the message's tool calls. */
  readonly toolIndex: number
  readonly id: string
  readonly name: string
  arguments: string
  /** The `input` of `content_block_start`, used when no `input_json_delta` follows. */
  readonly initialInput: unknown
  emitted: boolean
}

/**
 * The stream state machine over Messages events: `message_start` → content blocks
 * (`text_delta`, `thinking_delta`, `input_json_delta`, `signature_delta`) → `message_delta`
 * (stop reason, usage) → `message_stop`. `ping` is ignored and `error` ends the stream.
 * @since 0.1.0 @category wire
 */
export class EventParser implements Provider.StreamParser {
  emittedText = ""
  settledTokens: number | undefined = undefined
  private reasoning = ""
  private id = ""
  private model: string
  private stopReason: string | null | undefined = undefined
  private usage: { -readonly [K in keyof WireUsage]: WireUsage[K] } | undefined = undefined
  private readonly blocks = new Map<number, OpenBlock>()
  private readonly calls: Array<Message.ToolCall> = []
  private toolCount = 0
  private finished = false

  constructor(
    private readonly provider: string,
    model: string,
    private readonly request: Message.ChatRequest
  ) {
    this.model = model
  }

  onData(data: string, event: string | undefined, out: Array<Message.StreamEvent>): Err.LlmError | undefined {
    if (this.finished) return undefined
    const frame = jsonObjectFrame(this.provider, this.model, data, "a stream event")
    if (frame instanceof Err.MalformedResponseError) return frame
    const payload = frame
    const type = typeof payload.type === "string" ? payload.type : event
    switch (type) {
      case "message_start": {
        const message = payload.message as { id?: unknown; model?: unknown; usage?: unknown } | undefined
        if (typeof message?.id === "string") this.id = message.id
        if (typeof message?.model === "string") this.model = message.model
        this.mergeUsage(message?.usage)
        return undefined
      }
      case "content_block_start":
        return this.startBlock(payload, out)
      case "content_block_delta":
        return this.delta(payload, out)
      case "content_block_stop": {
        const block = typeof payload.index === "number" ? this.blocks.get(payload.index) : undefined
        if (block !== undefined) this.closeBlock(block, out)
        return undefined
      }
      case "message_delta": {
        const delta = payload.delta as { stop_reason?: unknown } | undefined
        if (typeof delta?.stop_reason === "string") this.stopReason = delta.stop_reason
        this.mergeUsage(payload.usage)
        return undefined
      }
      case "message_stop":
        return this.finish(out)
      case "error":
        return fromStreamErrorEvent(this.provider, this.model, payload, this.emittedText, this.emittedText.length > 0)
      default:
        // ping, and event types newer than this parser
        return undefined
    }
  }

  onEnd(out: Array<Message.StreamEvent>): Err.LlmError | undefined {
    if (this.finished) return undefined
    // message_delta carries everything message_stop would confirm: a stop reason is an end
    if (this.stopReason === undefined) {
      return new Err.StreamError({
        provider: this.provider,
        model: this.model,
        message: `${this.provider} stream ended before message_stop`,
        partial: this.emittedText.length > 0 || this.toolCount > 0 || this.reasoning.length > 0,
        partialText: this.emittedText
      })
    }
    return this.finish(out)
  }

  private mergeUsage(raw: unknown): void {
    if (typeof raw !== "object" || raw === null) return
    const usage = raw as Record<string, unknown>
    const next = this.usage ?? {}
    // message_delta's counts are cumulative and may repeat or revise message_start's
    if (typeof usage.input_tokens === "number") next.input_tokens = usage.input_tokens
    if (typeof usage.output_tokens === "number") next.output_tokens = usage.output_tokens
    if (typeof usage.cache_read_input_tokens === "number") next.cache_read_input_tokens = usage.cache_read_input_tokens
    if (typeof usage.cache_creation_input_tokens === "number") next.cache_creation_input_tokens = usage.cache_creation_input_tokens
    this.usage = next
  }

  private startBlock(payload: Record<string, unknown>, out: Array<Message.StreamEvent>): undefined {
    if (typeof payload.index !== "number") return undefined
    const raw = (payload.content_block ?? {}) as { type?: unknown; text?: unknown; thinking?: unknown; id?: unknown; name?: unknown; input?: unknown }
    if (raw.type === "tool_use" && typeof raw.id === "string" && typeof raw.name === "string") {
      const block: OpenBlock = {
        kind: "tool",
        toolIndex: this.toolCount++,
        id: raw.id,
        name: raw.name,
        arguments: "",
        initialInput: raw.input,
        emitted: false
      }
      this.blocks.set(payload.index, block)
      out.push({ _tag: "ToolCallDelta", index: block.toolIndex, id: block.id, name: block.name, argumentsDelta: "" })
      return undefined
    }
    const kind = raw.type === "text" ? "text" : raw.type === "thinking" ? "thinking" : "other"
    this.blocks.set(payload.index, { kind, toolIndex: -1, id: "", name: "", arguments: "", initialInput: undefined, emitted: false })
    if (kind === "text" && typeof raw.text === "string" && raw.text.length > 0) this.text(raw.text, out)
    if (kind === "thinking" && typeof raw.thinking === "string" && raw.thinking.length > 0) this.think(raw.thinking, out)
    return undefined
  }

  private delta(payload: Record<string, unknown>, out: Array<Message.StreamEvent>): undefined {
    const delta = payload.delta as { type?: unknown; text?: unknown; thinking?: unknown; partial_json?: unknown } | undefined
    if (delta === undefined) return undefined
    switch (delta.type) {
      case "text_delta":
        if (typeof delta.text === "string" && delta.text.length > 0) this.text(delta.text, out)
        break
      case "thinking_delta":
        if (typeof delta.thinking === "string" && delta.thinking.length > 0) this.think(delta.thinking, out)
        break
      case "input_json_delta": {
        const block = typeof payload.index === "number" ? this.blocks.get(payload.index) : undefined
        // server_tool_use blocks stream input too; they are not the caller's calls
        if (block?.kind !== "tool" || typeof delta.partial_json !== "string" || delta.partial_json.length === 0) break
        block.arguments += delta.partial_json
        out.push({ _tag: "ToolCallDelta", index: block.toolIndex, argumentsDelta: delta.partial_json })
        break
      }
      default:
        // signature_delta, citations_delta: nothing the unified response carries
        break
    }
    return undefined
  }

  private closeBlock(block: OpenBlock, out: Array<Message.StreamEvent>): void {
    if (block.kind !== "tool" || block.emitted) return
    block.emitted = true
    const args = block.arguments.length > 0 ? canonical(block.arguments) : argumentsOf(block.initialInput)
    const call: Message.ToolCall = { id: block.id, name: block.name, arguments: args }
    this.calls.push(call)
    out.push({ _tag: "ToolCall", index: block.toolIndex, ...call })
  }

  private text(text: string, out: Array<Message.StreamEvent>): void {
    this.emittedText += text
    push(out, "TextDelta", text)
  }

  private think(text: string, out: Array<Message.StreamEvent>): void {
    this.reasoning += text
    push(out, "ReasoningDelta", text)
  }

  private finish(out: Array<Message.StreamEvent>): undefined {
    if (this.finished) return undefined
    this.finished = true
    for (const block of this.blocks.values()) this.closeBlock(block, out)
    const reasoning = this.reasoning.length > 0 ? this.reasoning : undefined
    const usage = this.usage !== undefined && (this.usage.input_tokens != null || this.usage.output_tokens != null)
      ? usageOf(this.usage)
      : estimatedUsage(requestChars(this.request), outputChars(this.emittedText, reasoning, this.calls))
    this.settledTokens = usage.totalTokens
    out.push({
      _tag: "Finish",
      finishReason: finishReasonOf(this.stopReason, this.calls.length > 0),
      usage,
      id: this.id,
      model: this.model,
      provider: this.provider
    })
    return undefined
  }
}

const push = Provider.pushDelta

// ---------------------------------------------------------------------------
// Layers
// ---------------------------------------------------------------------------

/** @since 0.1.0 @category constructors */
export const make = (
  options: Options
): Effect.Effect<LanguageModel["Type"], never, HttpClient.HttpClient | KeyPool.KeyPool | RateLimiter.RateLimiter> =>
  Effect.suspend(() => {
    const provider = options.provider ?? "anthropic"
    const baseUrl = (options.baseUrl ?? defaultBaseUrl).replace(/\/+$/, "")
    const url = `${baseUrl}/v1/messages`
    const wireOptions = { provider, defaultMaxTokens: options.defaultMaxTokens, thinkingBudgets: options.thinkingBudgets }
    return Provider.make({
      provider,
      auth: (key) => ({ "x-api-key": Redacted.value(key) }),
      framing: "sse",
      url: () => url,
      body: (request, model, stream) => toWireRequest(request, model, stream, wireOptions),
      decode: (request, model, body, status) => fromWireResponse(provider, model, request, body, status),
      parser: (request, model) => new EventParser(provider, model, request)
    }, { ...options, provider, headers: { "anthropic-version": options.version ?? defaultVersion, ...options.headers } })
  })

const providerLayers = Provider.layers(make)

/** @since 0.1.0 @category layers */
export const layer = providerLayers.layer

/**
 * Options read from config, e.g. `layerConfig({ model: Config.string("ANTHROPIC_MODEL") })`.
 * @since 0.1.0 @category layers
 */
export const layerConfig = providerLayers.layerConfig

/**
 * The model with its key pool read from `ANTHROPIC_API_KEY` (one key, or a comma-separated list).
 * @since 0.1.0 @category layers
 */
export const layerFromEnv = (options: Omit<Options, "provider">) =>
  Provider.withEnvKeys(layer({ ...options, provider: "anthropic" }), "anthropic", "ANTHROPIC_API_KEY")
