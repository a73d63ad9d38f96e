/** Runs a stream parser over frames, as the stream pipeline does: the events it wrote, and how it ended. */
import type { LlmError, Message } from "../../src/index.js"

export interface ParserLike {
  onData(data: string, event: string | undefined, out: Array<Message.StreamEvent>): LlmError.LlmError | undefined
  onEnd(out: Array<Message.StreamEvent>): LlmError.LlmError | undefined
}

export interface ParserRun {
  readonly events: ReadonlyArray<Message.StreamEvent>
  /** The error the parser returned, which ends the stream; undefined when it ended cleanly. */
  readonly error: LlmError.LlmError | undefined
  readonly calls: ReadonlyArray<Message.ToolCallComplete>
  readonly finish: Message.Finish | undefined
}

/** A frame: JSON data (stringified here) or raw text, with its SSE event name. */
export type Frame = unknown | { readonly event: string; readonly data: unknown }

const isNamed = (frame: Frame): frame is { readonly event: string; readonly data: unknown } =>
  typeof frame === "object" && frame !== null && "event" in frame && "data" in frame && Object.keys(frame).length === 2

export const runParser = (parser: ParserLike, frames: ReadonlyArray<Frame>): ParserRun => {
  const events: Array<Message.StreamEvent> = []
  let error: LlmError.LlmError | undefined
  for (const frame of frames) {
    const [event, data] = isNamed(frame) ? [frame.event, frame.data] : [undefined, frame]
    error = parser.onData(typeof data === "string" ? data : JSON.stringify(data), event, events)
    if (error !== undefined) break
  }
  if (error === undefined) error = parser.onEnd(events)
  const calls = events.filter((e): e is Message.ToolCallComplete => e._tag === "ToolCall")
  const last = events[events.length - 1]
  return { events, error, calls, finish: last?._tag === "Finish" ? last : undefined }
}
