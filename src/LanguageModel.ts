/**
 * The one interface every provider implements and every decorator wraps.
 *
 * @since 0.1.0
 */
import * as Channel from "effect/Channel"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as Generate from "./internal/generate.js"
import * as internal from "./internal/languageModel.js"
import * as prompt from "./internal/prompt.js"
import { counted, reporting, reportsOf, type Tracker } from "./internal/request/delivered.js"
import type { LlmError, StreamError } from "./LlmError.js"
import type { ChatRequest, ChatResponse, Finish, StreamEvent } from "./Message.js"
import type * as Tool from "./Tool.js"

/** @since 0.1.0 @category models */
export interface Service {
  /** The provider id, e.g. `openai`, `anthropic`. */
  readonly provider: string
  /** The default model; a request's `model` overrides it. */
  readonly model: string
  /** The model's context window in tokens, when known. */
  readonly contextWindow?: number | undefined
  readonly chat: (request: ChatRequest) => Effect.Effect<ChatResponse, LlmError>
  /**
   * The reply as events. `tracker` is for decorators (`Retry`, `Fallback`): the stream reports
   * to it what it delivered, so that a failure after output began is never retried. Models
   * made with `make` or a provider's layer do; a decorator passes it to the model below.
   */
  readonly stream: (request: ChatRequest, tracker?: Tracker) => Stream.Stream<StreamEvent, LlmError>
}

/**
 * What a stream has delivered, for the decorators that must know; see `Service.stream`.
 * @since 0.1.0 @category models
 */
export type { Tracker }

/** @since 0.1.0 @category tags */
export const LanguageModel: typeof internal.LanguageModel = internal.LanguageModel
/** @since 0.1.0 @category tags */
export type LanguageModel = internal.LanguageModel

/**
 * A model from your own `chat` and `stream`. Its streams are counted on their way out (one
 * stage), so that `Retry` and `Fallback` above it know what a failed stream delivered.
 * @since 0.1.0 @category constructors
 */
export const make = (impl: Service): Service =>
  reportsOf(impl)
    ? impl
    : { ...impl, stream: reporting((request: ChatRequest, tracker?: Tracker) => counted(impl.stream(request), tracker)) }

/** @since 0.1.0 @category layers */
export const layer = (impl: Service): Layer.Layer<LanguageModel> => Layer.succeed(LanguageModel, make(impl))

/**
 * A decorator: the model above from the model below. `Retry`, `CircuitBreaker`,
 * `ResponseCache`, `Budget` and `ContextWindow` each export one as `decorator(options)`, and
 * `decorate` turns it into the layer that wraps whatever `LanguageModel` is provided below.
 * @since 0.1.0 @category decorators
 */
export type Decorator<E = never, R = never> = (inner: Service) => Effect.Effect<Service, E, R>

/**
 * The layer of a decorator: `Layer<LanguageModel, E, LanguageModel | R>`. A decorator that
 * needs a scope (a background fiber) gets the layer's.
 * @since 0.1.0 @category decorators
 */
export const decorate = <E, R>(decorator: Decorator<E, R>): Layer.Layer<LanguageModel, E, LanguageModel | Exclude<R, Scope.Scope>> =>
  Layer.scoped(LanguageModel, Effect.flatMap(LanguageModel, decorator))

/**
 * The model below with some of its calls replaced, keeping its provider, model and context
 * window: what a decorator returns. A `stream` given here must pass the events of the model
 * below through (it may add none of its own), and give the model below the tracker it got.
 * @since 0.1.0 @category decorators
 */
export const wrap = (inner: Service, calls: Partial<Pick<Service, "chat" | "stream" | "contextWindow">>): Service => ({
  provider: inner.provider,
  model: inner.model,
  contextWindow: inner.contextWindow,
  chat: inner.chat,
  ...calls,
  stream: calls.stream === undefined ? inner.stream : reporting(calls.stream, reportsOf(inner))
})

/**
 * A request in short: `prompt` (the user's message, or the messages so far), an optional
 * `system` prompt sent before it, and any other `ChatRequest` option:
 * `LanguageModel.chat({ system: "Answer in French.", prompt: "Hello", temperature: 0 })`.
 * The accessors and the generate functions take it wherever they take a `ChatRequest`.
 * @since 0.1.0 @category requests
 */
export type Prompt = prompt.Prompt

/**
 * What the accessors take: a `ChatRequest`, or a `Prompt`.
 * @since 0.1.0 @category requests
 */
export type Input = prompt.Input

/**
 * The `ChatRequest` of an `Input`: a `Prompt`'s `system` then `prompt` as its messages, its
 * other options as they are; a `ChatRequest` unchanged.
 * @since 0.1.0 @category requests
 */
export const toRequest: (input: Input) => ChatRequest = prompt.toRequest

/** @since 0.1.0 @category accessors */
export const chat = (input: Input): Effect.Effect<ChatResponse, LlmError, LanguageModel> =>
  Effect.flatMap(LanguageModel, (model) => model.chat(prompt.toRequest(input)))

/** @since 0.1.0 @category accessors */
export const stream = (input: Input): Stream.Stream<StreamEvent, LlmError, LanguageModel> =>
  // Channel.unwrap, not Stream.unwrap: the latter flattens a stream of streams, ~150 µs per call
  Stream.fromChannel(Channel.unwrap(Effect.map(LanguageModel, (model) => Stream.toChannel(model.stream(prompt.toRequest(input))))))

/**
 * Folds a stream into the `ChatResponse` that `chat` would have returned for the same
 * exchange. A stream that ends without its `Finish` event fails with a partial `StreamError`.
 * @since 0.1.0 @category utils
 */
export const collect = <E, R>(events: Stream.Stream<StreamEvent, E, R>): Effect.Effect<ChatResponse, E | StreamError, R> =>
  Effect.suspend(() => {
    const acc = new Accumulator()
    return Stream.runForEachChunk(events, (chunk) => Effect.sync(() => acc.addAll(chunk))).pipe(
      Effect.flatMap(() => acc.result())
    )
  })

/**
 * Mutable fold state for `collect`; also used by decorators that must remember what a
 * stream has delivered so far (fallback, partial-stream errors).
 * @since 0.1.0 @category utils
 */
export const Accumulator: typeof internal.Accumulator = internal.Accumulator
/** @since 0.1.0 @category utils */
export type Accumulator = internal.Accumulator

/**
 * Turns a `ChatResponse` into the events a stream of it would carry; used by mocks and
 * by caches that replay a stored answer as a stream.
 * @since 0.1.0 @category utils
 */
export const responseToEvents = (response: ChatResponse): Array<StreamEvent> => {
  const events: Array<StreamEvent> = []
  if (response.reasoning !== undefined && response.reasoning.length > 0) {
    events.push({ _tag: "ReasoningDelta", text: response.reasoning })
  }
  if (response.text.length > 0) events.push({ _tag: "TextDelta", text: response.text })
  response.toolCalls.forEach((call, index) => {
    events.push({ _tag: "ToolCallDelta", index, id: call.id, name: call.name, argumentsDelta: call.arguments })
    events.push({ _tag: "ToolCall", index, id: call.id, name: call.name, arguments: call.arguments })
  })
  const finish: { -readonly [K in keyof Finish]: Finish[K] } = {
    _tag: "Finish",
    finishReason: response.finishReason,
    usage: response.usage,
    id: response.id,
    model: response.model,
    provider: response.provider
  }
  if (response.reasoningState !== undefined) finish.reasoningState = response.reasoningState
  if (response.upstreamProvider !== undefined) finish.upstreamProvider = response.upstreamProvider
  if (response.stale === true) finish.stale = true
  events.push(finish)
  return events
}

// ---------------------------------------------------------------------------
// The application layer: the tool loop and structured output (internal/generate.ts)
// ---------------------------------------------------------------------------

/**
 * One tool call's outcome. `content` is what went back to the model: the JSON of the
 * `success`-encoded value, of the `failure`-encoded value (`isError`), or the problem with the
 * call (arguments that did not parse or decode, an unknown tool; `isError` too).
 * @since 0.1.0 @category generate
 */
export type ToolResult = Generate.ToolResult

/**
 * One model call of the loop: its reply, the tool calls in it, and their results (empty when
 * the loop ran no tools: no toolkit, or none called).
 * @since 0.1.0 @category generate
 */
export type Step = Generate.Step

/**
 * What `generateText` returns: the last reply's `text` and `finishReason` (`"tool_calls"` when
 * it stopped at `maxSteps` with calls in the last reply), the last `response`, every step, the
 * whole transcript (`messages`: the request's, then each reply and its tool results; pass it
 * back to continue), and the usage summed over the steps.
 * @since 0.1.0 @category generate
 */
export type GenerateTextResult = Generate.GenerateTextResult

/**
 * The request (`request`, or a `Prompt`'s `system`, `prompt` and options), and the loop's
 * options: `maxSteps` (default 10) bounds the model calls; `concurrency` (default unbounded)
 * the tool calls of one reply run at once. The toolkit's tools are added to the request's own.
 * @since 0.1.0 @category generate
 */
export type GenerateTextOptions<T extends Tool.Any> = Generate.GenerateTextOptions<T>

/**
 * The tool loop's own options: `toolkit`, `maxSteps`, `concurrency`.
 * @since 0.1.0 @category generate
 */
export type LoopOptions<T extends Tool.Any> = Generate.LoopOptions<T>

/**
 * What `streamText` emits, in order, for each step: its text and reasoning deltas and its
 * complete tool calls as the model streams them, then the results of those calls (in call
 * order, once all have run), then `StepFinish`. The last event is `Finish`, with the same
 * result `generateText` returns (usage summed over the steps).
 * @since 0.1.0 @category generate
 */
export type TextStreamEvent = Generate.TextStreamEvent

/**
 * The tool loop: model, then tools, then model, until a reply without tool calls or
 * `maxSteps` model calls. The tool calls of one reply run in parallel (`concurrency`).
 * Arguments that do not parse or decode, an unknown tool name, and a handler failure of the
 * tool's `failure` schema go back to the model as tool error results, for it to repair; a
 * defect in a handler fails the call. At `maxSteps` the last reply's calls are still run, so
 * the transcript stays valid to continue from. Each step sends back the assistant message
 * `Message.fromResponse` builds, reasoning state included. The handlers come from the
 * context: provide `toolkit.toLayer(handlers)`.
 * @since 0.1.0 @category generate
 */
export const generateText = <T extends Tool.Any = never>(
  options: GenerateTextOptions<T>
): Effect.Effect<GenerateTextResult, LlmError, LanguageModel | Tool.HandlersFor<T>> => Generate.generateText(options)

/**
 * The loop of `generateText` as a stream of `TextStreamEvent`s; each step streams its reply.
 * @since 0.1.0 @category generate
 */
export const streamText = <T extends Tool.Any = never>(
  options: GenerateTextOptions<T>
): Stream.Stream<TextStreamEvent, LlmError, LanguageModel | Tool.HandlersFor<T>> => Generate.streamText(options)

/**
 * The request (`request`, or a `Prompt`'s `system`, `prompt` and options) and the object's
 * options: `name` (default `"response"`) and `description` are sent with the schema;
 * `repairAttempts` (default 1) is how many times a reply that does not decode is sent back
 * with its issues.
 * @since 0.1.0 @category generate
 */
export type GenerateObjectOptions<A, I> = Generate.GenerateObjectOptions<A, I>

/**
 * The structured output's own options: `schema`, `name`, `description`, `repairAttempts`.
 * @since 0.1.0 @category generate
 */
export type ObjectOptions<A, I> = Generate.ObjectOptions<A, I>

/** @since 0.1.0 @category generate */
export type GenerateObjectResult<A> = Generate.GenerateObjectResult<A>

/**
 * What `streamObject` emits: `Partial` values of the JSON parsed so far (not decoded: the
 * encoded side, possibly incomplete), a `Repair` when a finished reply did not decode and is
 * asked again (partials start over), and last the decoded `Object`.
 * @since 0.1.0 @category generate
 */
export type ObjectStreamEvent<A> = Generate.ObjectStreamEvent<A>

/**
 * A value of `schema` from the model. The request gets a `json_schema` response format from
 * `JSONSchema.make(schema)`, strict, which each provider maps to its native mode; the reply's
 * text (a Markdown fence around it is tolerated) is decoded with the Schema, with `null` on an
 * optional key read as absent. A reply that does not decode is sent back with its issues, once
 * per `repairAttempts`; then the call fails with `StructuredOutputError`.
 * @since 0.1.0 @category generate
 */
export const generateObject = <A, I>(
  options: GenerateObjectOptions<A, I>
): Effect.Effect<GenerateObjectResult<A>, LlmError, LanguageModel> => Generate.generateObject(options)

/**
 * `generateObject` as a stream: partial values as the JSON arrives (parsed with a partial-JSON
 * parser, never decoded per chunk), then the decoded value.
 * @since 0.1.0 @category generate
 */
export const streamObject = <A, I>(
  options: GenerateObjectOptions<A, I>
): Stream.Stream<ObjectStreamEvent<A>, LlmError, LanguageModel> => Generate.streamObject(options)
