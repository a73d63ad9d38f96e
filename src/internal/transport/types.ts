/**
 * What a transport gives the request path, whichever sends: the whole reply, or its head and
 * a pull over its body; and why an exchange failed below HTTP.
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"

export interface TransportRequest {
  readonly url: string
  readonly headers: Readonly<Record<string, string>>
  readonly body: string
  /** Names of headers that carry a secret, to hide from any span or log the transport writes. */
  readonly secretHeaders: ReadonlyArray<string | RegExp>
  /**
   * `text` reads at most this many bytes: a 2xx reply past it fails (`tooLarge`), an error
   * reply is cut there (its message is at the start).
   */
  readonly maxBodyBytes?: number | undefined
  /**
   * Gives up after this many millis (`timeout` failure) and aborts the request: `text` for the
   * whole reply, `stream` for its head. Honoured by transports whose `timeouts` is true.
   */
  readonly timeoutMs?: number | undefined
}

/** Why an exchange failed below HTTP: never carries the request, so never a key. */
export class TransportFailure {
  readonly _tag = "TransportFailure"
  constructor(
    readonly description: string,
    /** `network`: the connection failed; `tooLarge`: the reply passed `maxBodyBytes`; `timeout`: `timeoutMs` passed. */
    readonly reason: "network" | "tooLarge" | "timeout" = "network",
    /** For `tooLarge`, the cap. */
    readonly limit?: number | undefined
  ) {}
}

export const tooLargeFailure = (limit: number) => new TransportFailure(`reply larger than ${limit} bytes`, "tooLarge", limit)
export const timedOut = new TransportFailure("timed out", "timeout")

/** Runs `task` after `ms` on a plain timer; a deadline costs no fiber, only this (as the official SDKs' AbortController). */
export const timer = (ms: number | undefined, task: () => void): (() => void) => {
  if (ms === undefined || ms === Infinity) return noop
  const handle = setTimeout(task, Math.max(0, Math.min(ms, 2 ** 31 - 1)))
  return () => clearTimeout(handle)
}
const noop = () => {}

/** A thrown value's own description: its code and message, and its cause's; never a request. */
export const describe = (error: unknown): string => {
  if (typeof error === "object" && error !== null) {
    const e = error as { code?: unknown; message?: unknown; cause?: { code?: unknown; message?: unknown } }
    const own = [e.code, e.message].filter((part) => typeof part === "string" && part.length > 0).join(": ")
    const inner = e.cause === undefined ? "" : String(e.cause.code ?? e.cause.message ?? "")
    return [own, inner].filter((part) => part.length > 0).join(": ") || "unknown"
  }
  return String(error)
}

export interface TextReply {
  readonly status: number
  /** Lower-case names; repeated headers joined with ", ". */
  readonly headers: Readonly<Record<string, string>>
  readonly body: string
}

export interface StreamReply {
  readonly status: number
  readonly headers: Readonly<Record<string, string>>
  /** Every body piece received since the last pull (waiting for one if none), or `undefined` at the end. */
  readonly pull: Effect.Effect<ReadonlyArray<Uint8Array> | undefined, TransportFailure>
  /** `pull`, failing with a `timeout` failure when nothing arrives within `ms`; without it, the caller bounds `pull`. */
  readonly pullWithin?: ((ms: number) => Effect.Effect<ReadonlyArray<Uint8Array> | undefined, TransportFailure>) | undefined
}

export interface Service {
  /** Sends and reads the whole reply. Interrupting it aborts the request. */
  readonly text: (request: TransportRequest) => Effect.Effect<TextReply, TransportFailure>
  /** Sends and resolves at the reply's head; the body is released (aborted if unread) when the scope closes. */
  readonly stream: (request: TransportRequest) => Effect.Effect<StreamReply, TransportFailure, Scope.Scope>
  /** Whether `text` and `stream` honour `timeoutMs` themselves; when not, the caller bounds them. */
  readonly timeouts?: boolean | undefined
}

