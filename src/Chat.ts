/**
 * A conversation that remembers: a service holding the messages so far in a `Ref`, whose
 * `generateText`, `streamText` and `generateObject` send them with the new turn and, when the
 * turn succeeds, append it (the prompt, the replies, the tool calls and results). A failed
 * turn appends nothing. Turns of one conversation run one at a time. The conversation
 * exports as JSON and is restored from it, checked against the `Message` schema.
 *
 * ```ts
 * const program = Effect.gen(function* () {
 *   const chat = yield* Chat.make({ system: "You are terse." })
 *   yield* chat.generateText({ prompt: "My name is Ada." })
 *   const reply = yield* chat.generateText({ prompt: "What is my name?" })
 *   const saved = yield* chat.exportJson
 *   const again = yield* Chat.fromJson(saved)
 * })
 * ```
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as ParseResult from "effect/ParseResult"
import type * as Ref from "effect/Ref"
import * as Stream from "effect/Stream"
import * as internal from "./internal/chat.js"
import type { GenerateObjectResult, GenerateTextResult, LanguageModel, LoopOptions, ObjectOptions, Prompt, TextStreamEvent } from "./LanguageModel.js"
import type { LlmError } from "./LlmError.js"
import type * as Message from "./Message.js"
import type * as Tool from "./Tool.js"

/**
 * One turn: `prompt` (the user's message, or messages to append) and any `ChatRequest`
 * option for this turn alone; for the tool loop, `toolkit`, `maxSteps` and `concurrency`.
 * @since 0.1.0 @category models
 */
export type TurnOptions<T extends Tool.Any = never> = LoopOptions<T> & Omit<Prompt, "system">

/**
 * One turn of structured output: `prompt`, the schema and its options, and any `ChatRequest` option.
 * @since 0.1.0 @category models
 */
export type ObjectTurnOptions<A, I> = ObjectOptions<A, I> & Omit<Prompt, "system">

/**
 * What a conversation exports: `{ messages }`, each as the `Message` schema encodes it.
 * @since 0.1.0 @category models
 */
export const History = internal.History
/** @since 0.1.0 @category models */
export type History = internal.History

/** @since 0.1.0 @category models */
export interface Service {
  /** The messages so far: the system prompt, then each turn's. Set it to rewrite the conversation. */
  readonly history: Ref.Ref<ReadonlyArray<Message.Message>>
  /** The conversation as `History`'s encoded value, for a store of your own. */
  readonly export: Effect.Effect<History, ParseResult.ParseError>
  /** The conversation as JSON text. */
  readonly exportJson: Effect.Effect<string, ParseResult.ParseError>
  /** `LanguageModel.generateText` over the messages so far and this turn's; the transcript (tool calls and results too) is appended. */
  readonly generateText: <T extends Tool.Any = never>(
    options: TurnOptions<T>
  ) => Effect.Effect<GenerateTextResult, LlmError, LanguageModel | Tool.HandlersFor<T>>
  /** `LanguageModel.streamText` over the messages so far and this turn's; the transcript is appended at its `Finish`. */
  readonly streamText: <T extends Tool.Any = never>(
    options: TurnOptions<T>
  ) => Stream.Stream<TextStreamEvent, LlmError, LanguageModel | Tool.HandlersFor<T>>
  /** `LanguageModel.generateObject` over the messages so far and this turn's; the prompt and the reply that decoded are appended. */
  readonly generateObject: <A, I>(options: ObjectTurnOptions<A, I>) => Effect.Effect<GenerateObjectResult<A>, LlmError, LanguageModel>
}

/**
 * A conversation as a service, for code that takes it from the context.
 * @since 0.1.0 @category tags
 */
export class Chat extends Context.Tag("effect-llm/Chat")<Chat, Service>() {}

/**
 * A conversation's start: a `system` prompt, and `messages` already exchanged.
 * @since 0.1.0 @category constructors
 */
export interface MakeOptions {
  readonly system?: string | undefined
  readonly messages?: ReadonlyArray<Message.Message> | undefined
}

/**
 * A new conversation.
 * @since 0.1.0 @category constructors
 */
export const make: (options?: MakeOptions) => Effect.Effect<Service> = internal.make

/**
 * A new conversation with no messages.
 * @since 0.1.0 @category constructors
 */
export const empty: Effect.Effect<Service> = internal.make()

/**
 * A conversation restored from what `export` gave; a value that is not a `History` fails
 * with the `ParseError` that says where.
 * @since 0.1.0 @category constructors
 */
export const fromExport: (data: unknown) => Effect.Effect<Service, ParseResult.ParseError> = internal.fromExport

/**
 * A conversation restored from what `exportJson` gave; text that is not JSON, or not a
 * `History`, fails with the `ParseError` that says where.
 * @since 0.1.0 @category constructors
 */
export const fromJson: (json: string) => Effect.Effect<Service, ParseResult.ParseError> = internal.fromJson

/**
 * A new conversation as the `Chat` service.
 * @since 0.1.0 @category layers
 */
export const layer = (options?: MakeOptions): Layer.Layer<Chat> => Layer.effect(Chat, internal.make(options))

/**
 * A turn of the `Chat` in the context: see `Service.generateText`.
 * @since 0.1.0 @category accessors
 */
export const generateText = <T extends Tool.Any = never>(
  options: TurnOptions<T>
): Effect.Effect<GenerateTextResult, LlmError, Chat | LanguageModel | Tool.HandlersFor<T>> =>
  Effect.flatMap(Chat, (chat) => chat.generateText(options))

/**
 * A streamed turn of the `Chat` in the context: see `Service.streamText`.
 * @since 0.1.0 @category accessors
 */
export const streamText = <T extends Tool.Any = never>(
  options: TurnOptions<T>
): Stream.Stream<TextStreamEvent, LlmError, Chat | LanguageModel | Tool.HandlersFor<T>> =>
  Stream.unwrap(Effect.map(Chat, (chat) => chat.streamText(options)))

/**
 * A structured turn of the `Chat` in the context: see `Service.generateObject`.
 * @since 0.1.0 @category accessors
 */
export const generateObject = <A, I>(
  options: ObjectTurnOptions<A, I>
): Effect.Effect<GenerateObjectResult<A>, LlmError, Chat | LanguageModel> => Effect.flatMap(Chat, (chat) => chat.generateObject(options))

/**
 * The `Chat` in the context as JSON text.
 * @since 0.1.0 @category accessors
 */
export const exportJson: Effect.Effect<string, ParseResult.ParseError, Chat> = Effect.flatMap(Chat, (chat) => chat.exportJson)
