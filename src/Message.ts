/**
 * The unified domain: messages, requests, responses, usage and stream events.
 * Every provider maps to and from these shapes; nothing provider-specific leaks out.
 *
 * @since 0.1.0
 */
import type * as JSONSchema from "effect/JSONSchema"
import * as Schema from "effect/Schema"

// ---------------------------------------------------------------------------
// Prompt caching
// ---------------------------------------------------------------------------

/**
 * A prompt-cache breakpoint: the prompt up to and including what carries it may be cached
 * and read back by later requests that start with the same prefix. Set it on a system
 * message, a content part, a tool result or a tool definition. Anthropic gets a
 * `cache_control` block (`ttl` 5 minutes by default, or 1 hour; at most 4 breakpoints a
 * request, checked before sending); APIs that cache on their own (OpenAI, Gemini, DeepSeek)
 * ignore it, and take their own cache settings through `providerOptions`.
 * @since 0.1.0 @category caching
 */
export const CacheBreakpoint = Schema.Struct({
  ttl: Schema.optional(Schema.Literal("5m", "1h"))
})
/** @since 0.1.0 @category caching */
export type CacheBreakpoint = typeof CacheBreakpoint.Type

// ---------------------------------------------------------------------------
// Content parts
// ---------------------------------------------------------------------------

/** @since 0.1.0 @category parts */
export const TextPart = Schema.Struct({
  type: Schema.Literal("text"),
  text: Schema.String,
  cache: Schema.optional(CacheBreakpoint)
})
/** @since 0.1.0 @category parts */
export type TextPart = typeof TextPart.Type

/**
 * An image, either an `https:` URL or a `data:` URL with base64 content.
 * @since 0.1.0 @category parts
 */
export const ImagePart = Schema.Struct({
  type: Schema.Literal("image"),
  url: Schema.String,
  mediaType: Schema.optional(Schema.String),
  detail: Schema.optional(Schema.Literal("auto", "low", "high")),
  cache: Schema.optional(CacheBreakpoint)
})
/** @since 0.1.0 @category parts */
export type ImagePart = typeof ImagePart.Type

/**
 * A document (a PDF, a text or CSV file, …): an `https:` (or Gemini `gs:`) URL, or a `data:`
 * URL with base64 content. `mediaType` says what it is (`application/pdf`, `text/plain`, …);
 * `filename` is passed on where the API takes one.
 * @since 0.1.0 @category parts
 */
export const FilePart = Schema.Struct({
  type: Schema.Literal("file"),
  url: Schema.String,
  mediaType: Schema.String,
  filename: Schema.optional(Schema.String),
  cache: Schema.optional(CacheBreakpoint)
})
/** @since 0.1.0 @category parts */
export type FilePart = typeof FilePart.Type

/**
 * Audio input, as a `data:` URL with base64 content (or a URL, for Gemini's `fileData`);
 * `mediaType` is `audio/wav`, `audio/mpeg`, …
 * @since 0.1.0 @category parts
 */
export const AudioPart = Schema.Struct({
  type: Schema.Literal("audio"),
  url: Schema.String,
  mediaType: Schema.String,
  cache: Schema.optional(CacheBreakpoint)
})
/** @since 0.1.0 @category parts */
export type AudioPart = typeof AudioPart.Type

/** @since 0.1.0 @category parts */
export const UserContentPart = Schema.Union(TextPart, ImagePart, FilePart, AudioPart)
/** @since 0.1.0 @category parts */
export type UserContentPart = typeof UserContentPart.Type

/**
 * What a tool result may hold besides text: images and documents, where the API takes them
 * (Anthropic, Responses, Gemini); elsewhere a typed `InvalidRequestError` before sending.
 * @since 0.1.0 @category parts
 */
export const ToolResultPart = Schema.Union(TextPart, ImagePart, FilePart)
/** @since 0.1.0 @category parts */
export type ToolResultPart = typeof ToolResultPart.Type

/**
 * A part that carries media rather than text.
 * @since 0.1.0 @category parts
 */
export type MediaPart = ImagePart | FilePart | AudioPart

// ---------------------------------------------------------------------------
// Tool calls and tools
// ---------------------------------------------------------------------------

/**
 * A complete tool call. `arguments` is the JSON text exactly as the model produced it.
 * @since 0.1.0 @category tools
 */
export const ToolCall = Schema.Struct({
  id: Schema.String,
  name: Schema.String,
  arguments: Schema.String
})
/** @since 0.1.0 @category tools */
export type ToolCall = typeof ToolCall.Type

/**
 * A JSON Schema document: any plain object, including what `JSONSchema.make` returns
 * (its interfaces have no index signature, so a record type alone would need a cast).
 * @since 0.1.0 @category tools
 */
export type JsonSchema = { readonly [key: string]: unknown } | JSONSchema.JsonSchema7Root

/** @since 0.1.0 @category tools */
export const JsonSchema: Schema.Schema<JsonSchema> = Schema.declare(
  (u: unknown): u is JsonSchema => typeof u === "object" && u !== null && !Array.isArray(u),
  { identifier: "JsonSchema", description: "a JSON Schema object" }
)

/**
 * A function the model may call. `parameters` is a JSON Schema object.
 * @since 0.1.0 @category tools
 */
export const ToolDefinition = Schema.Struct({
  name: Schema.String,
  description: Schema.optional(Schema.String),
  parameters: JsonSchema,
  strict: Schema.optional(Schema.Boolean),
  /** A prompt-cache breakpoint after the tool definitions up to this one (see `CacheBreakpoint`). */
  cache: Schema.optional(CacheBreakpoint)
})
/** @since 0.1.0 @category tools */
export type ToolDefinition = typeof ToolDefinition.Type

/** @since 0.1.0 @category tools */
export const ToolChoice = Schema.Union(
  Schema.Literal("auto", "none", "required"),
  Schema.Struct({ name: Schema.String })
)
/** @since 0.1.0 @category tools */
export type ToolChoice = typeof ToolChoice.Type

// ---------------------------------------------------------------------------
// Messages
// ---------------------------------------------------------------------------

/** @since 0.1.0 @category messages */
export const SystemMessage = Schema.Struct({
  role: Schema.Literal("system"),
  content: Schema.String,
  /** A prompt-cache breakpoint after this system prompt (see `CacheBreakpoint`). */
  cache: Schema.optional(CacheBreakpoint)
})
/** @since 0.1.0 @category messages */
export type SystemMessage = typeof SystemMessage.Type

/** @since 0.1.0 @category messages */
export const UserMessage = Schema.Struct({
  role: Schema.Literal("user"),
  content: Schema.Union(Schema.String, Schema.Array(UserContentPart)),
  /**
   * How much this message matters when `ContextWindow` must drop some (higher is kept
   * longer; default 0). Never sent to a provider.
   */
  importance: Schema.optional(Schema.Number)
})
/** @since 0.1.0 @category messages */
export type UserMessage = typeof UserMessage.Type

/**
 * State a reasoning model needs back on its next turn: Anthropic thinking blocks with their
 * signatures (and redacted thinking), Gemini thought signatures, Responses reasoning items.
 * Opaque to the application: `api` names the wire API that produced `item` (`"anthropic"`,
 * `"gemini"` or `"openai-responses"`, whatever the provider id, so a compatible proxy works
 * too), and a provider sends back only its own API's items, so a transcript stays valid
 * across a fallback chain of different APIs.
 * @since 0.1.0 @category messages
 */
export const ReasoningState = Schema.Struct({
  api: Schema.String,
  item: Schema.Unknown
})
/** @since 0.1.0 @category messages */
export type ReasoningState = typeof ReasoningState.Type

/** @since 0.1.0 @category messages */
export const AssistantMessage = Schema.Struct({
  role: Schema.Literal("assistant"),
  content: Schema.String,
  toolCalls: Schema.optional(Schema.Array(ToolCall)),
  reasoning: Schema.optional(Schema.String),
  /** Provider reasoning state to send back on the next turn; see `ReasoningState`. */
  reasoningState: Schema.optional(Schema.Array(ReasoningState)),
  /**
   * How much this message matters when `ContextWindow` must drop some (higher is kept
   * longer; default 0). Never sent to a provider.
   */
  importance: Schema.optional(Schema.Number)
})
/** @since 0.1.0 @category messages */
export type AssistantMessage = typeof AssistantMessage.Type

/** @since 0.1.0 @category messages */
export const ToolMessage = Schema.Struct({
  role: Schema.Literal("tool"),
  toolCallId: Schema.String,
  /** The result as text, or as parts: text, images and documents (see `ToolResultPart`). */
  content: Schema.Union(Schema.String, Schema.Array(ToolResultPart)),
  /** The tool's name; some providers (Gemini) need it to pair results with calls. */
  name: Schema.optional(Schema.String),
  /** The content reports a failure (Anthropic's `is_error`); other APIs read it from the text. */
  isError: Schema.optional(Schema.Boolean),
  /** A prompt-cache breakpoint after this result (see `CacheBreakpoint`). */
  cache: Schema.optional(CacheBreakpoint),
  /**
   * How much this message matters when `ContextWindow` must drop some (higher is kept
   * longer; default 0). Never sent to a provider.
   */
  importance: Schema.optional(Schema.Number)
})
/** @since 0.1.0 @category messages */
export type ToolMessage = typeof ToolMessage.Type

/** @since 0.1.0 @category messages */
export const Message = Schema.Union(SystemMessage, UserMessage, AssistantMessage, ToolMessage)
/** @since 0.1.0 @category messages */
export type Message = typeof Message.Type

// ---------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------

/** @since 0.1.0 @category requests */
export const ReasoningEffort = Schema.Literal("none", "minimal", "low", "medium", "high")
/** @since 0.1.0 @category requests */
export type ReasoningEffort = typeof ReasoningEffort.Type

/** @since 0.1.0 @category requests */
export const ResponseFormat = Schema.Union(
  Schema.Struct({ type: Schema.Literal("text") }),
  Schema.Struct({ type: Schema.Literal("json_object") }),
  Schema.Struct({
    type: Schema.Literal("json_schema"),
    name: Schema.String,
    schema: JsonSchema,
    description: Schema.optional(Schema.String),
    strict: Schema.optional(Schema.Boolean)
  })
)
/** @since 0.1.0 @category requests */
export type ResponseFormat = typeof ResponseFormat.Type

/** Any other field of an API's body, as that API documents it. */
const OpenFields = Schema.Record({ key: Schema.String, value: Schema.Unknown })

/**
 * Options for the OpenAI wire APIs (Chat Completions and Responses), and every provider that
 * speaks Chat Completions (DeepSeek, Groq, Together, vLLM, …): the prompt cache's key and
 * retention, typed; anything else the body takes, as the API documents it.
 * @since 0.1.0 @category requests
 */
export const OpenAiOptions = Schema.Struct(
  {
    /** Groups requests that share a long prefix, so they land where it is cached. */
    prompt_cache_key: Schema.optional(Schema.String),
    /** `24h` keeps cached prefixes longer on models that offer it. */
    prompt_cache_retention: Schema.optional(Schema.Literal("in_memory", "24h"))
  },
  OpenFields
)
/** @since 0.1.0 @category requests */
export type OpenAiOptions = typeof OpenAiOptions.Type

/**
 * OpenRouter's provider routing (`provider` in its body).
 * @since 0.1.0 @category requests
 */
export const OpenRouterRouting = Schema.Struct(
  {
    /** Providers to try first, in order (`"anthropic"`, `"openai"`, …). */
    order: Schema.optional(Schema.Array(Schema.String)),
    /** Only these providers. */
    only: Schema.optional(Schema.Array(Schema.String)),
    /** Never these providers. */
    ignore: Schema.optional(Schema.Array(Schema.String)),
    /** Prefer the cheapest, the fastest or the quickest to answer. */
    sort: Schema.optional(Schema.Literal("price", "throughput", "latency")),
    /** Whether other providers may serve when the preferred ones cannot. Default true. */
    allow_fallbacks: Schema.optional(Schema.Boolean),
    require_parameters: Schema.optional(Schema.Boolean),
    data_collection: Schema.optional(Schema.Literal("allow", "deny"))
  },
  OpenFields
)
/** @since 0.1.0 @category requests */
export type OpenRouterRouting = typeof OpenRouterRouting.Type

/**
 * Options for OpenRouter, merged after `openai`'s when the provider is OpenRouter: typed
 * provider routing and model fallbacks, and anything else its body takes.
 * @since 0.1.0 @category requests
 */
export const OpenRouterOptions = Schema.Struct(
  {
    provider: Schema.optional(OpenRouterRouting),
    /** Models to fall back to, in order, when the request's model cannot serve. */
    models: Schema.optional(Schema.Array(Schema.String))
  },
  OpenFields
)
/** @since 0.1.0 @category requests */
export type OpenRouterOptions = typeof OpenRouterOptions.Type

/**
 * Options for one wire API each, deep-merged into that API's body only (objects merged key
 * by key, anything else replaced), before `extra`. One request can thus run across a
 * fallback chain of different APIs, each step receiving only its own: `openai` goes to
 * Chat Completions (OpenAI and every compatible provider) and Responses, `openrouter` to
 * OpenRouter after `openai`, `anthropic` to Messages, `gemini` to `generateContent`,
 * `ollama` to `/api/chat`.
 * @since 0.1.0 @category requests
 */
export const ProviderOptions = Schema.Struct({
  openai: Schema.optional(OpenAiOptions),
  openrouter: Schema.optional(OpenRouterOptions),
  anthropic: Schema.optional(OpenFields),
  gemini: Schema.optional(OpenFields),
  ollama: Schema.optional(OpenFields)
})
/** @since 0.1.0 @category requests */
export type ProviderOptions = typeof ProviderOptions.Type

/**
 * One chat request. `model` overrides the layer's model; `extra` is merged verbatim
 * into the provider's request body, last, so it can set anything the unified shape lacks.
 * @since 0.1.0 @category requests
 */
export const ChatRequest = Schema.Struct({
  messages: Schema.Array(Message),
  model: Schema.optional(Schema.String),
  tools: Schema.optional(Schema.Array(ToolDefinition)),
  toolChoice: Schema.optional(ToolChoice),
  temperature: Schema.optional(Schema.Number),
  topP: Schema.optional(Schema.Number),
  maxTokens: Schema.optional(Schema.Number),
  stop: Schema.optional(Schema.Array(Schema.String)),
  seed: Schema.optional(Schema.Number),
  presencePenalty: Schema.optional(Schema.Number),
  frequencyPenalty: Schema.optional(Schema.Number),
  user: Schema.optional(Schema.String),
  reasoningEffort: Schema.optional(ReasoningEffort),
  responseFormat: Schema.optional(ResponseFormat),
  extra: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.Unknown })),
  /** Options for one wire API each, deep-merged into that API's body only (see `ProviderOptions`). */
  providerOptions: Schema.optional(ProviderOptions),
  /**
   * How `ResponseCache` treats this request: `bypass` skips it, `refresh` calls the model
   * and overwrites the stored answer. Never sent to a provider.
   */
  cache: Schema.optional(Schema.Literal("default", "bypass", "refresh"))
})
/** @since 0.1.0 @category requests */
export type ChatRequest = typeof ChatRequest.Type

// ---------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------

/**
 * Why generation stopped. Provider values outside this set map to `"other"`.
 * @since 0.1.0 @category responses
 */
export const FinishReason = Schema.Literal("stop", "length", "tool_calls", "content_filter", "error", "other")
/** @since 0.1.0 @category responses */
export type FinishReason = typeof FinishReason.Type

/**
 * Token usage. `inputTokens` is the whole prompt, cache reads and writes included, on every
 * provider. `estimated` is true when the provider reported none and the library counted.
 * @since 0.1.0 @category responses
 */
export const Usage = Schema.Struct({
  inputTokens: Schema.Number,
  outputTokens: Schema.Number,
  totalTokens: Schema.Number,
  reasoningTokens: Schema.optional(Schema.Number),
  /** Input tokens read from the provider's prompt cache: part of `inputTokens`. */
  cachedInputTokens: Schema.optional(Schema.Number),
  /** Input tokens written to the provider's prompt cache (Anthropic, OpenRouter): part of `inputTokens`. */
  cacheWriteTokens: Schema.optional(Schema.Number),
  /** US dollars, as the provider reported them (OpenRouter); `Usage` prices with it when present. */
  cost: Schema.optional(Schema.Number),
  estimated: Schema.Boolean
})
/** @since 0.1.0 @category responses */
export type Usage = typeof Usage.Type

/** @since 0.1.0 @category responses */
export const ChatResponse = Schema.Struct({
  id: Schema.String,
  model: Schema.String,
  provider: Schema.String,
  text: Schema.String,
  reasoning: Schema.optional(Schema.String),
  /** Provider reasoning state for the next turn; `Message.fromResponse` carries it over. */
  reasoningState: Schema.optional(Schema.Array(ReasoningState)),
  toolCalls: Schema.Array(ToolCall),
  finishReason: FinishReason,
  usage: Usage,
  /** The provider a router (OpenRouter) sent the request to, as it names it (`"Anthropic"`, …). */
  upstreamProvider: Schema.optional(Schema.String),
  /**
   * True when `ResponseCache`'s degraded mode answered with a stored reply past its TTL
   * because the model failed.
   */
  stale: Schema.optional(Schema.Boolean)
})
/** @since 0.1.0 @category responses */
export type ChatResponse = typeof ChatResponse.Type

// ---------------------------------------------------------------------------
// Stream events
// ---------------------------------------------------------------------------

/** @since 0.1.0 @category streaming */
export const TextDelta = Schema.TaggedStruct("TextDelta", { text: Schema.String })
/** @since 0.1.0 @category streaming */
export type TextDelta = typeof TextDelta.Type

/** @since 0.1.0 @category streaming */
export const ReasoningDelta = Schema.TaggedStruct("ReasoningDelta", { text: Schema.String })
/** @since 0.1.0 @category streaming */
export type ReasoningDelta = typeof ReasoningDelta.Type

/**
 * A fragment of a tool call as it streams; `id` and `name` arrive on the first fragment.
 * @since 0.1.0 @category streaming
 */
export const ToolCallDelta = Schema.TaggedStruct("ToolCallDelta", {
  index: Schema.Number,
  id: Schema.optional(Schema.String),
  name: Schema.optional(Schema.String),
  argumentsDelta: Schema.String
})
/** @since 0.1.0 @category streaming */
export type ToolCallDelta = typeof ToolCallDelta.Type

/**
 * A tool call whose arguments are complete. Emitted once per call.
 * @since 0.1.0 @category streaming
 */
export const ToolCallComplete = Schema.TaggedStruct("ToolCall", {
  index: Schema.Number,
  id: Schema.String,
  name: Schema.String,
  arguments: Schema.String
})
/** @since 0.1.0 @category streaming */
export type ToolCallComplete = typeof ToolCallComplete.Type

/**
 * The last event of every successful stream. It carries the response metadata, so that
 * `LanguageModel.collect` can build the same `ChatResponse` that `chat` returns.
 * @since 0.1.0 @category streaming
 */
export const Finish = Schema.TaggedStruct("Finish", {
  finishReason: FinishReason,
  usage: Usage,
  id: Schema.String,
  model: Schema.String,
  provider: Schema.String,
  /** Provider reasoning state gathered over the stream (see `ReasoningState`). */
  reasoningState: Schema.optional(Schema.Array(ReasoningState)),
  /** The provider a router sent the request to (see `ChatResponse.upstreamProvider`). */
  upstreamProvider: Schema.optional(Schema.String),
  /** A stale stored reply replayed by `ResponseCache`'s degraded mode (see `ChatResponse.stale`). */
  stale: Schema.optional(Schema.Boolean)
})
/** @since 0.1.0 @category streaming */
export type Finish = typeof Finish.Type

/** @since 0.1.0 @category streaming */
export const StreamEvent = Schema.Union(TextDelta, ReasoningDelta, ToolCallDelta, ToolCallComplete, Finish)
/** @since 0.1.0 @category streaming */
export type StreamEvent = typeof StreamEvent.Type

// ---------------------------------------------------------------------------
// Constructors
// ---------------------------------------------------------------------------

/** @since 0.1.0 @category constructors */
export const system = (content: string, options?: { readonly cache?: CacheBreakpoint }): SystemMessage =>
  options?.cache === undefined ? { role: "system", content } : { role: "system", content, cache: options.cache }

/** @since 0.1.0 @category constructors */
export const user = (content: string | ReadonlyArray<UserContentPart>): UserMessage => ({ role: "user", content })

/** @since 0.1.0 @category constructors */
export const assistant = (
  content: string,
  options?: {
    readonly toolCalls?: ReadonlyArray<ToolCall>
    readonly reasoning?: string
    readonly reasoningState?: ReadonlyArray<ReasoningState>
  }
): AssistantMessage => ({ role: "assistant", content, ...options })

/**
 * The assistant message that continues a conversation after `response`: its text, tool
 * calls, reasoning and reasoning state, so the next turn sends back what the API needs.
 * @since 0.1.0 @category constructors
 */
export const fromResponse = (response: ChatResponse): AssistantMessage => {
  const message: { -readonly [K in keyof AssistantMessage]: AssistantMessage[K] } = { role: "assistant", content: response.text }
  if (response.toolCalls.length > 0) message.toolCalls = response.toolCalls
  if (response.reasoning !== undefined) message.reasoning = response.reasoning
  if (response.reasoningState !== undefined && response.reasoningState.length > 0) message.reasoningState = response.reasoningState
  return message
}

/** @since 0.1.0 @category constructors */
export const tool = (
  toolCallId: string,
  content: string | ReadonlyArray<ToolResultPart>,
  name?: string,
  options?: { readonly isError?: boolean; readonly cache?: CacheBreakpoint }
): ToolMessage => {
  const message: { -readonly [K in keyof ToolMessage]: ToolMessage[K] } = { role: "tool", toolCallId, content }
  if (name !== undefined) message.name = name
  if (options?.isError === true) message.isError = true
  if (options?.cache !== undefined) message.cache = options.cache
  return message
}

/** @since 0.1.0 @category constructors */
export const text = (value: string, options?: { readonly cache?: CacheBreakpoint }): TextPart =>
  options?.cache === undefined ? { type: "text", text: value } : { type: "text", text: value, cache: options.cache }

/**
 * Where a media part's content is: a URL (`https:`, `gs:` or `data:`), its bytes, or its
 * base64 text.
 * @since 0.1.0 @category constructors
 */
export type Source = string | Uint8Array | { readonly base64: string }

/** A source as the URL a part carries: bytes and base64 become a `data:` URL of `mediaType`. */
const urlOf = (source: Source, mediaType: string): string => {
  if (typeof source === "string") return source
  const base64 = source instanceof Uint8Array ? Buffer.from(source.buffer, source.byteOffset, source.byteLength).toString("base64") : source.base64
  return `data:${mediaType};base64,${base64}`
}

/**
 * An image part. Bytes or base64 need a `mediaType` (default `image/png`).
 * @since 0.1.0 @category constructors
 */
export const image = (
  source: Source,
  options?: { readonly mediaType?: string; readonly detail?: "auto" | "low" | "high"; readonly cache?: CacheBreakpoint }
): ImagePart => ({ type: "image", url: urlOf(source, options?.mediaType ?? "image/png"), ...options })

/**
 * A document part: a PDF (`application/pdf`, the default) or another file, by URL, bytes or
 * base64.
 * @since 0.1.0 @category constructors
 */
export const file = (
  source: Source,
  options?: { readonly mediaType?: string; readonly filename?: string; readonly cache?: CacheBreakpoint }
): FilePart => {
  const mediaType = options?.mediaType ?? "application/pdf"
  return { ...options, type: "file", url: urlOf(source, mediaType), mediaType }
}

/**
 * An audio part, by bytes, base64 or URL; `mediaType` defaults to `audio/wav`.
 * @since 0.1.0 @category constructors
 */
export const audio = (source: Source, options?: { readonly mediaType?: string; readonly cache?: CacheBreakpoint }): AudioPart => {
  const mediaType = options?.mediaType ?? "audio/wav"
  return { ...options, type: "audio", url: urlOf(source, mediaType), mediaType }
}

/**
 * The same system message, part, tool result or tool definition with a prompt-cache
 * breakpoint (see `CacheBreakpoint`): `Message.cached(Message.system(longPrompt))`.
 * @since 0.1.0 @category caching
 */
export const cached = <A extends { readonly cache?: CacheBreakpoint | undefined }>(item: A, ttl?: "5m" | "1h"): A => ({
  ...item,
  cache: ttl === undefined ? {} : { ttl }
})

/**
 * A request from a prompt, or from messages, plus options.
 * @since 0.1.0 @category constructors
 */
export const request = (
  prompt: string | ReadonlyArray<Message>,
  options?: Omit<ChatRequest, "messages">
): ChatRequest => ({ ...options, messages: typeof prompt === "string" ? [user(prompt)] : prompt })

/**
 * The text of a message's content, with media parts left out.
 * @since 0.1.0 @category utils
 */
export const contentText = (message: Message): string => {
  if (typeof message.content === "string") return message.content
  let out = ""
  for (const part of message.content) if (part.type === "text") out += part.text
  return out
}
