/**
 * The secrets of one connection and the masking of them. A connection's secrets are the values
 * given as `Redacted` (headers, a stdio server's environment), the values of headers and
 * variables whose names say they are secret (authorization, cookie, *key*, *token*, *secret*,
 * *password*), and a URL's password and such query values. Every text that leaves the connection
 * (an error, a log line, a server's stderr) goes through `mask` first: a server that echoes
 * a request header in its error page leaks nothing.
 */
import * as Redacted from "effect/Redacted"

/** A value that is secret whatever its name, or a plain one. */
export type Value = string | Redacted.Redacted<string>

const secretName = /authorization|cookie|key|token|secret|password|credential/i

/** Shorter strings would mask ordinary words; no real secret is this short. */
const minSecretLength = 4

export const placeholder = "<redacted>"

export class Secrets {
  private readonly values: Array<string> = []

  add(value: string): void {
    for (const candidate of [value, ...value.split(/\s+/)]) {
      if (candidate.length >= minSecretLength && !this.values.includes(candidate)) this.values.push(candidate)
    }
    // the longest first, so a value never leaves a masked part of a longer one in clear
    this.values.sort((a, b) => b.length - a.length)
  }

  /** Records a named value (a header, a variable) when it is secret; the value in clear. */
  named(name: string, value: Value): string {
    const clear = Redacted.isRedacted(value) ? Redacted.value(value) : value
    if (Redacted.isRedacted(value) || secretName.test(name)) this.add(clear)
    return clear
  }

  /** Records a URL's password and the query values whose names say they are secret. */
  url(url: URL): void {
    if (url.password !== "") this.add(decodeURIComponent(url.password))
    for (const [name, value] of url.searchParams) this.named(name, value)
  }

  /** `text` with every secret replaced by `<redacted>`. */
  mask(text: string): string {
    let out = text
    for (const value of this.values) if (out.includes(value)) out = out.split(value).join(placeholder)
    return out
  }
}
