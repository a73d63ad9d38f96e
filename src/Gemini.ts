/**
 * Google Gemini (`generateContent`, `streamGenerateContent?alt=sse`, and
 * `batchEmbedContents` for `Embeddings`). The wire format, its mapping and the stream
 * state machine live here; HTTP, keys and limits come from `internal/http`.
 *
 * Gemini has no tool-call ids: calls get stable synthetic ids (`<responseId>-call-<n>`),
 * and tool results are paired by function name, taken from `ToolMessage.name` or from the
 * assistant's earlier call with the same id.
 *
 * @since 0.1.0
 */
import type * as HttpClient from "@effect/platform/HttpClient"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { decodeJsonBody, fromStreamErrorEvent, malformed, jsonObjectFrame } from "./internal/request/errors.js"
import * as Provider from "./Provider.js"
import { resolveEndpoint } from "./internal/request/endpoint.js"
import { endpointOptions } from "./internal/request/model.js"
import { argumentsObject, parseDataUrl, resultObject, toolNameFor } from "./internal/toolCalls.js"
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
  /** e.g. `gemini-2.5-flash`; `models/…` and `tunedModels/…` names are used as given. */
  readonly model: string
  /** Defaults to `https://generativelanguage.googleapis.com/v1beta`. */
  readonly baseUrl?: string | undefined
  /** The provider id used in errors, spans and usage. Default `gemini`. */
  readonly provider?: string | undefined
  readonly headers?: Record<string, string> | undefined
  readonly contextWindow?: number | undefined
  /** Total time for one request, including the whole body of a stream. */
  readonly timeout?: Duration.DurationInput | undefined
}

/** @since 0.1.0 @category constants */
export const defaultBaseUrl = "https://generativelanguage.googleapis.com/v1beta"

/**
 * The env var that conventionally holds Gemini keys (one, or a comma-separated list).
 * @since 0.1.0 @category constants
 */
export const envVar = "GEMINI_API_KEY"

// ---------------------------------------------------------------------------
// Wire format: requests
// ---------------------------------------------------------------------------

/** @since 0.1.0 @category wire */
export type WirePart =
  | { readonly text: string }
  | { readonly inlineData: { readonly mimeType: string; readonly data: string } }
  | { readonly fileData: { readonly mimeType?: string; readonly fileUri: string } }
  | { readonly functionCall: { readonly name: string; readonly args: Record<string, unknown> } }
  | { readonly functionResponse: { readonly name: string; readonly response: Record<string, unknown> } }

/** @since 0.1.0 @category wire */
export interface WireContent {
  readonly role: "user" | "model"
  readonly parts: Array<WirePart>
}

/** A request that cannot be expressed on the wire; `where` names the offending field. */
class BadInput {
  constructor(readonly where: string, readonly why: string) {}
}

/** `models/<name>` as the URL wants it. */
const modelPath = (model: string) => (model.startsWith("models/") || model.startsWith("tunedModels/") ? model : `models/${model}`)

const thinkingBudgets = { minimal: 128, low: 1024, medium: 8192, high: 24576 } as const

/** Gemini 3 takes a thinking level; earlier models take a token budget. */
const thinkingConfig = (model: string, effort: Message.ReasoningEffort): Record<string, unknown> => {
  if (effort === "none") return { thinkingBudget: 0 }
  if (/gemini-3/.test(model)) return { includeThoughts: true, thinkingLevel: effort === "minimal" || effort === "low" ? "low" : "high" }
  return { includeThoughts: true, thinkingBudget: thinkingBudgets[effort] }
}

const toContents = (messages: ReadonlyArray<Message.Message>): { contents: Array<WireContent>; system: Array<string> } => {
  const contents: Array<WireContent> = []
  const system: Array<string> = []
  const push = (role: WireContent["role"], part: WirePart, merge: boolean) => {
    const last = contents[contents.length - 1]
    if (merge && last !== undefined && last.role === role) last.parts.push(part)
    else contents.push({ role, parts: [part] })
  }
  messages.forEach((message, i) => {
    switch (message.role) {
      case "system":
        system.push(message.content)
        return
      case "user": {
        if (typeof message.content === "string") return push("user", { text: message.content }, false)
        const parts: Array<WirePart> = message.content.map((part, j): WirePart => {
          if (part.type === "text") return { text: part.text }
          const data = parseDataUrl(part.url)
          if (data !== undefined) return { inlineData: { mimeType: part.mediaType ?? data.mediaType, data: data.data } }
          if (!/^(https?|gs):\/\//.test(part.url)) {
            throw new BadInput(`messages[${i}].content[${j}].url`, "an image must be a data: URL or an http(s)/gs URL")
          }
          return { fileData: part.mediaType === undefined ? { fileUri: part.url } : { mimeType: part.mediaType, fileUri: part.url } }
        })
        contents.push({ role: "user", parts })
        return
      }
      case "assistant": {
        const parts: Array<WirePart> = []
        if (message.content.length > 0) parts.push({ text: message.content })
        message.toolCalls?.forEach((call, j) => {
          const args = argumentsObject(call.arguments)
          if (args === undefined) throw new BadInput(`messages[${i}].toolCalls[${j}].arguments`, "arguments are not a JSON object")
          parts.push({ functionCall: { name: call.name, args } })
        })
        if (parts.length > 0) contents.push({ role: "model", parts })
        return
      }
      case "tool": {
        const name = toolNameFor(messages, i)
        if (name === undefined) {
          throw new BadInput(
            `messages[${i}]`,
            `no function name for tool call id "${message.toolCallId}": set ToolMessage.name or keep the assistant turn that made the call`
          )
        }
        // parallel results go back in one turn, as Gemini pairs them with that turn's calls
        const previous = messages[i - 1]
        push("user", { functionResponse: { name, response: resultObject(message.content) } }, previous?.role === "tool")
        return
      }
    }
  })
  return { contents, system }
}

/**
 * The `generateContent` request body for a unified request, or an `InvalidRequestError`
 * that names the field Gemini cannot take.
 * @since 0.1.0 @category wire
 */
export const toWireRequest = (
  request: Message.ChatRequest,
  model: string,
  provider = "gemini"
): Record<string, unknown> | Err.InvalidRequestError => {
  try {
    const { contents, system } = toContents(request.messages)
    const body: Record<string, unknown> = { contents }
    if (system.length > 0) body.systemInstruction = { parts: system.map((text) => ({ text })) }
    if (request.tools !== undefined && request.tools.length > 0) {
      body.tools = [{
        functionDeclarations: request.tools.map((tool) => {
          const fn: Record<string, unknown> = { name: tool.name, parametersJsonSchema: tool.parameters }
          if (tool.description !== undefined) fn.description = tool.description
          return fn
        })
      }]
    }
    if (request.toolChoice !== undefined) {
      const choice = request.toolChoice
      body.toolConfig = {
        functionCallingConfig: typeof choice === "string"
          ? { mode: choice === "auto" ? "AUTO" : choice === "none" ? "NONE" : "ANY" }
          : { mode: "ANY", allowedFunctionNames: [choice.name] }
      }
    }
    const generation: Record<string, unknown> = {}
    if (request.temperature !== undefined) generation.temperature = request.temperature
    if (request.topP !== undefined) generation.topP = request.topP
    if (request.maxTokens !== undefined) generation.maxOutputTokens = request.maxTokens
    if (request.stop !== undefined) generation.stopSequences = request.stop
    if (request.seed !== undefined) generation.seed = request.seed
    if (request.presencePenalty !== undefined) generation.presencePenalty = request.presencePenalty
    if (request.frequencyPenalty !== undefined) generation.frequencyPenalty = request.frequencyPenalty
    if (request.reasoningEffort !== undefined) generation.thinkingConfig = thinkingConfig(model, request.reasoningEffort)
    if (request.responseFormat !== undefined && request.responseFormat.type !== "text") {
      generation.responseMimeType = "application/json"
      if (request.responseFormat.type === "json_schema") generation.responseJsonSchema = request.responseFormat.schema
    }
    if (Object.keys(generation).length > 0) body.generationConfig = generation
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

/** @since 0.1.0 @category wire */
export const WireUsage = Schema.Struct({
  promptTokenCount: Schema.optional(Schema.Number),
  candidatesTokenCount: Schema.optional(Schema.Number),
  totalTokenCount: Schema.optional(Schema.Number),
  thoughtsTokenCount: Schema.optional(Schema.Number),
  cachedContentTokenCount: Schema.optional(Schema.Number),
  toolUsePromptTokenCount: Schema.optional(Schema.Number)
})

const WireResponsePart = Schema.Struct({
  text: Schema.optional(Schema.String),
  thought: Schema.optional(Schema.Boolean),
  functionCall: Schema.optional(Schema.Struct({
    id: Schema.optional(Schema.String),
    name: Schema.String,
    args: Schema.optional(Schema.Unknown)
  }))
})

/** @since 0.1.0 @category wire */
export const WireResponse = Schema.Struct({
  candidates: Schema.optional(Schema.Array(Schema.Struct({
    content: Schema.optional(Schema.Struct({ parts: Schema.optional(Schema.Array(WireResponsePart)) })),
    finishReason: Schema.optional(Schema.String)
  }))),
  promptFeedback: Schema.optional(Schema.Struct({ blockReason: Schema.optional(Schema.String) })),
  usageMetadata: Schema.optional(WireUsage),
  modelVersion: Schema.optional(Schema.String),
  responseId: Schema.optional(Schema.String)
})

const decodeWireResponse = Schema.decodeUnknownEither(WireResponse)

const filtered = new Set(["SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT"])

/**
 * Maps Gemini's finish reason to the unified set; unknown values become `"other"`.
 * @since 0.1.0 @category wire
 */
export const finishReasonOf = (reason: string | undefined, hasToolCalls: boolean): Message.FinishReason => {
  if (reason === undefined || reason === "STOP") return hasToolCalls ? "tool_calls" : "stop"
  if (reason === "MAX_TOKENS") return "length"
  if (filtered.has(reason)) return "content_filter"
  if (reason === "MALFORMED_FUNCTION_CALL" || reason === "UNEXPECTED_TOOL_CALL") return "error"
  return "other"
}

/** @since 0.1.0 @category wire */
export const usageOf = (usage: typeof WireUsage.Type): Message.Usage => {
  const inputTokens = (usage.promptTokenCount ?? 0) + (usage.toolUsePromptTokenCount ?? 0)
  const outputTokens = (usage.candidatesTokenCount ?? 0) + (usage.thoughtsTokenCount ?? 0)
  const result: { -readonly [K in keyof Message.Usage]: Message.Usage[K] } = {
    inputTokens,
    outputTokens,
    totalTokens: usage.totalTokenCount ?? inputTokens + outputTokens,
    estimated: false
  }
  if (usage.thoughtsTokenCount !== undefined) result.reasoningTokens = usage.thoughtsTokenCount
  if (usage.cachedContentTokenCount !== undefined) result.cachedInputTokens = usage.cachedContentTokenCount
  return result
}

/**
 * The id of the `index`-th tool call of a response: Gemini's own when it sends one, else a
 * synthetic id that is the same for `chat` and `stream` of one response.
 * @since 0.1.0 @category wire
 */
export const toolCallId = (responseId: string, index: number, wireId?: string): string =>
  wireId !== undefined && wireId.length > 0 ? wireId : `${responseId.length > 0 ? responseId : "gemini"}-call-${index}`

const estimatedUsage = (request: Message.ChatRequest, output: number): Message.Usage => {
  let chars = 0
  for (const message of request.messages) {
    if (typeof message.content === "string") chars += message.content.length
    else for (const part of message.content) chars += part.type === "text" ? part.text.length : 0
  }
  const inputTokens = Math.ceil(chars / 4)
  const outputTokens = Math.ceil(output / 4)
  return { inputTokens, outputTokens, totalTokens: inputTokens + outputTokens, estimated: true }
}

/**
 * Decodes a `generateContent` body into a `ChatResponse`.
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
  const candidate = wire.candidates?.[0]
  const block = wire.promptFeedback?.blockReason
  if (candidate === undefined) {
    if (block !== undefined) {
      return new Err.ContentFilterError({ provider, model, message: `${provider}: the prompt was blocked (${block})`, status })
    }
    return malformed(provider, model, body, "no candidates", status)
  }
  const id = wire.responseId ?? ""
  let text = ""
  let reasoning = ""
  const toolCalls: Array<Message.ToolCall> = []
  for (const part of candidate.content?.parts ?? []) {
    if (part.functionCall !== undefined) {
      toolCalls.push({
        id: toolCallId(id, toolCalls.length, part.functionCall.id),
        name: part.functionCall.name,
        arguments: JSON.stringify(part.functionCall.args ?? {})
      })
    } else if (part.text !== undefined) {
      if (part.thought === true) reasoning += part.text
      else text += part.text
    }
  }
  const finishReason = finishReasonOf(candidate.finishReason, toolCalls.length > 0)
  if (finishReason === "content_filter" && text.length === 0 && toolCalls.length === 0) {
    return new Err.ContentFilterError({
      provider,
      model,
      message: `${provider}: the reply was withheld (${candidate.finishReason})`,
      status
    })
  }
  const response: Message.ChatResponse = {
    id,
    model: wire.modelVersion ?? model,
    provider,
    text,
    toolCalls,
    finishReason,
    usage: wire.usageMetadata?.promptTokenCount !== undefined
      ? usageOf(wire.usageMetadata)
      : estimatedUsage(request, text.length + reasoning.length)
  }
  return reasoning.length === 0 ? response : { ...response, reasoning }
}

// ---------------------------------------------------------------------------
// Wire format: stream chunks (a light, tolerant parse: no Schema per chunk)
// ---------------------------------------------------------------------------

type PathKey = string | number

/** Parses a partial argument's `jsonPath` (`$.a.b[0]['c d']`); undefined when unreadable. */
const parseJsonPath = (path: string): Array<PathKey> | undefined => {
  if (!path.startsWith("$")) return undefined
  const keys: Array<PathKey> = []
  const re = /\.([^.[\]]+)|\[(\d+)\]|\['((?:[^'\\]|\\.)*)'\]|\["((?:[^"\\]|\\.)*)"\]/gy
  re.lastIndex = 1
  let match: RegExpExecArray | null
  while (re.lastIndex < path.length && (match = re.exec(path)) !== null) {
    if (match[1] !== undefined) keys.push(match[1])
    else if (match[2] !== undefined) keys.push(Number(match[2]))
    else keys.push((match[3] ?? match[4])!)
  }
  return re.lastIndex === path.length || keys.length === 0 && path === "$" ? keys : undefined
}

interface PendingCall {
  readonly index: number
  readonly id: string
  name: string
  args: Record<string, unknown>
  /** The path whose string value continues in the next partial argument. */
  continuing: string | undefined
}

/**
 * The stream state machine: text and `thought` parts, whole function calls (Gemini API)
 * and calls whose arguments stream as `partialArgs` (Vertex, `willContinue`), usage from
 * the latest `usageMetadata`, and the finish reason. Gemini sends no end marker: a stream
 * that ends without a finish reason was cut.
 * @since 0.1.0 @category wire
 */
export class ChunkParser implements Provider.StreamParser {
  emittedText = ""
  settledTokens: number | undefined = undefined
  private reasoning = ""
  private id = ""
  private model: string
  private finishReason: string | undefined = undefined
  private usage: Message.Usage | undefined = undefined
  private readonly calls: Array<PendingCall> = []
  private open: PendingCall | undefined = undefined
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
    const frame = jsonObjectFrame(this.provider, this.model, data, "a stream event")
    if (frame instanceof Err.MalformedResponseError) return frame
    const chunk = frame
    if (chunk.error !== undefined && chunk.error !== null) {
      return fromStreamErrorEvent(this.provider, this.model, chunk, this.emittedText, this.emittedText.length > 0)
    }
    if (typeof chunk.responseId === "string" && this.id === "") this.id = chunk.responseId
    if (typeof chunk.modelVersion === "string") this.model = chunk.modelVersion
    const usage = chunk.usageMetadata as typeof WireUsage.Type | undefined
    if (typeof usage === "object" && usage !== null && typeof usage.promptTokenCount === "number") this.usage = usageOf(usage)
    const candidates = chunk.candidates
    if (!Array.isArray(candidates) || candidates.length === 0) {
      const feedback = chunk.promptFeedback as { blockReason?: unknown } | undefined
      if (typeof feedback?.blockReason === "string") this.finishReason = "SAFETY"
      return undefined
    }
    const candidate = candidates[0] as { content?: { parts?: unknown }; finishReason?: unknown }
    const parts = candidate.content?.parts
    if (Array.isArray(parts)) {
      for (const part of parts as Array<Record<string, unknown>>) {
        const call = part.functionCall
        if (typeof call === "object" && call !== null) {
          this.onFunctionCall(call as Record<string, unknown>, out)
        } else if (typeof part.text === "string" && part.text.length > 0) {
          if (part.thought === true) {
            this.reasoning += part.text
            push(out, "ReasoningDelta", part.text)
          } else {
            this.emittedText += part.text
            push(out, "TextDelta", part.text)
          }
        }
      }
    }
    if (typeof candidate.finishReason === "string") {
      this.finishReason = candidate.finishReason
      this.closeOpen(out)
    }
    return undefined
  }

  onEnd(out: Array<Message.StreamEvent>): Err.LlmError | undefined {
    if (this.finished) return undefined
    if (this.finishReason === undefined) {
      return new Err.StreamError({
        provider: this.provider,
        model: this.model,
        message: `${this.provider} stream ended before it finished`,
        partial: this.emittedText.length > 0 || this.calls.length > 0 || this.reasoning.length > 0,
        partialText: this.emittedText
      })
    }
    this.finished = true
    this.closeOpen(out)
    const reasoning = this.reasoning.length > 0 ? this.reasoning : undefined
    let outputChars = this.emittedText.length + (reasoning?.length ?? 0)
    for (const call of this.calls) outputChars += call.name.length + JSON.stringify(call.args).length
    const usage = this.usage ?? estimatedUsage(this.request, outputChars)
    this.settledTokens = usage.totalTokens
    out.push({
      _tag: "Finish",
      finishReason: finishReasonOf(this.finishReason, this.calls.length > 0),
      usage,
      id: this.id,
      model: this.model,
      provider: this.provider
    })
    return undefined
  }

  private onFunctionCall(call: Record<string, unknown>, out: Array<Message.StreamEvent>): void {
    const name = typeof call.name === "string" && call.name.length > 0 ? call.name : undefined
    const partials = Array.isArray(call.partialArgs) ? (call.partialArgs as Array<Record<string, unknown>>) : undefined
    const args = typeof call.args === "object" && call.args !== null ? (call.args as Record<string, unknown>) : undefined
    const willContinue = call.willContinue === true
    // a new name while a streamed call is open starts the next call
    if (this.open !== undefined && name !== undefined && this.open.name.length > 0) this.closeOpen(out)
    let pending = this.open
    if (pending === undefined) {
      if (name === undefined && partials === undefined && args === undefined) return
      const index = this.calls.length
      pending = {
        index,
        id: toolCallId(this.id, index, typeof call.id === "string" ? call.id : undefined),
        name: name ?? "",
        args: {},
        continuing: undefined
      }
      this.calls.push(pending)
      if (!willContinue) {
        pending.args = args ?? {}
        const text = JSON.stringify(pending.args)
        out.push({ _tag: "ToolCallDelta", index, id: pending.id, name: pending.name, argumentsDelta: text })
        out.push({ _tag: "ToolCall", index, id: pending.id, name: pending.name, arguments: text })
        return
      }
      this.open = pending
      out.push({ _tag: "ToolCallDelta", index, id: pending.id, name: pending.name, argumentsDelta: "" })
    } else if (name !== undefined) {
      pending.name = name
    }
    if (args !== undefined) Object.assign(pending.args, args)
    if (partials !== undefined) for (const partial of partials) applyPartial(pending, partial)
    if (!willContinue) this.closeOpen(out)
  }

  private closeOpen(out: Array<Message.StreamEvent>): void {
    const call = this.open
    if (call === undefined) return
    this.open = undefined
    const text = JSON.stringify(call.args)
    out.push({ _tag: "ToolCallDelta", index: call.index, argumentsDelta: text })
    out.push({ _tag: "ToolCall", index: call.index, id: call.id, name: call.name, arguments: text })
  }
}

/** Writes one streamed argument into the call's arguments; strings may arrive in pieces. */
const applyPartial = (call: PendingCall, partial: Record<string, unknown>): void => {
  const path = typeof partial.jsonPath === "string" ? partial.jsonPath : undefined
  const keys = path === undefined ? undefined : parseJsonPath(path)
  if (path === undefined || keys === undefined || keys.length === 0) return
  let value: unknown
  if (typeof partial.stringValue === "string") value = partial.stringValue
  else if (typeof partial.numberValue === "number") value = partial.numberValue
  else if (typeof partial.boolValue === "boolean") value = partial.boolValue
  else if ("nullValue" in partial) value = null
  else return
  let node: Record<PathKey, unknown> = call.args
  for (let i = 0; i < keys.length - 1; i++) {
    const key = keys[i]!
    let next = node[key]
    if (typeof next !== "object" || next === null) {
      next = typeof keys[i + 1] === "number" ? [] : {}
      node[key] = next
    }
    node = next as Record<PathKey, unknown>
  }
  const last = keys[keys.length - 1]!
  const previous = node[last]
  node[last] = typeof value === "string" && call.continuing === path && typeof previous === "string" ? previous + value : value
  call.continuing = typeof value === "string" && partial.willContinue === true ? path : undefined
}

const push = Provider.pushDelta

// ---------------------------------------------------------------------------
// Wire format: embeddings (`batchEmbedContents`)
// ---------------------------------------------------------------------------

/**
 * The `batchEmbedContents` request body.
 * @since 0.1.0 @category wire
 */
export const toEmbeddingsRequest = (
  model: string,
  texts: ReadonlyArray<string>,
  options?: { readonly dimensions?: number | undefined; readonly taskType?: string | undefined }
): Record<string, unknown> => ({
  requests: texts.map((text) => {
    const one: Record<string, unknown> = { model: modelPath(model), content: { parts: [{ text }] } }
    if (options?.dimensions !== undefined) one.outputDimensionality = options.dimensions
    if (options?.taskType !== undefined) one.taskType = options.taskType
    return one
  })
})

/** @since 0.1.0 @category wire */
export const WireEmbeddingsResponse = Schema.Struct({
  embeddings: Schema.Array(Schema.Struct({ values: Schema.Array(Schema.Number) })),
  usageMetadata: Schema.optional(Schema.Struct({ promptTokenCount: Schema.optional(Schema.Number) }))
})

const decodeEmbeddings = Schema.decodeUnknownEither(WireEmbeddingsResponse)

/**
 * Decodes a `batchEmbedContents` body: vectors in input order, and the prompt tokens when
 * Gemini reports them.
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
  return {
    vectors: decoded.right.embeddings.map((e) => e.values),
    inputTokens: decoded.right.usageMetadata?.promptTokenCount
  }
}

// ---------------------------------------------------------------------------
// Layers
// ---------------------------------------------------------------------------

/** Gemini's key header. @since 0.1.0 @category constructors */
export const auth = (key: Redacted.Redacted<string>): Record<string, string> => ({ "x-goog-api-key": Redacted.value(key) })

/** @since 0.1.0 @category constructors */
export const endpointOf = (options: Omit<Provider.CommonOptions, "model">) =>
  resolveEndpoint({ provider: options.provider ?? "gemini", auth, ...endpointOptions(options) })

/** @since 0.1.0 @category constructors */
export const urlOf = (baseUrl: string | undefined, model: string, method: string): string =>
  `${(baseUrl ?? defaultBaseUrl).replace(/\/+$/, "")}/${modelPath(model)}:${method}`

/** @since 0.1.0 @category constructors */
export const make = (
  options: Options
): Effect.Effect<LanguageModel["Type"], never, HttpClient.HttpClient | KeyPool.KeyPool | RateLimiter.RateLimiter> =>
  Effect.suspend(() => {
    const provider = options.provider ?? "gemini"
    return Provider.make({
      provider,
      auth,
      framing: "sse",
      url: (model, stream) => urlOf(options.baseUrl, model, stream ? "streamGenerateContent?alt=sse" : "generateContent"),
      body: (request, model) => toWireRequest(request, model, provider),
      decode: (request, model, body, status) => fromWireResponse(provider, model, request, body, status),
      parser: (request, model) => new ChunkParser(provider, model, request)
    }, { ...options, provider })
  })

const providerLayers = Provider.layers(make)

/** @since 0.1.0 @category layers */
export const layer = providerLayers.layer

/**
 * Options read from config, e.g. `layerConfig({ model: Config.string("GEMINI_MODEL") })`.
 * @since 0.1.0 @category layers
 */
export const layerConfig = providerLayers.layerConfig
