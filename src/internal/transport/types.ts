/**
 * What a transport gives the request path, whichever sends: the whole reply, or its head and
 * a pull over its body; and why an exchange failed below HTTP.
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
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

/**
 * Why an exchange failed below HTTP: never carries the request, so never a key. The request
 * path turns it into an `LlmError` (`NetworkError`, `TimeoutError`, `ResponseTooLargeError`).
 */
export class TransportFailure extends Schema.TaggedError<TransportFailure>()("TransportFailure", {
  description: Schema.String,
  /** `network`: the connection failed; `tooLarge`: the reply passed `maxBodyBytes`; `timeout`: `timeoutMs` passed. */
  reason: Schema.Literal("network", "tooLarge", "timeout"),
  /** For `tooLarge`, the cap. */
  limit: Schema.optional(Schema.Number)
}) {}

/** The connection failed, as `description` (a code and message, never the request) says. */
export const networkFailure = (description: string) => new TransportFailure({ description, reason: "network" })
export const tooLargeFailure = (limit: number) => new TransportFailure({ description: `reply larger than ${limit} bytes`, reason: "tooLarge", limit })
export const timedOut = new TransportFailure({ description: "timed out", reason: "timeout" })

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


/**
 * On a built-in transport's streamed reply: whether the body has ended with nothing left to
 * pull, so that a reader can end after the pull that emptied it instead of pulling once more.
 */
export const drained: unique symbol = Symbol.for("effect-llm/Transport/drained") as never

/** Whether `reply` says (see `drained`) that its body has ended and was pulled to the end. */
export const isDrained = (reply: StreamReply): boolean =>
  (reply as { readonly [drained]?: () => boolean })[drained]?.() === true

/** A streamed reply whose body is released by calling `release` (idempotent), not by a scope. */
export interface ScopelessReply extends StreamReply {
  readonly release: () => void
}

/**
 * The built-in transport's `stream` without a scope: the request path's fast path opens a
 * stream with it and releases the body itself when the stream ends, which spares it a scope
 * per stream (made, extended and closed: tens of µs).
 */
export const scopelessStream = new WeakMap<Service, (request: TransportRequest) => Effect.Effect<ScopelessReply, TransportFailure>>()

/** Transports that write no spans of their own, so a call need not make its span their parent. */
export const untraced = new WeakSet<Service>()

// Marks the default below across copies of this module (an app that loads both the ESM and the CJS build).
const viaHttpClientMark = Symbol.for("effect-llm/Transport/viaHttpClient")

const unbound = Effect.fail(
  networkFailure("Transport.viaHttpClient is bound to a provider's HttpClient when the provider's layer builds; use Transport.fromHttpClient(client) to send through one yourself")
)

/**
 * The default of the `Transport` reference: a provider sends through the `HttpClient` it
 * requires, bound when its layer builds. Used on its own, outside a provider, it sends nothing.
 */
export const viaHttpClient: Service = Object.assign(Object.create(null) as object, {
  [viaHttpClientMark]: true,
  text: () => unbound,
  stream: () => unbound
})

export const isViaHttpClient = (transport: Service): boolean => viaHttpClientMark in transport

export class Transport extends Context.Reference<Transport>()("effect-llm/Transport", {
  defaultValue: (): Service => viaHttpClient
}) {}
