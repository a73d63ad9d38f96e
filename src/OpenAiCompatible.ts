/**
 * OpenAI Chat Completions (`/chat/completions`) and every endpoint that speaks it:
 * OpenAI, OpenRouter, DeepSeek, Groq, Together, vLLM, Ollama's `/v1`, Zhipu, DashScope's
 * compatible mode and Volcano Ark. The wire format, its mapping and the stream state
 * machine live here; HTTP, keys and limits come from `internal/http`.
 *
 * @since 0.1.0
 */
import type * as HttpClient from "@effect/platform/HttpClient"
import * as Config from "effect/Config"
import type { ConfigError } from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { decodeJsonBody, fromStreamErrorEvent, malformed, tryJson } from "./internal/request/errors.js"
import * as Provider from "./Provider.js"
import * as KeyPool from "./KeyPool.js"
import { LanguageModel } from "./LanguageModel.js"
import * as Err from "./LlmError.js"
import type * as Message from "./Message.js"
import type * as RateLimiter from "./RateLimiter.js"

// ---------------------------------------------------------------------------
// Options and presets
// ---------------------------------------------------------------------------

/** @since 0.1.0 @category models */
export interface Options extends Provider.CommonOptions {
  /** Defaults to `https://api.openai.com/v1`. */
  readonly baseUrl?: string | undefined
  /** The provider id used in errors, spans and usage. Default `openai`. */
  readonly provider?: string | undefined
  /**
   * Which field carries `maxTokens`. OpenAI now wants `max_completion_tokens` (reasoning
   * models reject `max_tokens`); most compatible servers only know `max_tokens`.
   */
  readonly maxTokensField?: "max_tokens" | "max_completion_tokens" | undefined
}

/** @since 0.1.0 @category presets */
export interface Preset {
  readonly provider: string
  readonly baseUrl: string
  /** The env var holding the key, or a comma-separated list of keys. */
  readonly envVar: string
  readonly maxTokensField: "max_tokens" | "max_completion_tokens"
  /** Local servers (vLLM, Ollama) usually need no key: an unset env var means a keyless pool. */
  readonly keyOptional?: boolean
}

/** @since 0.1.0 @category presets */
export const presets = {
  openai: { provider: "openai", baseUrl: "https://api.openai.com/v1", envVar: "OPENAI_API_KEY", maxTokensField: "max_completion_tokens" },
  openrouter: { provider: "openrouter", baseUrl: "https://openrouter.ai/api/v1", envVar: "OPENROUTER_API_KEY", maxTokensField: "max_tokens" },
  deepseek: { provider: "deepseek", baseUrl: "https://api.deepseek.com/v1", envVar: "DEEPSEEK_API_KEY", maxTokensField: "max_tokens" },
  groq: { provider: "groq", baseUrl: "https://api.groq.com/openai/v1", envVar: "GROQ_API_KEY", maxTokensField: "max_tokens" },
  together: { provider: "together", baseUrl: "https://api.together.xyz/v1", envVar: "TOGETHER_API_KEY", maxTokensField: "max_tokens" },
  vllm: { provider: "vllm", baseUrl: "http://localhost:8000/v1", envVar: "VLLM_API_KEY", maxTokensField: "max_tokens", keyOptional: true },
  ollama: {
    provider: "ollama",
    baseUrl: "http://localhost:11434/v1",
    envVar: "OLLAMA_API_KEY",
    maxTokensField: "max_tokens",
    keyOptional: true
  },
  zhipu: { provider: "zhipu", baseUrl: "https://open.bigmodel.cn/api/paas/v4", envVar: "ZHIPU_API_KEY", maxTokensField: "max_tokens" },
  dashscope: {
    provider: "dashscope",
    baseUrl: "https://dashscope.aliyuncs.com/compatible-mode/v1",
    envVar: "DASHSCOPE_API_KEY",
    maxTokensField: "max_tokens"
  },
  ark: { provider: "ark", baseUrl: "https://ark.cn-beijing.volces.com/api/v3", envVar: "ARK_API_KEY", maxTokensField: "max_tokens" }
} as const satisfies Record<string, Preset>

/** @since 0.1.0 @category presets */
export type PresetName = keyof typeof presets

// ---------------------------------------------------------------------------
// Wire format: requests
// ---------------------------------------------------------------------------

/** @since 0.1.0 @category wire */
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

/**
 * The Chat Completions request body for a unified request.
 * @since 0.1.0 @category wire
 */
export const toWireRequest = (
  request: Message.ChatRequest,
  model: string,
  stream: boolean,
  maxTokensField: "max_tokens" | "max_completion_tokens" = "max_tokens"
): Record<string, unknown> => {
  const body: Record<string, unknown> = { model, messages: request.messages.map(toWireMessage) }
  if (request.tools !== undefined && request.tools.length > 0) {
    body.tools = request.tools.map((tool) => {
      const fn: Record<string, unknown> = { name: tool.name, parameters: tool.parameters }
      if (tool.description !== undefined) fn.description = tool.description
      if (tool.strict !== undefined) fn.strict = tool.strict
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
      const jsonSchema: Record<string, unknown> = { name: format.name, schema: format.schema }
      if (format.description !== undefined) jsonSchema.description = format.description
      if (format.strict !== undefined) jsonSchema.strict = format.strict
      body.response_format = { type: "json_schema", json_schema: jsonSchema }
    } else {
      body.response_format = { type: format.type }
    }
  }
  if (request.temperature !== undefined) body.temperature = request.temperature
  if (request.topP !== undefined) body.top_p = request.topP
  if (request.maxTokens !== undefined) body[maxTokensField] = request.maxTokens
  if (request.stop !== undefined) body.stop = request.stop
  if (request.seed !== undefined) body.seed = request.seed
  if (request.presencePenalty !== undefined) body.presence_penalty = request.presencePenalty
  if (request.frequencyPenalty !== undefined) body.frequency_penalty = request.frequencyPenalty
  if (request.user !== undefined) body.user = request.user
  if (request.reasoningEffort !== undefined) body.reasoning_effort = request.reasoningEffort
  if (stream) {
    body.stream = true
    body.stream_options = { include_usage: true }
  }
  if (request.extra !== undefined) Object.assign(body, request.extra)
  return body
}

// ---------------------------------------------------------------------------
// Wire format: responses (decoded tolerantly: only what we use, unknown fields ignored)
// ---------------------------------------------------------------------------

const optionalNullable = <S extends Schema.Schema.Any>(schema: S) => Schema.optional(Schema.NullOr(schema))

/** @since 0.1.0 @category wire */
export const WireUsage = Schema.Struct({
  // optional: a usage object without counts means "no usage", not a broken response
  prompt_tokens: optionalNullable(Schema.Number),
  completion_tokens: optionalNullable(Schema.Number),
  total_tokens: optionalNullable(Schema.Number),
  prompt_tokens_details: optionalNullable(Schema.Struct({ cached_tokens: optionalNullable(Schema.Number) })),
  completion_tokens_details: optionalNullable(Schema.Struct({ reasoning_tokens: optionalNullable(Schema.Number) }))
})

/**
 * A tool call; `function` for function tools, `custom` for OpenAI's free-form custom tools.
 * Some compatible servers omit `id`.
 * @since 0.1.0 @category wire
 */
export const WireToolCall = Schema.Struct({
  id: optionalNullable(Schema.String),
  function: optionalNullable(Schema.Struct({ name: Schema.String, arguments: optionalNullable(Schema.Unknown) })),
  custom: optionalNullable(Schema.Struct({ name: Schema.String, input: optionalNullable(Schema.String) }))
})

/** @since 0.1.0 @category wire */
export const WireResponse = Schema.Struct({
  id: Schema.optional(Schema.String),
  model: Schema.optional(Schema.String),
  choices: Schema.NonEmptyArray(
    Schema.Struct({
      message: Schema.Struct({
        // a string, or (some compatible servers) an array of text parts
        content: optionalNullable(Schema.Unknown),
        reasoning_content: optionalNullable(Schema.String),
        reasoning: optionalNullable(Schema.String),
        refusal: optionalNullable(Schema.String),
        tool_calls: optionalNullable(Schema.Array(WireToolCall))
      }),
      finish_reason: optionalNullable(Schema.String)
    })
  ),
  usage: optionalNullable(WireUsage)
})

const decodeWireResponse = Schema.decodeUnknownEither(WireResponse)

/**
 * Maps a provider's finish reason to the unified set; unknown values become `"other"`.
 * @since 0.1.0 @category wire
 */
export const finishReasonOf = (reason: string | null | undefined, hasToolCalls: boolean): Message.FinishReason => {
  switch (reason) {
    case "stop":
      return hasToolCalls ? "tool_calls" : "stop"
    case "length":
      return "length"
    case "tool_calls":
    case "function_call":
      return "tool_calls"
    case "content_filter":
      return "content_filter"
    case null:
    case undefined:
      return hasToolCalls ? "tool_calls" : "stop"
    default:
      return "other"
  }
}

/** Usage as the provider reported it; undefined when it reported no token counts. */
const usageOf = (usage: typeof WireUsage.Type): Message.Usage | undefined => {
  const input = usage.prompt_tokens
  const output = usage.completion_tokens
  if (typeof input !== "number" || typeof output !== "number") return undefined
  const total = usage.total_tokens
  const result: {
    -readonly [K in keyof Message.Usage]: Message.Usage[K]
  } = {
    inputTokens: input,
    outputTokens: output,
    totalTokens: typeof total === "number" ? total : input + output,
    estimated: false
  }
  const reasoning = usage.completion_tokens_details?.reasoning_tokens
  if (typeof reasoning === "number") result.reasoningTokens = reasoning
  const cached = usage.prompt_tokens_details?.cached_tokens
  if (typeof cached === "number") result.cachedInputTokens = cached
  return result
}

/** The text of a message's `content`: a string, or the text of its parts. */
const contentTextOf = (content: unknown): string => {
  if (typeof content === "string") return content
  if (!Array.isArray(content)) return ""
  let text = ""
  for (const part of content) {
    if (typeof part === "object" && part !== null && typeof (part as { text?: unknown }).text === "string") {
      text += (part as { text: string }).text
    }
  }
  return text
}

/** Providers that omit a tool call's id still need one to pair the result with the call. */
const fallbackCallId = (index: number) => `call_${index}`

const toolCallOf = (call: typeof WireToolCall.Type, index: number): Message.ToolCall | undefined => {
  const id = typeof call.id === "string" && call.id.length > 0 ? call.id : fallbackCallId(index)
  if (call.function !== undefined && call.function !== null) {
    const args = call.function.arguments
    // some servers send arguments as an object rather than JSON text
    const text = typeof args === "string" ? args : args === undefined || args === null ? "" : JSON.stringify(args)
    return { id, name: call.function.name, arguments: text }
  }
  if (call.custom !== undefined && call.custom !== null) return { id, name: call.custom.name, arguments: call.custom.input ?? "" }
  return undefined
}

/**
 * Usage counted by the library when the provider reported none (≈4 characters a token).
 * @since 0.1.0 @category wire
 */
export const estimatedUsage = (requestText: number, outputText: number): Message.Usage => {
  const inputTokens = Math.ceil(requestText / 4)
  const outputTokens = Math.ceil(outputText / 4)
  return { inputTokens, outputTokens, totalTokens: inputTokens + outputTokens, estimated: true }
}

const requestChars = (request: Message.ChatRequest): number => {
  let n = 0
  for (const message of request.messages) {
    if (typeof message.content === "string") n += message.content.length
    else for (const part of message.content) n += part.type === "text" ? part.text.length : 0
  }
  return n
}

const outputChars = (text: string, reasoning: string | undefined, calls: ReadonlyArray<Message.ToolCall>): number => {
  let n = text.length + (reasoning?.length ?? 0)
  for (const call of calls) n += call.name.length + call.arguments.length
  return n
}

/**
 * Decodes a non-streaming Chat Completions body into a `ChatResponse`.
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
  const choice = wire.choices[0]
  const message = choice.message
  const text = contentTextOf(message.content)
  if (choice.finish_reason === "content_filter" && text.length === 0) {
    return new Err.ContentFilterError({ provider, model, message: `${provider}: the reply was withheld by a content filter`, status })
  }
  const toolCalls: Array<Message.ToolCall> = []
  for (const call of message.tool_calls ?? []) {
    const mapped = toolCallOf(call, toolCalls.length)
    if (mapped !== undefined) toolCalls.push(mapped)
  }
  const reasoningText = message.reasoning_content ?? message.reasoning ?? undefined
  const reasoning = reasoningText === undefined || reasoningText.length === 0 ? undefined : reasoningText
  const response: Message.ChatResponse = {
    id: wire.id ?? "",
    model: wire.model ?? model,
    provider,
    text,
    toolCalls,
    finishReason: finishReasonOf(choice.finish_reason, toolCalls.length > 0),
    usage: (wire.usage ? usageOf(wire.usage) : undefined) ??
      estimatedUsage(requestChars(request), outputChars(text, reasoning, toolCalls))
  }
  return reasoning === undefined ? response : { ...response, reasoning }
}

// ---------------------------------------------------------------------------
// Wire format: stream chunks (a light, tolerant parse: no Schema per chunk)
// ---------------------------------------------------------------------------

interface PendingCall {
  id: string
  name: string
  arguments: string
}

/**
 * The stream state machine: assembles text, reasoning and tool calls (per `index`, in
 * parallel), remembers finish reason and usage, and emits `ToolCall` events once complete.
 * @since 0.1.0 @category wire
 */
export class ChunkParser implements Provider.StreamParser {
  emittedText = ""
  settledTokens: number | undefined = undefined
  private reasoning = ""
  private id = ""
  private model: string
  private finishReason: string | null | undefined = undefined
  private usage: Message.Usage | undefined = undefined
  private readonly calls: Array<PendingCall | undefined> = []
  private callsEmitted = false
  private done = false
  private finished = false

  constructor(
    private readonly provider: string,
    model: string,
    private readonly request: Message.ChatRequest
  ) {
    this.model = model
  }

  onData(data: string, event: string | undefined, out: Array<Message.StreamEvent>): Err.LlmError | undefined {
    if (this.done) return undefined
    if (data === "[DONE]") {
      this.done = true
      return this.finish(out)
    }
    const json = tryJson(data)
    if (event === "error") {
      // the payload of an error event may be plain text
      const payload = typeof json === "object" && json !== null ? json : { message: data }
      return fromStreamErrorEvent(this.provider, this.model, payload, this.emittedText, this.emittedText.length > 0)
    }
    if (typeof json !== "object" || json === null) {
      // keep-alive frames with empty data carry nothing
      if (data.trim().length === 0) return undefined
      return malformed(this.provider, this.model, data, "a stream event is not a JSON object")
    }
    const chunk = json as Record<string, unknown>
    if (chunk.error !== undefined && chunk.error !== null) {
      return fromStreamErrorEvent(this.provider, this.model, chunk, this.emittedText, this.emittedText.length > 0)
    }
    if (typeof chunk.id === "string" && this.id === "") this.id = chunk.id
    if (typeof chunk.model === "string") this.model = chunk.model
    if (typeof chunk.usage === "object" && chunk.usage !== null) {
      const usage = chunk.usage as typeof WireUsage.Type
      this.usage = usageOf(usage) ?? this.usage
    }
    const choices = chunk.choices
    if (!Array.isArray(choices) || choices.length === 0) return undefined
    const choice = choices[0] as { delta?: Record<string, unknown>; finish_reason?: string | null }
    const delta = choice.delta
    if (typeof delta === "object" && delta !== null) {
      const reasoning = delta.reasoning_content ?? delta.reasoning
      if (typeof reasoning === "string" && reasoning.length > 0) {
        this.reasoning += reasoning
        push(out, "ReasoningDelta", reasoning)
      }
      const content = delta.content
      if (typeof content === "string" && content.length > 0) {
        this.emittedText += content
        push(out, "TextDelta", content)
      }
      const toolCalls = delta.tool_calls
      if (Array.isArray(toolCalls)) {
        for (const raw of toolCalls as Array<{ index?: number; id?: string; function?: { name?: string; arguments?: string } }>) {
          const id = typeof raw.id === "string" && raw.id.length > 0 ? raw.id : undefined
          const index = typeof raw.index === "number" ? raw.index : this.indexWithoutIndex(id)
          let call = this.calls[index]
          if (call === undefined) {
            call = { id: "", name: "", arguments: "" }
            this.calls[index] = call
          }
          const name = typeof raw.function?.name === "string" && raw.function.name.length > 0 ? raw.function.name : undefined
          const args = typeof raw.function?.arguments === "string" ? raw.function.arguments : ""
          if (id !== undefined) call.id = id
          if (name !== undefined) call.name += name
          call.arguments += args
          const deltaEvent: { -readonly [K in keyof Message.ToolCallDelta]: Message.ToolCallDelta[K] } = {
            _tag: "ToolCallDelta",
            index,
            argumentsDelta: args
          }
          if (id !== undefined) deltaEvent.id = id
          if (name !== undefined) deltaEvent.name = name
          out.push(deltaEvent)
        }
      }
    }
    if (typeof choice.finish_reason === "string") {
      this.finishReason = choice.finish_reason
      this.emitCalls(out)
    }
    return undefined
  }

  onEnd(out: Array<Message.StreamEvent>): Err.LlmError | undefined {
    if (this.finished) return undefined
    if (this.finishReason === undefined && !this.done) {
      // neither a finish reason nor [DONE]: the stream was cut, not finished
      return new Err.StreamError({
        provider: this.provider,
        model: this.model,
        message: `${this.provider} stream ended before it finished`,
        partial: this.emittedText.length > 0 || this.calls.length > 0,
        partialText: this.emittedText
      })
    }
    return this.finish(out)
  }

  /**
   * Servers that omit `index` (some compatible ones) send one call at a time: a fragment
   * continues the last call, unless it brings a new id, which starts the next one.
   */
  private indexWithoutIndex(id: string | undefined): number {
    const last = this.calls.length - 1
    if (last < 0) return 0
    const current = this.calls[last]
    return id !== undefined && current !== undefined && current.id !== "" && current.id !== id ? last + 1 : last
  }

  private emitCalls(out: Array<Message.StreamEvent>): void {
    if (this.callsEmitted) return
    this.callsEmitted = true
    this.calls.forEach((call, index) => {
      if (call === undefined) return
      if (call.id === "") call.id = fallbackCallId(index)
      out.push({ _tag: "ToolCall", index, id: call.id, name: call.name, arguments: call.arguments })
    })
  }

  private finish(out: Array<Message.StreamEvent>): undefined {
    if (this.finished) return undefined
    this.finished = true
    this.emitCalls(out)
    const calls = this.calls.filter((c): c is PendingCall => c !== undefined)
    const reasoning = this.reasoning.length > 0 ? this.reasoning : undefined
    const usage = this.usage ??
      estimatedUsage(requestChars(this.request), outputChars(this.emittedText, reasoning, calls))
    this.settledTokens = usage.totalTokens
    out.push({
      _tag: "Finish",
      finishReason: finishReasonOf(this.finishReason, calls.length > 0),
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
    const provider = options.provider ?? "openai"
    const baseUrl = (options.baseUrl ?? presets.openai.baseUrl).replace(/\/+$/, "")
    const url = `${baseUrl}/chat/completions`
    const maxTokensField = options.maxTokensField ?? (provider === "openai" ? "max_completion_tokens" : "max_tokens")
    return Provider.make({
      provider,
      auth: (key) => ({ authorization: `Bearer ${Redacted.value(key)}` }),
      framing: "sse",
      url: () => url,
      body: (request, model, stream) => toWireRequest(request, model, stream, maxTokensField),
      decode: (request, model, body, status) => fromWireResponse(provider, model, request, body, status),
      parser: (request, model) => new ChunkParser(provider, model, request)
    }, { ...options, provider })
  })

const providerLayers = Provider.layers(make)

/**
 * @since 0.1.0 @category layers
 */
export const layer = providerLayers.layer

/**
 * Options read from config, e.g. `layerConfig({ model: Config.string("OPENAI_MODEL") })`.
 * @since 0.1.0 @category layers
 */
export const layerConfig = providerLayers.layerConfig

/**
 * A preset provider with its key pool built from the preset's env var (one key, or a
 * comma-separated list): `layerPreset("openrouter", { model: "openai/gpt-4o-mini" })`.
 * @since 0.1.0 @category layers
 */
export const layerPreset = (
  name: PresetName,
  options: Omit<Options, "provider">
): Layer.Layer<LanguageModel, ConfigError, HttpClient.HttpClient | RateLimiter.RateLimiter> => {
  const preset: Preset = presets[name]
  const keys = preset.keyOptional === true
    ? Config.redacted(preset.envVar).pipe(Config.withDefault(Redacted.make("")))
    : Config.redacted(preset.envVar)
  return layer({ baseUrl: preset.baseUrl, maxTokensField: preset.maxTokensField, ...options, provider: preset.provider }).pipe(
    Layer.provide(KeyPool.layerConfig({ providerId: preset.provider, keys }))
  )
}
