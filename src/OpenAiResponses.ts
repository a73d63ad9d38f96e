/**
 * OpenAI Responses (`/v1/responses`). The wire format, its mapping and the stream state
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
import { decodeJsonBody, errorInfo, fromResponse, fromStreamErrorEvent, jsonObjectFrame } from "./internal/request/errors.js"
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
  /** Defaults to `https://api.openai.com/v1`. */
  readonly baseUrl?: string | undefined
  /** The provider id used in errors, spans and usage. Default `openai`. */
  readonly provider?: string | undefined
  readonly headers?: Record<string, string> | undefined
  readonly contextWindow?: number | undefined
  /** Total time for one request, including the whole body of a stream. */
  readonly timeout?: Duration.DurationInput | undefined
  /**
   * Asks for reasoning summaries (`reasoning.summary`) when a request sets `reasoningEffort`;
   * without it OpenAI sends none, and `reasoning` stays empty.
   */
  readonly reasoningSummary?: "auto" | "concise" | "detailed" | undefined
}

/** @since 0.1.0 @category constants */
export const defaultBaseUrl = "https://api.openai.com/v1"

// ---------------------------------------------------------------------------
// Wire format: requests
// ---------------------------------------------------------------------------

/** @since 0.1.0 @category wire */
export type WireInputItem =
  | {
    readonly role: "user" | "assistant"
    readonly content:
      | string
      | ReadonlyArray<
        | { readonly type: "input_text"; readonly text: string }
        | { readonly type: "input_image"; readonly image_url: string; readonly detail: "auto" | "low" | "high" }
      >
  }
  | { readonly type: "function_call"; readonly call_id: string; readonly name: string; readonly arguments: string }
  | { readonly type: "function_call_output"; readonly call_id: string; readonly output: string }

const toInputItems = (message: Message.Message): Array<WireInputItem> => {
  switch (message.role) {
    case "system":
      return []
    case "user":
      return [{
        role: "user",
        content: typeof message.content === "string"
          ? message.content
          : message.content.map((part) =>
            part.type === "text"
              ? { type: "input_text" as const, text: part.text }
              : { type: "input_image" as const, image_url: part.url, detail: part.detail ?? "auto" }
          )
      }]
    case "assistant": {
      const items: Array<WireInputItem> = []
      if (message.content.length > 0) items.push({ role: "assistant", content: message.content })
      for (const call of message.toolCalls ?? []) {
        items.push({ type: "function_call", call_id: call.id, name: call.name, arguments: call.arguments })
      }
      return items
    }
    case "tool":
      return [{ type: "function_call_output", call_id: message.toolCallId, output: message.content }]
  }
}

/**
 * The Responses request body for a unified request: system prompts become `instructions`,
 * tool calls and results become `function_call` and `function_call_output` items, and
 * `reasoningEffort` becomes `reasoning: { effort }`. Chat Completions parameters that the
 * Responses API lacks (`stop`, `seed`, penalties) are left out; `extra` can still set anything.
 * @since 0.1.0 @category wire
 */
export const toWireRequest = (
  request: Message.ChatRequest,
  model: string,
  stream: boolean,
  options: { readonly reasoningSummary?: Options["reasoningSummary"] } = {}
): Record<string, unknown> => {
  const instructions: Array<string> = []
  const input: Array<WireInputItem> = []
  for (const message of request.messages) {
    if (message.role === "system") instructions.push(message.content)
    else input.push(...toInputItems(message))
  }
  const body: Record<string, unknown> = { model, input }
  if (instructions.length > 0) body.instructions = instructions.join("\n\n")
  if (request.tools !== undefined && request.tools.length > 0) {
    body.tools = request.tools.map((tool) => {
      // Responses makes functions strict unless told otherwise; most schemas are not written for that
      const wire: Record<string, unknown> = { type: "function", name: tool.name, parameters: tool.parameters, strict: tool.strict ?? false }
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
      const wire: Record<string, unknown> = { type: "json_schema", name: format.name, schema: format.schema }
      if (format.description !== undefined) wire.description = format.description
      if (format.strict !== undefined) wire.strict = format.strict
      body.text = { format: wire }
    } else {
      body.text = { format: { type: format.type } }
    }
  }
  if (request.temperature !== undefined) body.temperature = request.temperature
  if (request.topP !== undefined) body.top_p = request.topP
  if (request.maxTokens !== undefined) body.max_output_tokens = request.maxTokens
  if (request.user !== undefined) body.safety_identifier = request.user
  if (request.reasoningEffort !== undefined) {
    body.reasoning = options.reasoningSummary === undefined
      ? { effort: request.reasoningEffort }
      : { effort: request.reasoningEffort, summary: options.reasoningSummary }
  }
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
  input_tokens: Schema.Number,
  output_tokens: Schema.Number,
  total_tokens: Schema.optional(Schema.Number),
  input_tokens_details: optionalNullable(Schema.Struct({ cached_tokens: optionalNullable(Schema.Number) })),
  output_tokens_details: optionalNullable(Schema.Struct({ reasoning_tokens: optionalNullable(Schema.Number) }))
})
/** @since 0.1.0 @category wire */
export type WireUsage = typeof WireUsage.Type

/** Content of message and reasoning items; `type` stays an open string. */
const WirePart = Schema.Struct({
  type: Schema.String,
  text: Schema.optional(Schema.String),
  refusal: Schema.optional(Schema.String)
})

/** An output item; every item kind shares this loose shape, new kinds are skipped. */
const WireItem = Schema.Struct({
  type: Schema.String,
  content: optionalNullable(Schema.Array(WirePart)),
  summary: optionalNullable(Schema.Array(WirePart)),
  call_id: Schema.optional(Schema.String),
  name: Schema.optional(Schema.String),
  arguments: Schema.optional(Schema.String),
  input: Schema.optional(Schema.String)
})

/** @since 0.1.0 @category wire */
export const WireResponse = Schema.Struct({
  id: Schema.optional(Schema.String),
  model: Schema.optional(Schema.String),
  status: optionalNullable(Schema.String),
  output: Schema.Array(WireItem),
  incomplete_details: optionalNullable(Schema.Struct({ reason: optionalNullable(Schema.String) })),
  error: optionalNullable(Schema.Struct({ code: optionalNullable(Schema.String), message: optionalNullable(Schema.String) })),
  usage: optionalNullable(WireUsage)
})

const decodeWireResponse = Schema.decodeUnknownEither(WireResponse)

/**
 * The unified finish reason from a response's `status` and `incomplete_details.reason`.
 * @since 0.1.0 @category wire
 */
export const finishReasonOf = (
  status: string | null | undefined,
  incompleteReason: string | null | undefined,
  hasToolCalls: boolean
): Message.FinishReason => {
  switch (status) {
    case "completed":
    case null:
    case undefined:
      return hasToolCalls ? "tool_calls" : "stop"
    case "incomplete":
      return incompleteReason === "max_output_tokens" ? "length" : incompleteReason === "content_filter" ? "content_filter" : "other"
    case "failed":
      return "error"
    default:
      return "other"
  }
}

/** @since 0.1.0 @category wire */
export const usageOf = (usage: WireUsage): Message.Usage => {
  const result: { -readonly [K in keyof Message.Usage]: Message.Usage[K] } = {
    inputTokens: usage.input_tokens,
    outputTokens: usage.output_tokens,
    totalTokens: usage.total_tokens ?? usage.input_tokens + usage.output_tokens,
    estimated: false
  }
  const reasoning = usage.output_tokens_details?.reasoning_tokens
  if (reasoning !== undefined && reasoning !== null) result.reasoningTokens = reasoning
  const cached = usage.input_tokens_details?.cached_tokens
  if (cached !== undefined && cached !== null) result.cachedInputTokens = cached
  return result
}

const isUsage = (u: unknown): u is WireUsage =>
  typeof u === "object" && u !== null &&
  typeof (u as WireUsage).input_tokens === "number" && typeof (u as WireUsage).output_tokens === "number"

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

/** The text of a message item: its `output_text` parts, and a refusal, in order. */
const messageText = (parts: ReadonlyArray<{ readonly type: string; readonly text?: string | undefined; readonly refusal?: string | undefined }>): string => {
  let text = ""
  for (const part of parts) {
    if (part.type === "output_text" && part.text !== undefined) text += part.text
    else if (part.type === "refusal" && part.refusal !== undefined) text += part.refusal
  }
  return text
}

/** Reasoning sections (summary parts, or raw reasoning text) are separated by a blank line. */
const reasoningSeparator = "\n\n"

/** A failed response's error, through the same mapping as an HTTP error body. */
const failedError = (provider: string, model: string, error: unknown): Err.LlmError =>
  fromResponse({ provider, model, status: 500, headers: {}, body: JSON.stringify({ error: error ?? {} }), now: 0 })

/**
 * Decodes a non-streaming Responses body into a `ChatResponse`. Text is every message
 * item's `output_text` joined, as the OpenAI SDK's `output_text` joins it; function and
 * custom tool calls become tool calls (a custom tool's free-form `input` is its arguments).
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
  if (wire.status === "failed") return failedError(provider, wire.model ?? model, wire.error)
  let text = ""
  const reasoningParts: Array<string> = []
  const toolCalls: Array<Message.ToolCall> = []
  for (const item of wire.output) {
    switch (item.type) {
      case "message":
        text += messageText(item.content ?? [])
        break
      case "reasoning": {
        const summary = (item.summary ?? []).filter((p) => p.text !== undefined && p.text.length > 0)
        const parts = summary.length > 0 ? summary : (item.content ?? []).filter((p) => p.type === "reasoning_text")
        for (const part of parts) if (part.text !== undefined && part.text.length > 0) reasoningParts.push(part.text)
        break
      }
      case "function_call":
        if (item.call_id !== undefined && item.name !== undefined) {
          toolCalls.push({ id: item.call_id, name: item.name, arguments: item.arguments ?? "" })
        }
        break
      case "custom_tool_call":
        if (item.call_id !== undefined && item.name !== undefined) {
          toolCalls.push({ id: item.call_id, name: item.name, arguments: item.input ?? "" })
        }
        break
    }
  }
  const reasoning = reasoningParts.length > 0 ? reasoningParts.join(reasoningSeparator) : undefined
  const finishReason = finishReasonOf(wire.status, wire.incomplete_details?.reason, toolCalls.length > 0)
  if (finishReason === "content_filter" && text.length === 0) {
    return new Err.ContentFilterError({ provider, model, message: `${provider}: the reply was withheld by a content filter`, status })
  }
  const response: Message.ChatResponse = {
    id: wire.id ?? "",
    model: wire.model ?? model,
    provider,
    text,
    toolCalls,
    finishReason,
    usage: wire.usage ? usageOf(wire.usage) : estimatedUsage(requestChars(request), outputChars(text, reasoning, toolCalls))
  }
  return reasoning === undefined ? response : { ...response, reasoning }
}

// ---------------------------------------------------------------------------
// Wire format: stream events (a light, tolerant parse: no Schema per event)
// ---------------------------------------------------------------------------

interface PendingCall {
  readonly index: number
  readonly id: string
  readonly name: string
  arguments: string
  emitted: boolean
}

type Payload = Record<string, unknown>

const str = (u: unknown): string | undefined => (typeof u === "string" ? u : undefined)

/**
 * The stream state machine over Responses events. Text, reasoning summaries and function
 * arguments stream as deltas keyed by `output_index`; each `*.done` / `output_item.done`
 * carries the final value, and any part of it the deltas missed is emitted then, so the
 * assembled stream always equals the final response. `response.completed` (or
 * `.incomplete`) ends the stream with usage; `response.failed` and `error` fail it.
 * @since 0.1.0 @category wire
 */
export class EventParser implements Provider.StreamParser {
  emittedText = ""
  settledTokens: number | undefined = undefined
  private reasoning = ""
  private reasoningKey: string | undefined = undefined
  private id = ""
  private model: string
  /** Text streamed so far per message item (`output_index`). */
  private readonly itemText = new Map<number, string>()
  private readonly calls = new Map<number, PendingCall>()
  private callCount = 0
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
    if (data === "[DONE]") return undefined
    const frame = jsonObjectFrame(this.provider, this.model, data, "a stream event")
    if (frame instanceof Err.MalformedResponseError) return frame
    const payload = frame as Payload
    const outputIndex = typeof payload.output_index === "number" ? payload.output_index : 0
    switch (str(payload.type) ?? event) {
      case "response.created":
      case "response.in_progress":
        this.meta(payload.response)
        return undefined
      case "response.output_text.delta":
      case "response.refusal.delta": {
        const delta = str(payload.delta)
        if (delta !== undefined && delta.length > 0) {
          this.itemText.set(outputIndex, (this.itemText.get(outputIndex) ?? "") + delta)
          this.text(delta, out)
        }
        return undefined
      }
      case "response.reasoning_summary_text.delta":
      case "response.reasoning_text.delta": {
        const delta = str(payload.delta)
        if (delta === undefined || delta.length === 0) return undefined
        const section = `${outputIndex}:${typeof payload.summary_index === "number" ? payload.summary_index : payload.content_index ?? 0}`
        const text = this.reasoningKey !== undefined && this.reasoningKey !== section ? reasoningSeparator + delta : delta
        this.reasoningKey = section
        this.reasoning += text
        push(out, "ReasoningDelta", text)
        return undefined
      }
      case "response.output_item.added":
        this.startItem(outputIndex, payload.item, out)
        return undefined
      case "response.function_call_arguments.delta":
      case "response.custom_tool_call_input.delta": {
        const call = this.calls.get(outputIndex)
        const delta = str(payload.delta)
        if (call === undefined || delta === undefined || delta.length === 0) return undefined
        call.arguments += delta
        out.push({ _tag: "ToolCallDelta", index: call.index, argumentsDelta: delta })
        return undefined
      }
      case "response.function_call_arguments.done": {
        const call = this.calls.get(outputIndex)
        if (call !== undefined) this.reconcileArguments(call, str(payload.arguments), out)
        return undefined
      }
      case "response.output_item.done":
        this.finishItem(outputIndex, payload.item, out)
        return undefined
      case "response.completed":
      case "response.incomplete":
        return this.finish(payload.response, out)
      case "response.failed": {
        const response = (payload.response ?? {}) as Payload
        return this.streamError({ error: response.error ?? { message: "the response failed" } })
      }
      case "error":
        // the API nests the error ({error:{…}}) or flattens it ({code, message}) depending on the path
        return this.streamError(typeof payload.error === "object" && payload.error !== null ? payload : { error: payload })
      default:
        // content_part, *.done echoes, annotations, hosted tools, and event types newer than this parser
        return undefined
    }
  }

  onEnd(out: Array<Message.StreamEvent>): Err.LlmError | undefined {
    if (this.finished) return undefined
    void out
    return new Err.StreamError({
      provider: this.provider,
      model: this.model,
      message: `${this.provider} stream ended before response.completed`,
      partial: this.emittedText.length > 0 || this.callCount > 0 || this.reasoning.length > 0,
      partialText: this.emittedText
    })
  }

  private meta(raw: unknown): void {
    if (typeof raw !== "object" || raw === null) return
    const response = raw as Payload
    if (typeof response.id === "string" && this.id === "") this.id = response.id
    if (typeof response.model === "string") this.model = response.model
  }

  private streamError(payload: Payload): Err.LlmError {
    const info = errorInfo(payload)
    // errorInfo reads `type` first; the Responses error's meaning is in its `code`
    const kind = info.code ?? info.type
    const normalized = { error: { message: info.message, type: kind } }
    return fromStreamErrorEvent(this.provider, this.model, normalized, this.emittedText, this.emittedText.length > 0)
  }

  private startItem(outputIndex: number, raw: unknown, out: Array<Message.StreamEvent>): void {
    if (typeof raw !== "object" || raw === null) return
    const item = raw as Payload
    if (item.type !== "function_call" && item.type !== "custom_tool_call") return
    const id = str(item.call_id) ?? str(item.id) ?? ""
    const name = str(item.name) ?? ""
    const initial = str(item.type === "function_call" ? item.arguments : item.input) ?? ""
    const call: PendingCall = { index: this.callCount++, id, name, arguments: initial, emitted: false }
    this.calls.set(outputIndex, call)
    out.push({ _tag: "ToolCallDelta", index: call.index, id, name, argumentsDelta: initial })
  }

  private reconcileArguments(call: PendingCall, final: string | undefined, out: Array<Message.StreamEvent>): void {
    if (final === undefined || final.length <= call.arguments.length || !final.startsWith(call.arguments)) return
    const rest = final.slice(call.arguments.length)
    call.arguments = final
    out.push({ _tag: "ToolCallDelta", index: call.index, argumentsDelta: rest })
  }

  private finishItem(outputIndex: number, raw: unknown, out: Array<Message.StreamEvent>): void {
    if (typeof raw !== "object" || raw === null) return
    const item = raw as Payload
    if (item.type === "message" && Array.isArray(item.content)) {
      const final = messageText(item.content as Array<{ type: string; text?: string; refusal?: string }>)
      const streamed = this.itemText.get(outputIndex) ?? ""
      if (final.length > streamed.length && final.startsWith(streamed)) {
        this.itemText.set(outputIndex, final)
        this.text(final.slice(streamed.length), out)
      }
      return
    }
    const call = this.calls.get(outputIndex)
    if (call === undefined) return
    this.reconcileArguments(call, str(item.type === "custom_tool_call" ? item.input : item.arguments), out)
    this.emitCall(call, out)
  }

  private emitCall(call: PendingCall, out: Array<Message.StreamEvent>): void {
    if (call.emitted) return
    call.emitted = true
    out.push({ _tag: "ToolCall", index: call.index, id: call.id, name: call.name, arguments: call.arguments })
  }

  private text(text: string, out: Array<Message.StreamEvent>): void {
    this.emittedText += text
    push(out, "TextDelta", text)
  }

  private finish(raw: unknown, out: Array<Message.StreamEvent>): Err.LlmError | undefined {
    this.finished = true
    this.meta(raw)
    const response = (typeof raw === "object" && raw !== null ? raw : {}) as Payload
    const calls: Array<Message.ToolCall> = []
    for (const call of this.calls.values()) {
      this.emitCall(call, out)
      calls.push(call)
    }
    const incomplete = response.incomplete_details as { reason?: unknown } | null | undefined
    const finishReason = finishReasonOf(str(response.status), str(incomplete?.reason), calls.length > 0)
    if (finishReason === "content_filter" && this.emittedText.length === 0) {
      return new Err.ContentFilterError({
        provider: this.provider,
        model: this.model,
        message: `${this.provider}: the reply was withheld by a content filter`
      })
    }
    const reasoning = this.reasoning.length > 0 ? this.reasoning : undefined
    const usage = isUsage(response.usage)
      ? usageOf(response.usage)
      : estimatedUsage(requestChars(this.request), outputChars(this.emittedText, reasoning, calls))
    this.settledTokens = usage.totalTokens
    out.push({ _tag: "Finish", finishReason, usage, id: this.id, model: this.model, provider: this.provider })
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
    const baseUrl = (options.baseUrl ?? defaultBaseUrl).replace(/\/+$/, "")
    const url = `${baseUrl}/responses`
    const wireOptions = { reasoningSummary: options.reasoningSummary }
    return Provider.make({
      provider,
      auth: (key) => ({ authorization: `Bearer ${Redacted.value(key)}` }),
      framing: "sse",
      url: () => url,
      body: (request, model, stream) => toWireRequest(request, model, stream, wireOptions),
      decode: (request, model, body, status) => fromWireResponse(provider, model, request, body, status),
      parser: (request, model) => new EventParser(provider, model, request)
    }, { ...options, provider })
  })

const providerLayers = Provider.layers(make)

/** @since 0.1.0 @category layers */
export const layer = providerLayers.layer

/**
 * Options read from config, e.g. `layerConfig({ model: Config.string("OPENAI_MODEL") })`.
 * @since 0.1.0 @category layers
 */
export const layerConfig = providerLayers.layerConfig

/**
 * The model with its key pool read from `OPENAI_API_KEY` (one key, or a comma-separated list).
 * @since 0.1.0 @category layers
 */
export const layerFromEnv = (options: Omit<Options, "provider">) =>
  Provider.withEnvKeys(layer({ ...options, provider: "openai" }), "openai", "OPENAI_API_KEY")
