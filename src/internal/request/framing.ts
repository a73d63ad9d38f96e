/**
 * The provider's stream state machine contract, and the framers that cut decoded text into
 * its frames: SSE events (`eventsource-parser`) or NDJSON lines, each with a size cap.
 */
import { createParser } from "eventsource-parser"
import * as Err from "../../LlmError.js"
import type { StreamEvent } from "../../Message.js"

/**
 * A provider's stream state machine. `onData` handles one frame (an SSE event, or an
 * NDJSON line) and `onEnd` flushes; both push events into `out` and may return an error
 * that ends the stream. `emittedText` is what the caller has received so far.
 */
export interface StreamParser {
  onData(data: string, event: string | undefined, out: Array<StreamEvent>): Err.LlmError | undefined
  onEnd(out: Array<StreamEvent>): Err.LlmError | undefined
  readonly emittedText: string
  readonly settledTokens: number | undefined
}

export type Framing = "sse" | "ndjson"

/** Splits decoded text into frames, handing each to its sink. */
export interface Framer {
  feed(text: string): void
  end(): void
}

/** Where a framer hands its frames: each frame's data and SSE event name, and an oversize event. */
export interface FrameSink {
  onFrame(data: string, event: string | undefined): void
  /** Told once when a single event grows past the cap; framing stops there. */
  onOversize(): void
}

/**
 * SSE events of at most `maxChars` characters (`eventsource-parser`). The stream's leading
 * byte-order mark is dropped, as the SSE spec says; once an event outgrows the cap, framing
 * stops (the parser refuses to be fed again).
 */
export const sseFramer = (sink: FrameSink, maxChars: number): Framer => {
  let stopped = false
  let first = true
  const parser = createParser({
    onEvent: (message) => sink.onFrame(message.data, message.event),
    onError: (error) => {
      if (error.type !== "max-buffer-size-exceeded") return
      stopped = true
      sink.onOversize()
    },
    maxBufferSize: maxChars
  })
  return {
    feed: (text) => {
      if (stopped || text.length === 0) return
      if (first) {
        first = false
        if (text.charCodeAt(0) === 0xfeff) text = text.slice(1)
      }
      parser.feed(text)
    },
    // A final event without its blank line still counts. `reset({ consume: true })` only
    // parses the last line and never dispatches, so end the line and the event instead.
    end: () => {
      if (stopped) return
      parser.feed("\n\n")
      parser.reset()
    }
  }
}

/** NDJSON lines of at most `maxChars` characters. A class: every open stream holds one. */
class NdjsonFramer implements Framer {
  private buffer = ""
  constructor(private readonly sink: FrameSink, private readonly maxChars: number) {}

  feed(text: string): void {
    this.buffer += text
    let newline = this.buffer.indexOf("\n")
    while (newline >= 0) {
      const line = this.buffer.slice(0, newline).trim()
      this.buffer = this.buffer.slice(newline + 1)
      if (line.length > this.maxChars) return this.sink.onOversize()
      if (line.length > 0) this.sink.onFrame(line, undefined)
      newline = this.buffer.indexOf("\n")
    }
    if (this.buffer.length > this.maxChars) {
      this.buffer = ""
      this.sink.onOversize()
    }
  }

  end(): void {
    const line = this.buffer.trim()
    this.buffer = ""
    if (line.length > 0) this.sink.onFrame(line, undefined)
  }
}

export const ndjsonFramer = (sink: FrameSink, maxChars: number): Framer => new NdjsonFramer(sink, maxChars)
