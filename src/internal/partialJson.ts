/**
 * The partial values of a JSON text as it streams in, for `streamObject`. Each delta is
 * scanned once, keeping where the text can be cut and which brackets close it into valid
 * JSON; a partial value is `JSON.parse` of that prefix and its closers, so a `__proto__` key
 * is an own key and nesting costs no stack. Strings show as they grow; numbers, `true`,
 * `false` and `null` only once whole; a key only with the start of its value.
 *
 * A re-parse waits until the cut has grown by an eighth since the last one, so the parses
 * add up to at most about nine times the text, however many deltas carry it: the work is
 * linear in the reply.
 */

/** What the scanner expects next, outside strings and scalars. */
type Expect = "value" | "key" | "colon" | "after" | "done"

/** A Markdown fence line (```json) is recognised within this many leading characters. */
const fenceWindow = 256

export class PartialJson {
  /** The JSON text so far, after a leading fence line. */
  private text = ""
  /** The closers of the open containers, innermost last. */
  private readonly closers: Array<"}" | "]"> = []
  private expect: Expect = "value"
  private inString = false
  private stringIsKey = false
  /** 0: none; 1: after a backslash; 2 to 5: inside `\u`, 2 + the hex digits read. */
  private escape = 0
  private inScalar = false
  /** Where an unfinished member of the innermost container is cut: after its `{`/`[`, or at the comma before it. */
  private dropTo = 0
  /** Where the last whole value ended. */
  private valueEnd = 0
  /** Not JSON, or nested past the bound: no more partials (the final decode says why). */
  private stopped = false
  private lead: string | undefined = ""
  private parsedAt = 0
  private lastCandidate = ""

  constructor(private readonly maxDepth: number) {}

  /** Reads one delta of the text. */
  feed(delta: string): void {
    if (this.lead !== undefined) {
      const text = this.unfence(delta)
      if (text === undefined) return
      delta = text
    }
    if (this.stopped || this.expect === "done") return
    const from = this.text.length
    this.text += delta
    this.scan(from)
  }

  /**
   * The value the text so far stands for, when it differs from the last one returned and
   * the text has grown enough since the last parse; otherwise undefined.
   */
  next(): { readonly value: unknown } | undefined {
    if (this.stopped) return undefined
    const cut = this.cut()
    if (cut === undefined) return undefined
    const [at, closing] = cut
    if (at < this.parsedAt + Math.max(1, this.parsedAt >> 3)) return undefined
    this.parsedAt = at
    const candidate = this.text.slice(0, at) + closing
    if (candidate === this.lastCandidate) return undefined
    this.lastCandidate = candidate
    try {
      return { value: JSON.parse(candidate) }
    } catch {
      // the prefix never changes: what does not parse now never will
      this.stopped = true
      return undefined
    }
  }

  /** The text after a leading fence line; undefined while it may still be one. */
  private unfence(delta: string): string | undefined {
    const lead = this.lead + delta
    const start = lead.trimStart()
    if (lead.length < fenceWindow) {
      if (start.length < 3 && "```".startsWith(start)) {
        this.lead = lead
        return undefined
      }
      if (start.startsWith("```")) {
        const newline = start.indexOf("\n")
        if (newline < 0) {
          this.lead = lead
          return undefined
        }
        this.lead = undefined
        return start.slice(newline + 1)
      }
    }
    this.lead = undefined
    return lead
  }

  /** Where the text can be cut, and what closes it; undefined when it holds no value yet. */
  private cut(): readonly [number, string] | undefined {
    if (this.expect === "done") return [this.valueEnd, ""]
    const closing = this.closers.length === 0 ? "" : this.closers.slice().reverse().join("")
    if (this.inString && !this.stringIsKey) {
      // a string value shows as far as it came, without a half-read escape
      return [this.text.length - (this.escape === 1 ? 1 : this.escape >= 2 ? this.escape : 0), "\"" + closing]
    }
    if (this.closers.length === 0) return undefined
    if (!this.inString && !this.inScalar && this.expect === "after") return [this.valueEnd, closing]
    return [this.dropTo, closing]
  }

  private scan(from: number): void {
    const text = this.text
    for (let i = from; i < text.length; i++) {
      const c = text.charCodeAt(i)
      if (this.inString) {
        if (this.escape === 1) this.escape = c === 0x75 /* u */ ? 2 : 0
        else if (this.escape >= 2) this.escape = this.escape === 5 ? 0 : this.escape + 1
        else if (c === 0x5c /* \ */) this.escape = 1
        else if (c === 0x22 /* " */) {
          this.inString = false
          if (this.stringIsKey) this.expect = "colon"
          else this.valueDone(i + 1)
        }
        continue
      }
      if (this.inScalar) {
        if (!isDelimiter(c)) continue
        this.inScalar = false
        this.valueDone(i)
        if (this.expect === "done") return
      }
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) continue
      if (!this.step(c, i)) {
        this.stopped = true
        return
      }
      if (this.expect === "done") return
    }
  }

  /** One structural character; false when the text is not JSON. */
  private step(c: number, i: number): boolean {
    const top = this.closers[this.closers.length - 1]
    switch (this.expect) {
      case "value":
        if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
          this.closers.push(c === 0x7b ? "}" : "]")
          if (this.closers.length > this.maxDepth) return false
          this.dropTo = i + 1
          this.expect = c === 0x7b ? "key" : "value"
          return true
        }
        if (c === 0x22) {
          this.inString = true
          this.stringIsKey = false
          return true
        }
        if (c === 0x5d /* ] */ && top === "]") return this.close(i)
        if (c === 0x2d /* - */ || (c >= 0x30 && c <= 0x39) || c === 0x74 /* t */ || c === 0x66 /* f */ || c === 0x6e /* n */) {
          this.inScalar = true
          return true
        }
        return false
      case "key":
        if (c === 0x22) {
          this.inString = true
          this.stringIsKey = true
          return true
        }
        return c === 0x7d /* } */ && top === "}" && this.close(i)
      case "colon":
        if (c !== 0x3a /* : */) return false
        this.expect = "value"
        return true
      case "after":
        if (c === 0x2c /* , */) {
          this.dropTo = i
          this.expect = top === "}" ? "key" : "value"
          return true
        }
        return (c === 0x7d && top === "}") || (c === 0x5d && top === "]") ? this.close(i) : false
      case "done":
        return true
    }
  }

  private close(i: number): true {
    this.closers.pop()
    this.valueDone(i + 1)
    return true
  }

  private valueDone(end: number): void {
    this.valueEnd = end
    this.expect = this.closers.length === 0 ? "done" : "after"
  }
}

const isDelimiter = (c: number): boolean =>
  c === 0x2c || c === 0x5d || c === 0x7d || c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09
