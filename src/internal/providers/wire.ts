/**
 * What the wire APIs share, written once: tolerant decoding, usage estimates, finish-reason
 * and tool-call-id fallbacks, tool arguments and results as objects, and the base of every
 * stream parser.
 */
import * as Either from "effect/Either"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as Err from "../../LlmError.js"
import * as Message from "../../Message.js"
import type { Spec, StreamParser } from "../../Provider.js"
import { decodeJsonBody, fromStreamErrorEvent, jsonObjectFrame } from "../request/errors.js"

// ---------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------

/** A field providers send as absent, `null` or a value. */
export const optionalNullable = <S extends Schema.Schema.Any>(schema: S) => Schema.optional(Schema.NullOr(schema))

/** A decoder of a 2xx JSON body with a tolerant schema: the value, or the typed error saying what was wrong. */
export const jsonDecoder = <A, I>(schema: Schema.Schema<A, I>) => {
  const decode = Schema.decodeUnknownEither(schema)
  return (provider: string, model: string, body: string, status: number): A | Err.MalformedResponseError =>
    Either.getOrElse(decodeJsonBody(decode, provider, model, body, status), (error): A | Err.MalformedResponseError => error)
}

/** What a reply's reader knows besides the decoded body. */
export interface ReplyContext {
  readonly provider: string
  readonly model: string
  readonly request: Message.ChatRequest
  readonly body: string
  readonly status: number
}

/**
 * An API's reply decoder: the body decoded with its tolerant schema, then read into a
 * `ChatResponse`, or into the error the reply means.
 */
export const replyDecoder = <A, I>(
  schema: Schema.Schema<A, I>,
  read: (wire: A, reply: ReplyContext) => Message.ChatResponse | Err.LlmError
) => {
  const decode = jsonDecoder(schema)
  return (provider: string, model: string, request: Message.ChatRequest, body: string, status = 200): Message.ChatResponse | Err.LlmError => {
    const wire = decode(provider, model, body, status)
    return wire instanceof Err.MalformedResponseError ? wire : read(wire, { provider, model, request, body, status })
  }
}

// ---------------------------------------------------------------------------
// Specs
// ---------------------------------------------------------------------------

/** `path` under the given base URL (a trailing slash tolerated), or under the API's default. */
export const urlAt = (baseUrl: string | undefined, defaultBaseUrl: string, path: string): string =>
  `${(baseUrl ?? defaultBaseUrl).replace(/\/+$/, "")}${path}`

/** What every API's spec options hold: the provider id, and where it is served. */
export interface WireOptions {
  readonly provider?: string | undefined
  readonly baseUrl?: string | undefined
}

/** An API's spec for one provider id: its decode and stream parser bound to that id. */
export const specOf = (
  provider: string,
  api: Omit<Spec, "provider" | "decode" | "parser"> & {
    readonly decode: (
      provider: string,
      model: string,
      request: Message.ChatRequest,
      body: string,
      status: number
    ) => Message.ChatResponse | Err.LlmError
    readonly Parser: new(provider: string, model: string, request: Message.ChatRequest) => StreamParser
  }
): Spec => ({
  provider,
  auth: api.auth,
  headers: api.headers,
  framing: api.framing,
  streamAccept: api.streamAccept,
  url: api.url,
  body: api.body,
  decode: (request, model, body, status) => api.decode(provider, model, request, body, status),
  parser: (request, model) => new api.Parser(provider, model, request)
})

/** The key as a bearer token: OpenAI's scheme, and most compatible servers'. */
export const bearer = (key: Redacted.Redacted<string>): Record<string, string> => ({ authorization: `Bearer ${Redacted.value(key)}` })

// ---------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------

/** The request's plain options, each of which a wire body carries under a name of its own. */
export type PlainOption = "temperature" | "topP" | "maxTokens" | "stop" | "seed" | "presencePenalty" | "frequencyPenalty" | "user" | "reasoningEffort"

/** Copies the plain options the request sets into `into`, each under the API's name for it. */
export const copyOptions = (
  request: Message.ChatRequest,
  into: Record<string, unknown>,
  names: { readonly [K in PlainOption]?: string }
): Record<string, unknown> => {
  for (const key of Object.keys(names) as Array<PlainOption>) {
    const value = request[key]
    if (value !== undefined) into[names[key]!] = value
  }
  return into
}

// ---------------------------------------------------------------------------
// Usage and finish reasons
// ---------------------------------------------------------------------------

/** The characters of a request's text, for a usage estimate. */
const requestChars = (request: Message.ChatRequest): number => {
  let n = 0
  for (const message of request.messages) n += Message.contentText(message).length
  return n
}

/** The characters of a reply's text, reasoning and tool calls, for a usage estimate. */
const outputChars = (
  text: string,
  reasoning: string | undefined,
  calls: ReadonlyArray<{ readonly name: string; readonly arguments: string }>
): number => {
  let n = text.length + (reasoning?.length ?? 0)
  for (const call of calls) n += call.name.length + call.arguments.length
  return n
}

/** Usage counted by the library when the provider reported none (≈4 characters a token). */
const estimatedUsage = (requestText: number, outputText: number): Message.Usage => {
  const inputTokens = Math.ceil(requestText / 4)
  const outputTokens = Math.ceil(outputText / 4)
  return { inputTokens, outputTokens, totalTokens: inputTokens + outputTokens, estimated: true }
}

/** The estimate for one reply to `request`. */
export const estimateFor = (
  request: Message.ChatRequest,
  text: string,
  reasoning: string | undefined,
  calls: ReadonlyArray<{ readonly name: string; readonly arguments: string }>
): Message.Usage => estimatedUsage(requestChars(request), outputChars(text, reasoning, calls))

/** A decoded reply as a `ChatResponse`: reasoning only when there was some, usage as reported or else estimated. */
export const chatResponse = (
  request: Message.ChatRequest,
  reply: {
    readonly id: string
    readonly model: string
    readonly provider: string
    readonly text: string
    readonly reasoning?: string | undefined
    readonly toolCalls: ReadonlyArray<Message.ToolCall>
    readonly finishReason: Message.FinishReason
    readonly usage: Message.Usage | undefined
    readonly reasoningState?: ReadonlyArray<Message.ReasoningState> | undefined
  }
): Message.ChatResponse => {
  const { finishReason, id, model, provider, text, toolCalls } = reply
  const reasoning = reply.reasoning !== undefined && reply.reasoning.length > 0 ? reply.reasoning : undefined
  const usage = reply.usage ?? estimateFor(request, text, reasoning, toolCalls)
  const response: { -readonly [K in keyof Message.ChatResponse]: Message.ChatResponse[K] } = { id, model, provider, text, toolCalls, finishReason, usage }
  if (reasoning !== undefined) response.reasoning = reasoning
  if (reply.reasoningState !== undefined && reply.reasoningState.length > 0) response.reasoningState = reply.reasoningState
  return response
}

// ---------------------------------------------------------------------------
// Reasoning state
// ---------------------------------------------------------------------------

/**
 * The wire-API ids that tag reasoning state: the API, not the provider id, so that a
 * compatible proxy under another name sends back what its API produced.
 */
export type ReasoningApi = "anthropic" | "gemini" | "openai-responses"

/** A reasoning item of `api`, as responses carry it. */
export const reasoningItem = (api: ReasoningApi, item: unknown): Message.ReasoningState => ({ api, item })

/** The items of `api` in an assistant message's reasoning state, in order; other APIs' are ignored. */
export const reasoningItemsOf = (message: Message.AssistantMessage, api: ReasoningApi): Array<unknown> => {
  const out: Array<unknown> = []
  for (const state of message.reasoningState ?? []) if (state.api === api) out.push(state.item)
  return out
}

/** A reply that ended normally: with tool calls, it ended to have them run. */
export const stopOrToolCalls = (hasToolCalls: boolean): Message.FinishReason => (hasToolCalls ? "tool_calls" : "stop")

// ---------------------------------------------------------------------------
// Embeddings
// ---------------------------------------------------------------------------

/** One embeddings call's result: vectors in input order, and the input tokens when reported. */
export interface EmbeddingsBatch {
  readonly vectors: ReadonlyArray<ReadonlyArray<number>>
  readonly inputTokens: number | undefined
}

/** An embeddings wire API, as a chat API is a `Spec`: where, how keyed, the body, the decode. */
export interface EmbeddingsSpec {
  readonly provider: string
  readonly auth: (key: Redacted.Redacted<string>) => Record<string, string>
  readonly url: string
  /** The API's most inputs per call. */
  readonly maxBatchSize: number
  readonly body: (texts: ReadonlyArray<string>, dimensions: number | undefined) => Record<string, unknown>
  readonly decode: (body: string, status: number) => EmbeddingsBatch | Err.LlmError
}

// ---------------------------------------------------------------------------
// Tool calls
// ---------------------------------------------------------------------------

/** A call's id as the provider sent it, else `fallback`: a result must still be paired with its call. */
export const callId = (wireId: string | null | undefined, fallback: string): string =>
  typeof wireId === "string" && wireId.length > 0 ? wireId : fallback

/**
 * The function name a tool result answers: its own `name`, else the name of the newest
 * earlier assistant tool call with the same id (for APIs that pair results by name).
 */
export const toolNameFor = (messages: ReadonlyArray<Message.Message>, at: number): string | undefined => {
  const message = messages[at]
  if (message === undefined || message.role !== "tool") return undefined
  if (message.name !== undefined && message.name.length > 0) return message.name
  for (let i = at - 1; i >= 0; i--) {
    const earlier = messages[i]!
    if (earlier.role === "assistant" && earlier.toolCalls !== undefined) {
      for (const call of earlier.toolCalls) if (call.id === message.toolCallId) return call.name
    }
  }
  return undefined
}

/** A tool result's text as a JSON object, as Gemini's `functionResponse.response` wants. */
export const resultObject = (content: string): Record<string, unknown> => {
  try {
    const parsed: unknown = JSON.parse(content)
    if (typeof parsed === "object" && parsed !== null && !Array.isArray(parsed)) return parsed as Record<string, unknown>
    return { result: parsed }
  } catch {
    return { result: content }
  }
}

/** Tool-call arguments (JSON text) as an object, for wire formats that carry objects. */
export const argumentsObject = (args: string): Record<string, unknown> | undefined => {
  if (args.trim().length === 0) return {}
  try {
    const parsed: unknown = JSON.parse(args)
    return typeof parsed === "object" && parsed !== null && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : undefined
  } catch {
    return undefined
  }
}

/** Splits a `data:` URL into its media type and base64 payload. */
export const parseDataUrl = (url: string): { readonly mediaType: string; readonly data: string } | undefined => {
  const match = /^data:([^;,]+)?(?:;[^,]*)?;base64,(.*)$/s.exec(url)
  return match === null ? undefined : { mediaType: match[1] ?? "application/octet-stream", data: match[2]! }
}

// ---------------------------------------------------------------------------
// Requests an API cannot take
// ---------------------------------------------------------------------------

/** Thrown by a request mapping deep inside a message walk; `where` names the offending field. */
export class BadInput {
  constructor(readonly where: string, readonly why: string) {}
}

/** Runs a request mapping, turning its `BadInput` into the `InvalidRequestError` that names the field. */
export const mapRequest = <A>(provider: string, model: string, map: () => A): A | Err.InvalidRequestError => {
  try {
    return map()
  } catch (e) {
    if (e instanceof BadInput) return new Err.InvalidRequestError({ provider, model, message: `${provider}: ${e.where}: ${e.why}` })
    throw e
  }
}

// ---------------------------------------------------------------------------
// Stream parsers
// ---------------------------------------------------------------------------

/**
 * What every built-in stream parser keeps: the text and reasoning streamed so far, the
 * reply's id and model, and how it ends (a `Finish` with reported or estimated usage, a
 * cut, or an error event).
 */
export abstract class Parser implements StreamParser {
  emittedText = ""
  settledTokens: number | undefined = undefined
  protected reasoning = ""
  protected id = ""
  protected finished = false

  constructor(
    protected readonly provider: string,
    protected model: string,
    protected readonly request: Message.ChatRequest
  ) {}

  abstract onData(data: string, event: string | undefined, out: Array<Message.StreamEvent>): Err.LlmError | undefined
  abstract onEnd(out: Array<Message.StreamEvent>): Err.LlmError | undefined

  /** One frame as a JSON object, or the malformed-response error for it. */
  protected frame(data: string, what?: string): Record<string, unknown> | Err.MalformedResponseError {
    return jsonObjectFrame(this.provider, this.model, data, what)
  }

  protected text(text: string, out: Array<Message.StreamEvent>): void {
    this.emittedText += text
    pushDelta(out, "TextDelta", text)
  }

  protected think(text: string, out: Array<Message.StreamEvent>): void {
    this.reasoning += text
    pushDelta(out, "ReasoningDelta", text)
  }

  /** Whether anything reached the caller: a failure now is partial. */
  protected started(calls: number): boolean {
    return this.emittedText.length > 0 || calls > 0 || this.reasoning.length > 0
  }

  /** An error the provider sent inside the stream. */
  protected errorEvent(payload: unknown): Err.StreamError {
    return fromStreamErrorEvent(this.provider, this.model, payload, this.emittedText, this.emittedText.length > 0)
  }

  /** The stream stopped before `end`, its end marker: cut, not finished. */
  protected cut(end: string, partial: boolean): Err.StreamError {
    return new Err.StreamError({
      provider: this.provider,
      model: this.model,
      message: `${this.provider} stream ended before ${end}`,
      partial,
      partialText: this.emittedText
    })
  }

  /** Ends the stream with its `Finish`: usage as reported, else estimated from what was streamed. */
  protected finishWith(
    out: Array<Message.StreamEvent>,
    finishReason: Message.FinishReason,
    usage: Message.Usage | undefined,
    calls: ReadonlyArray<{ readonly name: string; readonly arguments: string }>,
    reasoningState?: ReadonlyArray<Message.ReasoningState>
  ): void {
    const reasoning = this.reasoning.length > 0 ? this.reasoning : undefined
    const settled = usage ?? estimateFor(this.request, this.emittedText, reasoning, calls)
    this.settledTokens = settled.totalTokens
    const finish: Message.Finish = { _tag: "Finish", finishReason, usage: settled, id: this.id, model: this.model, provider: this.provider }
    out.push(reasoningState !== undefined && reasoningState.length > 0 ? { ...finish, reasoningState } : finish)
  }
}

/**
 * Pushes a text or reasoning delta, merged with the previous one of the same kind (the same
 * text in fewer elements).
 */
export const pushDelta = (out: Array<Message.StreamEvent>, tag: "TextDelta" | "ReasoningDelta", text: string): void => {
  const last = out[out.length - 1]
  if (last !== undefined && last._tag === tag) out[out.length - 1] = { _tag: tag, text: last.text + text }
  else out.push({ _tag: tag, text })
}
