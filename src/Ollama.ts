/**
 * Ollama's native API: `/api/chat` (JSON, and NDJSON streaming) and `/api/embed` for
 * `Embeddings`. A local Ollama needs no key: provide `KeyPool.layerKeyless("ollama")`.
 * A key, when the pool has one (Ollama behind a proxy, or ollama.com), is sent as a
 * bearer token.
 *
 * @since 0.1.0
 */
import type * as HttpClient from "@effect/platform/HttpClient"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { decodeJsonBody, fromStreamErrorEvent, jsonObjectFrame } from "./internal/request/errors.js"
import * as Provider from "./Provider.js"
import { resolveEndpoint } from "./internal/request/endpoint.js"
import { endpointOptions } from "./internal/request/model.js"
import { argumentsObject, parseDataUrl, toolNameFor } from "./internal/toolCalls.js"
import type * as KeyPool from "./KeyPool.js"
import { LanguageModel } from "./LanguageModel.js"
import * as Err from "./LlmError.js"
import type * as Message from "./Message.js"
import type * as RateLimiter from "./RateLimiter.js"

// ---------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------

/** @since 0.1.0 @category models */
export interface Options extends Provider.CommonOptions {
  readonly model: string
  /** Defaults to `http://localhost:11434`. */
  readonly baseUrl?: string | undefined
  /** The provider id used in errors, spans and usage. Default `ollama`. */
  readonly provider?: string | undefined
  readonly headers?: Record<string, string> | undefined
  readonly contextWindow?: number | undefined
  /** Total time for one request, including the whole body of a stream. */
  readonly timeout?: Duration.DurationInput | undefined
  /** How long Ollama keeps the model loaded after a call, e.g. `"10m"`; Ollama's default when absent. */
  readonly keepAlive?: string | undefined
}

/** @since 0.1.0 @category constants */
export const defaultBaseUrl = "http://localhost:11434"

// ---------------------------------------------------------------------------
// Wire format: requests
// ---------------------------------------------------------------------------

/** @since 0.1.0 @category wire */
export interface WireMessage {
  readonly role: "system" | "user" | "assistant" | "tool"
  readonly content: string
  readonly images?: ReadonlyArray<string>
  readonly thinking?: string
  readonly tool_calls?: ReadonlyArray<{ readonly function: { readonly name: string; readonly arguments: Record<string, unknown> } }>
  readonly tool_name?: string
}

class BadInput {
  constructor(readonly where: string, readonly why: string) {}
}

const toWireMessages = (messages: ReadonlyArray<Message.Message>): Array<WireMessage> =>
  messages.map((message, i): WireMessage => {
    switch (message.role) {
      case "system":
        return { role: "system", content: message.content }
      case "user": {
        if (typeof message.content === "string") return { role: "user", content: message.content }
        let content = ""
        const images: Array<string> = []
        message.content.forEach((part, j) => {
          if (part.type === "text") {
            content += part.text
            return
          }
          const data = parseDataUrl(part.url)
          // Ollama takes base64 images only; it does not fetch URLs
          if (data === undefined) throw new BadInput(`messages[${i}].content[${j}].url`, "Ollama takes images as data: URLs only")
          images.push(data.data)
        })
        return images.length === 0 ? { role: "user", content } : { role: "user", content, images }
      }
      case "assistant": {
        const calls = message.toolCalls?.map((call, j) => {
          const args = argumentsObject(call.arguments)
          if (args === undefined) throw new BadInput(`messages[${i}].toolCalls[${j}].arguments`, "arguments are not a JSON object")
          return { function: { name: call.name, arguments: args } }
        })
        return calls === undefined || calls.length === 0
          ? { role: "assistant", content: message.content }
          : { role: "assistant", content: message.content, tool_calls: calls }
      }
      case "tool": {
        const name = toolNameFor(messages, i)
        return name === undefined ? { role: "tool", content: message.content } : { role: "tool", content: message.content, tool_name: name }
      }
    }
  })

/**
 * The `/api/chat` request body for a unified request, or an `InvalidRequestError` that
 * names the field Ollama cannot take.
 * @since 0.1.0 @category wire
 */
export const toWireRequest = (
  request: Message.ChatRequest,
  model: string,
  stream: boolean,
  options?: { readonly provider?: string | undefined; readonly keepAlive?: string | undefined }
): Record<string, unknown> | Err.InvalidRequestError => {
  const provider = options?.provider ?? "ollama"
  try {
    const body: Record<string, unknown> = { model, messages: toWireMessages(request.messages), stream }
    if (request.tools !== undefined && request.tools.length > 0) {
      body.tools = request.tools.map((tool) => {
        const fn: Record<string, unknown> = { name: tool.name, parameters: tool.parameters }
        if (tool.description !== undefined) fn.description = tool.description
        return { type: "function", function: fn }
      })
    }
    if (request.reasoningEffort !== undefined) {
      body.think = request.reasoningEffort === "none"
        ? false
        : request.reasoningEffort === "minimal" ? "low" : request.reasoningEffort
    }
    if (request.responseFormat !== undefined && request.responseFormat.type !== "text") {
      body.format = request.responseFormat.type === "json_schema" ? request.responseFormat.schema : "json"
    }
    const modelOptions: Record<string, unknown> = {}
    if (request.temperature !== undefined) modelOptions.temperature = request.temperature
    if (request.topP !== undefined) modelOptions.top_p = request.topP
    if (request.maxTokens !== undefined) modelOptions.num_predict = request.maxTokens
    if (request.stop !== undefined) modelOptions.stop = request.stop
    if (request.seed !== undefined) modelOptions.seed = request.seed
    if (request.presencePenalty !== undefined) modelOptions.presence_penalty = request.presencePenalty
    if (request.frequencyPenalty !== undefined) modelOptions.frequency_penalty = request.frequencyPenalty
    if (Object.keys(modelOptions).length > 0) body.options = modelOptions
    if (options?.keepAlive !== undefined) body.keep_alive = options.keepAlive
    if (request.extra !== undefined) Object.assign(body, request.extra)
    return body
  } catch (e) {
    if (e instanceof BadInput) {
      return new Err.InvalidRequestError({ provider, model, message: `${provider}: ${e.where}: ${e.why}` })
    }
    throw e
  }
}

// ---------------------------------------------------------------------------
// Wire format: responses (decoded tolerantly: only what we use, unknown fields ignored)
// ---------------------------------------------------------------------------

const WireToolCall = Schema.Struct({
  id: Schema.optional(Schema.String),
  function: Schema.Struct({ name: Schema.String, arguments: Schema.optional(Schema.Unknown) })
})

/** @since 0.1.0 @category wire */
export const WireResponse = Schema.Struct({
  model: Schema.optional(Schema.String),
  created_at: Schema.optional(Schema.String),
  message: Schema.Struct({
    content: Schema.optional(Schema.String),
    thinking: Schema.optional(Schema.String),
    tool_calls: Schema.optional(Schema.NullOr(Schema.Array(WireToolCall)))
  }),
  done_reason: Schema.optional(Schema.String),
  prompt_eval_count: Schema.optional(Schema.Number),
  eval_count: Schema.optional(Schema.Number)
})

const decodeWireResponse = Schema.decodeUnknownEither(WireResponse)

/**
 * Maps Ollama's `done_reason` to the unified set; unknown values become `"other"`.
 * @since 0.1.0 @category wire
 */
export const finishReasonOf = (reason: string | undefined, hasToolCalls: boolean): Message.FinishReason => {
  if (reason === undefined || reason === "stop") return hasToolCalls ? "tool_calls" : "stop"
  if (reason === "length") return "length"
  return "other"
}

/** Arguments arrive as an object; some servers send them as JSON text. */
const argumentsText = (args: unknown): string =>
  typeof args === "string" ? args : JSON.stringify(args ?? {})

/**
 * Ollama sends no call ids (newer versions may): a synthetic id per call, the same for
 * `chat` and `stream` of one response.
 * @since 0.1.0 @category wire
 */
export const toolCallId = (index: number, wireId?: string): string =>
  wireId !== undefined && wireId.length > 0 ? wireId : `call_${index}`

const usageOf = (
  request: Message.ChatRequest,
  prompt: number | undefined,
  evalCount: number | undefined,
  outputChars: number
): Message.Usage => {
  if (prompt === undefined && evalCount === undefined) {
    let chars = 0
    for (const message of request.messages) {
      if (typeof message.content === "string") chars += message.content.length
      else for (const part of message.content) chars += part.type === "text" ? part.text.length : 0
    }
    const inputTokens = Math.ceil(chars / 4)
    const outputTokens = Math.ceil(outputChars / 4)
    return { inputTokens, outputTokens, totalTokens: inputTokens + outputTokens, estimated: true }
  }
  // a fully cached prompt comes back without prompt_eval_count
  const inputTokens = prompt ?? 0
  const outputTokens = evalCount ?? 0
  return { inputTokens, outputTokens, totalTokens: inputTokens + outputTokens, estimated: false }
}

/**
 * Decodes a non-streaming `/api/chat` body into a `ChatResponse`.
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
  const toolCalls: Array<Message.ToolCall> = (wire.message.tool_calls ?? []).map((call, i) => ({
    id: toolCallId(i, call.id),
    name: call.function.name,
    arguments: argumentsText(call.function.arguments)
  }))
  const text = wire.message.content ?? ""
  const reasoning = wire.message.thinking !== undefined && wire.message.thinking.length > 0 ? wire.message.thinking : undefined
  let outputChars = text.length + (reasoning?.length ?? 0)
  for (const call of toolCalls) outputChars += call.name.length + call.arguments.length
  const response: Message.ChatResponse = {
    id: wire.created_at ?? "",
    model: wire.model ?? model,
    provider,
    text,
    toolCalls,
    finishReason: finishReasonOf(wire.done_reason, toolCalls.length > 0),
    usage: usageOf(request, wire.prompt_eval_count, wire.eval_count, outputChars)
  }
  return reasoning === undefined ? response : { ...response, reasoning }
}

// ---------------------------------------------------------------------------
// Wire format: NDJSON stream lines (a light, tolerant parse: no Schema per line)
// ---------------------------------------------------------------------------

/**
 * The stream state machine over NDJSON lines: `message.content` and `message.thinking`
 * deltas, whole tool calls (Ollama sends each call complete), and the final `done: true`
 * line with `done_reason` and the eval counts. An `{"error": …}` line ends the stream
 * with a typed error; a stream without its `done` line was cut.
 * @since 0.1.0 @category wire
 */
export class ChunkParser implements Provider.StreamParser {
  emittedText = ""
  settledTokens: number | undefined = undefined
  private reasoning = ""
  private id = ""
  private model: string
  private readonly calls: Array<Message.ToolCall> = []
  private outputChars = 0
  private finished = false

  constructor(
    private readonly provider: string,
    model: string,
    private readonly request: Message.ChatRequest
  ) {
    this.model = model
  }

  onData(data: string, _event: string | undefined, out: Array<Message.StreamEvent>): Err.LlmError | undefined {
    if (this.finished) return undefined
    const frame = jsonObjectFrame(this.provider, this.model, data, "a stream line")
    if (frame instanceof Err.MalformedResponseError) return frame
    const line = frame
    if (line.error !== undefined && line.error !== null) {
      return fromStreamErrorEvent(this.provider, this.model, line, this.emittedText, this.emittedText.length > 0)
    }
    if (this.id === "" && typeof line.created_at === "string") this.id = line.created_at
    if (typeof line.model === "string") this.model = line.model
    const message = line.message as { content?: unknown; thinking?: unknown; tool_calls?: unknown } | undefined
    if (typeof message === "object" && message !== null) {
      if (typeof message.thinking === "string" && message.thinking.length > 0) {
        this.reasoning += message.thinking
        push(out, "ReasoningDelta", message.thinking)
      }
      if (typeof message.content === "string" && message.content.length > 0) {
        this.emittedText += message.content
        push(out, "TextDelta", message.content)
      }
      if (Array.isArray(message.tool_calls)) {
        for (const raw of message.tool_calls as Array<{ id?: unknown; function?: { name?: unknown; arguments?: unknown } }>) {
          const name = typeof raw.function?.name === "string" ? raw.function.name : undefined
          if (name === undefined) continue
          const index = this.calls.length
          const call = { id: toolCallId(index, typeof raw.id === "string" ? raw.id : undefined), name, arguments: argumentsText(raw.function?.arguments) }
          this.calls.push(call)
          this.outputChars += call.name.length + call.arguments.length
          out.push({ _tag: "ToolCallDelta", index, id: call.id, name, argumentsDelta: call.arguments })
          out.push({ _tag: "ToolCall", index, ...call })
        }
      }
    }
    if (line.done === true) {
      this.finished = true
      const usage = usageOf(
        this.request,
        typeof line.prompt_eval_count === "number" ? line.prompt_eval_count : undefined,
        typeof line.eval_count === "number" ? line.eval_count : undefined,
        this.outputChars + this.emittedText.length + this.reasoning.length
      )
      this.settledTokens = usage.totalTokens
      out.push({
        _tag: "Finish",
        finishReason: finishReasonOf(typeof line.done_reason === "string" ? line.done_reason : undefined, this.calls.length > 0),
        usage,
        id: this.id,
        model: this.model,
        provider: this.provider
      })
    }
    return undefined
  }

  onEnd(_out: Array<Message.StreamEvent>): Err.LlmError | undefined {
    if (this.finished) return undefined
    return new Err.StreamError({
      provider: this.provider,
      model: this.model,
      message: `${this.provider} stream ended before its done line`,
      partial: this.emittedText.length > 0 || this.calls.length > 0 || this.reasoning.length > 0,
      partialText: this.emittedText
    })
  }
}

const push = Provider.pushDelta

// ---------------------------------------------------------------------------
// Wire format: embeddings (`/api/embed`)
// ---------------------------------------------------------------------------

/**
 * The `/api/embed` request body.
 * @since 0.1.0 @category wire
 */
export const toEmbeddingsRequest = (
  model: string,
  texts: ReadonlyArray<string>,
  options?: { readonly dimensions?: number | undefined; readonly keepAlive?: string | undefined }
): Record<string, unknown> => {
  const body: Record<string, unknown> = { model, input: texts }
  if (options?.dimensions !== undefined) body.dimensions = options.dimensions
  if (options?.keepAlive !== undefined) body.keep_alive = options.keepAlive
  return body
}

/** @since 0.1.0 @category wire */
export const WireEmbeddingsResponse = Schema.Struct({
  embeddings: Schema.Array(Schema.Array(Schema.Number)),
  prompt_eval_count: Schema.optional(Schema.Number)
})

const decodeEmbeddings = Schema.decodeUnknownEither(WireEmbeddingsResponse)

/**
 * Decodes an `/api/embed` body: vectors in input order and the prompt tokens.
 * @since 0.1.0 @category wire
 */
export const fromEmbeddingsResponse = (
  provider: string,
  model: string,
  body: string,
  status = 200
): { readonly vectors: ReadonlyArray<ReadonlyArray<number>>; readonly inputTokens: number | undefined } | Err.LlmError => {
  const decoded = decodeJsonBody(decodeEmbeddings, provider, model, body, status)
  if (Either.isLeft(decoded)) return decoded.left
  return { vectors: decoded.right.embeddings, inputTokens: decoded.right.prompt_eval_count }
}

// ---------------------------------------------------------------------------
// Layers
// ---------------------------------------------------------------------------

/** A key, for an Ollama behind a proxy that wants one. @since 0.1.0 @category constructors */
export const auth = (key: Redacted.Redacted<string>): Record<string, string> => ({ authorization: `Bearer ${Redacted.value(key)}` })

/** @since 0.1.0 @category constructors */
export const endpointOf = (options: Omit<Provider.CommonOptions, "model">) =>
  resolveEndpoint({ provider: options.provider ?? "ollama", auth, ...endpointOptions(options) })

/** @since 0.1.0 @category constructors */
export const urlOf = (baseUrl: string | undefined, path: "/api/chat" | "/api/embed"): string =>
  `${(baseUrl ?? defaultBaseUrl).replace(/\/+$/, "")}${path}`

/** @since 0.1.0 @category constructors */
export const make = (
  options: Options
): Effect.Effect<LanguageModel["Type"], never, HttpClient.HttpClient | KeyPool.KeyPool | RateLimiter.RateLimiter> =>
  Effect.suspend(() => {
    const provider = options.provider ?? "ollama"
    const url = urlOf(options.baseUrl, "/api/chat")
    return Provider.make({
      provider,
      auth,
      framing: "ndjson",
      url: () => url,
      body: (request, model, stream) => toWireRequest(request, model, stream, { provider, keepAlive: options.keepAlive }),
      decode: (request, model, body, status) => fromWireResponse(provider, model, request, body, status),
      parser: (request, model) => new ChunkParser(provider, model, request)
    }, { ...options, provider })
  })

const providerLayers = Provider.layers(make)

/** @since 0.1.0 @category layers */
export const layer = providerLayers.layer

/**
 * Options read from config, e.g. `layerConfig({ model: Config.string("OLLAMA_MODEL") })`.
 * @since 0.1.0 @category layers
 */
export const layerConfig = providerLayers.layerConfig
