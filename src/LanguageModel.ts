/**
 * The one interface every provider implements and every decorator wraps.
 *
 * @since 0.1.0
 */
import * as Channel from "effect/Channel"
import type * as Chunk from "effect/Chunk"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import { type LlmError, StreamError } from "./LlmError.js"
import type { ChatRequest, ChatResponse, StreamEvent, ToolCall } from "./Message.js"

/** @since 0.1.0 @category models */
export interface Service {
  /** The provider id, e.g. `openai`, `anthropic`. */
  readonly provider: string
  /** The default model; a request's `model` overrides it. */
  readonly model: string
  /** The model's context window in tokens, when known. */
  readonly contextWindow?: number | undefined
  readonly chat: (request: ChatRequest) => Effect.Effect<ChatResponse, LlmError>
  readonly stream: (request: ChatRequest) => Stream.Stream<StreamEvent, LlmError>
}

/** @since 0.1.0 @category tags */
export class LanguageModel extends Context.Tag("effect-llm/LanguageModel")<LanguageModel, Service>() {}

/** @since 0.1.0 @category constructors */
export const make = (impl: Service): Service => impl

/** @since 0.1.0 @category layers */
export const layer = (impl: Service): Layer.Layer<LanguageModel> => Layer.succeed(LanguageModel, impl)

/** @since 0.1.0 @category accessors */
export const chat = (request: ChatRequest): Effect.Effect<ChatResponse, LlmError, LanguageModel> =>
  Effect.flatMap(LanguageModel, (model) => model.chat(request))

/** @since 0.1.0 @category accessors */
export const stream = (request: ChatRequest): Stream.Stream<StreamEvent, LlmError, LanguageModel> =>
  // Channel.unwrap, not Stream.unwrap: the latter flattens a stream of streams, ~150 µs per call
  Stream.fromChannel(Channel.unwrap(Effect.map(LanguageModel, (model) => Stream.toChannel(model.stream(request)))))

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
export class Accumulator {
  text = ""
  reasoning: string | undefined = undefined
  readonly toolCalls: Array<ToolCall> = []
  finish: Extract<StreamEvent, { _tag: "Finish" }> | undefined = undefined
  events = 0

  add(event: StreamEvent): void {
    this.events++
    switch (event._tag) {
      case "TextDelta":
        this.text += event.text
        break
      case "ReasoningDelta":
        this.reasoning = (this.reasoning ?? "") + event.text
        break
      case "ToolCall":
        this.toolCalls.push({ id: event.id, name: event.name, arguments: event.arguments })
        break
      case "Finish":
        this.finish = event
        break
      case "ToolCallDelta":
        break
    }
  }

  addAll(chunk: Chunk.Chunk<StreamEvent>): void {
    for (const event of chunk) this.add(event)
  }

  result(): Effect.Effect<ChatResponse, StreamError> {
    const finish = this.finish
    if (finish === undefined) {
      return Effect.fail(
        new StreamError({
          provider: "unknown",
          model: "unknown",
          message: "stream ended without a Finish event",
          partial: this.events > 0,
          partialText: this.text
        })
      )
    }
    const response: ChatResponse = {
      id: finish.id,
      model: finish.model,
      provider: finish.provider,
      text: this.text,
      toolCalls: this.toolCalls,
      finishReason: finish.finishReason,
      usage: finish.usage
    }
    return Effect.succeed(this.reasoning === undefined ? response : { ...response, reasoning: this.reasoning })
  }
}

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
  events.push({
    _tag: "Finish",
    finishReason: response.finishReason,
    usage: response.usage,
    id: response.id,
    model: response.model,
    provider: response.provider
  })
  return events
}
