/**
 * The unified domain: messages, requests, responses, usage and stream events.
 * Every provider maps to and from these shapes; nothing provider-specific leaks out.
 *
 * @since 0.1.0
 */
import type * as JSONSchema from "effect/JSONSchema"
import * as Schema from "effect/Schema"

// ---------------------------------------------------------------------------
// Content parts
// ---------------------------------------------------------------------------

/** @since 0.1.0 @category parts */
export const TextPart = Schema.Struct({
  type: Schema.Literal("text"),
  text: Schema.String
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
  detail: Schema.optional(Schema.Literal("auto", "low", "high"))
})
/** @since 0.1.0 @category parts */
export type ImagePart = typeof ImagePart.Type

/** @since 0.1.0 @category parts */
export const UserContentPart = Schema.Union(TextPart, ImagePart)
/** @since 0.1.0 @category parts */
export type UserContentPart = typeof UserContentPart.Type

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
  strict: Schema.optional(Schema.Boolean)
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
  content: Schema.String
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
  content: Schema.String,
  /** The tool's name; some providers (Gemini) need it to pair results with calls. */
  name: Schema.optional(Schema.String),
  /** The content reports a failure (Anthropic's `is_error`); other APIs read it from the text. */
  isError: Schema.optional(Schema.Boolean),
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
 * Token usage. `estimated` is true when the provider reported none and the library counted.
 * @since 0.1.0 @category responses
 */
export const Usage = Schema.Struct({
  inputTokens: Schema.Number,
  outputTokens: Schema.Number,
  totalTokens: Schema.Number,
  reasoningTokens: Schema.optional(Schema.Number),
  cachedInputTokens: Schema.optional(Schema.Number),
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
export const system = (content: string): SystemMessage => ({ role: "system", content })

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
export const tool = (toolCallId: string, content: string, name?: string, options?: { readonly isError?: boolean }): ToolMessage => {
  const message: { -readonly [K in keyof ToolMessage]: ToolMessage[K] } = { role: "tool", toolCallId, content }
  if (name !== undefined) message.name = name
  if (options?.isError === true) message.isError = true
  return message
}

/** @since 0.1.0 @category constructors */
export const text = (value: string): TextPart => ({ type: "text", text: value })

/** @since 0.1.0 @category constructors */
export const image = (url: string, options?: { readonly mediaType?: string; readonly detail?: "auto" | "low" | "high" }): ImagePart => ({
  type: "image",
  url,
  ...options
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
 * The text of a message's content, with image parts left out.
 * @since 0.1.0 @category utils
 */
export const contentText = (message: Message): string => {
  if (typeof message.content === "string") return message.content
  let out = ""
  for (const part of message.content) if (part.type === "text") out += part.text
  return out
}
