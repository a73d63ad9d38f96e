/**
 * The provider's stream state machine contract, and the framers that cut decoded text into
 * its frames: SSE events or NDJSON lines, each with a size cap.
 */
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
 * SSE events (the WHATWG event-stream format) of at most `maxChars` characters: lines end with
 * LF, CRLF or CR; `data:` lines join with LF; `event:` names the event; comments, `id:`,
 * `retry:` and unknown fields are skipped; a blank line dispatches an event that has data.
 * A class of a few fields rather than a parser of closures (`eventsource-parser` holds ~1.3 KB
 * per instance): every open stream holds one.
 */
class SseFramer implements Framer {
  /** The text after the last complete line. */
  private rest = ""
  private data = ""
  private dataLines = 0
  private event: string | undefined = undefined
  private first = true
  private stopped = false

  constructor(private readonly sink: FrameSink, private readonly maxChars: number) {}

  feed(text: string): void {
    if (this.stopped) return
    if (this.first && text.length > 0) {
      this.first = false
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1)
    }
    const chunk = this.rest.length === 0 ? text : this.rest + text
    let start = 0
    if (chunk.indexOf("\r") === -1) {
      for (let end = chunk.indexOf("\n"); end !== -1; end = chunk.indexOf("\n", start)) {
        this.line(chunk, start, end)
        start = end + 1
      }
    } else {
      for (;;) {
        const cr = chunk.indexOf("\r", start)
        const lf = chunk.indexOf("\n", start)
        const end = cr === -1 ? lf : lf === -1 ? cr : Math.min(cr, lf)
        // a CR that ends the text may be the first half of a CRLF: wait for what follows
        if (end === -1 || (end === cr && cr === chunk.length - 1)) break
        this.line(chunk, start, end)
        start = end + 1
        if (end === cr && chunk.charCodeAt(start) === 10) start++
      }
    }
    this.rest = start === 0 ? chunk : chunk.slice(start)
    if (this.rest.length + this.data.length > this.maxChars) {
      this.stopped = true
      this.rest = ""
      this.data = ""
      this.sink.onOversize()
    }
  }

  // A final event without its blank line still counts.
  end(): void {
    this.feed("\n\n")
    this.rest = ""
    this.data = ""
    this.dataLines = 0
    this.event = undefined
  }

  private line(chunk: string, start: number, end: number): void {
    if (start === end) return this.dispatch()
    // the common case first: `data:` and its value, without cutting the field name out
    if (chunk.startsWith("data:", start)) return this.append(chunk.slice(chunk.charCodeAt(start + 5) === 32 ? start + 6 : start + 5, end))
    const first = chunk.charCodeAt(start)
    if (first === 58) return // a comment
    let colon = chunk.indexOf(":", start)
    if (colon === -1 || colon > end) colon = end
    const field = chunk.slice(start, colon)
    const value = colon === end ? "" : chunk.slice(chunk.charCodeAt(colon + 1) === 32 ? colon + 2 : colon + 1, end)
    if (field === "data") this.append(value)
    else if (field === "event") this.event = value.length > 0 ? value : undefined
    // id, retry and unknown fields: nothing here uses them
  }

  private append(value: string): void {
    this.data = this.dataLines === 0 ? value : `${this.data}\n${value}`
    this.dataLines++
  }

  private dispatch(): void {
    const { data, dataLines, event } = this
    this.data = ""
    this.dataLines = 0
    this.event = undefined
    if (dataLines > 0) this.sink.onFrame(data, event)
  }
}

export const sseFramer = (sink: FrameSink, maxChars: number): Framer => new SseFramer(sink, maxChars)

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
