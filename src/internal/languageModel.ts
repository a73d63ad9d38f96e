/**
 * What the application layer (`generate.ts`) needs of `LanguageModel` at run time: the Tag
 * and the stream fold. The public `LanguageModel` module re-exports both, so this module
 * imports it for types only.
 */
import type * as Chunk from "effect/Chunk"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import type { Service } from "../LanguageModel.js"
import { StreamError } from "../LlmError.js"
import type { ChatResponse, StreamEvent, ToolCall } from "../Message.js"

export class LanguageModel extends Context.Tag("effect-llm/LanguageModel")<LanguageModel, Service>() {}

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
    const response: { -readonly [K in keyof ChatResponse]: ChatResponse[K] } = {
      id: finish.id,
      model: finish.model,
      provider: finish.provider,
      text: this.text,
      toolCalls: this.toolCalls,
      finishReason: finish.finishReason,
      usage: finish.usage
    }
    if (this.reasoning !== undefined) response.reasoning = this.reasoning
    if (finish.reasoningState !== undefined) response.reasoningState = finish.reasoningState
    if (finish.upstreamProvider !== undefined) response.upstreamProvider = finish.upstreamProvider
    if (finish.stale === true) response.stale = true
    return Effect.succeed(response)
  }
}
