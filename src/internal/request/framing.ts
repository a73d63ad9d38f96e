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

/** Splits decoded text into frames; the callback gets each frame's data and SSE event name. */
export interface Framer {
  feed(text: string): void
  end(): void
}

export type OnFrame = (data: string, event: string | undefined) => void

/** `onOversize` is told once when a single event grows past `maxChars`; framing stops there. */
export const sseFramer = (onFrame: OnFrame, maxChars: number, onOversize: () => void): Framer => {
  const parser = createParser({
    onEvent: (message) => onFrame(message.data, message.event),
    onError: (error) => {
      if (error.type === "max-buffer-size-exceeded") onOversize()
    },
    maxBufferSize: maxChars
  })
  return {
    feed: (text) => parser.feed(text),
    // A final event without its blank line still counts. `reset({ consume: true })` only
    // parses the last line and never dispatches, so end the line and the event instead.
    end: () => {
      parser.feed("\n\n")
      parser.reset()
    }
  }
}

export const ndjsonFramer = (onFrame: OnFrame, maxChars: number, onOversize: () => void): Framer => {
  let buffer = ""
  return {
    feed: (text) => {
      buffer += text
      let newline = buffer.indexOf("\n")
      while (newline >= 0) {
        const line = buffer.slice(0, newline).trim()
        buffer = buffer.slice(newline + 1)
        if (line.length > maxChars) return onOversize()
        if (line.length > 0) onFrame(line, undefined)
        newline = buffer.indexOf("\n")
      }
      if (buffer.length > maxChars) {
        buffer = ""
        onOversize()
      }
    },
    end: () => {
      const line = buffer.trim()
      buffer = ""
      if (line.length > 0) onFrame(line, undefined)
    }
  }
}

