/** The base of every built-in stream parser, and the merge of text deltas. */
import * as Err from "../../LlmError.js"
import type * as Message from "../../Message.js"
import type { ErrorBody, StreamParser } from "../../Provider.js"
import { readStreamError, streamErrorOf } from "../request/errors.js"
import { readErrorObject } from "../request/errorBody.js"
import { jsonObjectFrame } from "./decoding.js"
import { estimateFor } from "./usageEstimate.js"

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
    protected readonly request: Message.ChatRequest,
    /** The API's reader of its error bodies, for the stream's error events. */
    protected readonly readError: (json: unknown) => ErrorBody | undefined = readErrorObject
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
    const reading = readStreamError(this.readError, payload)
    return streamErrorOf(this.provider, this.model, reading, this.emittedText, this.emittedText.length > 0)
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
    reasoningState?: ReadonlyArray<Message.ReasoningState>,
    upstreamProvider?: string
  ): void {
    const reasoning = this.reasoning.length > 0 ? this.reasoning : undefined
    const settled = usage ?? estimateFor(this.request, this.emittedText, reasoning, calls)
    this.settledTokens = settled.totalTokens
    const finish: { -readonly [K in keyof Message.Finish]: Message.Finish[K] } = {
      _tag: "Finish",
      finishReason,
      usage: settled,
      id: this.id,
      model: this.model,
      provider: this.provider
    }
    if (reasoningState !== undefined && reasoningState.length > 0) finish.reasoningState = reasoningState
    if (upstreamProvider !== undefined && upstreamProvider.length > 0) finish.upstreamProvider = upstreamProvider
    out.push(finish)
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
