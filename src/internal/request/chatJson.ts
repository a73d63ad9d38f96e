/**
 * A chat JSON call. Its common case runs as plain code around the transport's one `Effect`:
 * a limiter and a key pool in memory that admit and lease at once, a usage tracker in memory,
 * a transport that keeps its own deadlines. The admission, the lease, the span, the reply's
 * head, decoding, reports, settlement and usage are then synchronous steps (`syncOps.ts`)
 * instead of some forty small `Effect`s through the fiber's loop, which cost more CPU than
 * the HTTP exchange itself.
 *
 * Everything else takes the general path (`exchange.ts`), which this matches step for step,
 * same span, metrics, reports and errors: a wait for admission or for a key, a re-try on
 * another key, an auth that signs credentials, a pool that chooses by latency, and any
 * pool, limiter, tracker or transport of your own or over Redis.
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Err from "../../LlmError.js"
import type * as KeyPool from "../../KeyPool.js"
import type { ChatResponse } from "../../Message.js"
import { type TextReply, type TransportFailure, untraced } from "../transport/types.js"
import type { Endpoint, Outgoing } from "./endpoint.js"
import type { ReadError } from "./errorBody.js"
import { redactSecret } from "./errors.js"
import {
  bodyError,
  type Budget,
  decodeSafely,
  jsonAttempt,
  jsonBudget,
  retryOnAnotherKey,
  sendJson,
  statusError,
  transportError,
  type Tried
} from "./exchange.js"
import { goesToAnotherKey, type HeldLease, leaseNow, observeHead, reportNow, type SyncParts, syncPartsOf } from "./fastPath.js"
import { type ChatRecording, startChat } from "./telemetry.js"

type Decode = (body: string, status: number) => ChatResponse | Err.LlmError

const totalTokensOf = (response: ChatResponse) => response.usage.totalTokens

/** A chat JSON exchange, traced and measured (see the module's header for which path it takes). */
export const sendChat = (endpoint: Endpoint, out: Outgoing, read: ReadError, decode: Decode): Effect.Effect<ChatResponse, Err.LlmError> => {
  const parts = syncPartsOf(endpoint)
  if (parts === undefined) return sendJson(endpoint, out, read, decode)
  // uninterruptible until the send: an admission or a lease taken is always given back
  return Effect.uninterruptibleMask((restore) =>
    Effect.withFiberRuntime<ChatResponse, Err.LlmError>((fiber) => {
      const rec = startChat(fiber, endpoint.provider, out.model)
      if (rec === undefined) return restore(sendJson(endpoint, out, read, decode))
      return new Call(endpoint, out, read, decode, parts, rec, restore).run()
    })
  )
}

const onSuccessOf = (endpoint: Endpoint, out: Outgoing) => {
  const usage = endpoint.usage
  return usage === undefined ? undefined : (response: ChatResponse) => usage.record(endpoint.provider, out.model, response.usage)
}

/** One call on the fast path: its lease and budget, and the steps around the send. */
class Call {
  private readonly budget: Budget
  private readonly tried: Tried = { keys: new Set(), lastKey: undefined, last: undefined }
  private held: HeldLease | undefined = undefined

  constructor(
    private readonly endpoint: Endpoint,
    private readonly out: Outgoing,
    private readonly read: ReadError,
    private readonly decode: Decode,
    private readonly parts: SyncParts,
    private readonly rec: ChatRecording,
    private readonly restore: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  ) {
    this.budget = jsonBudget(endpoint, out.model, rec.clock)
  }

  run(): Effect.Effect<ChatResponse, Err.LlmError> {
    const { endpoint, out, parts, rec } = this
    const ambient = rec.ambient
    const held = leaseNow(endpoint, parts, out.estimatedTokens, ambient)
    // admission or a key would wait: the general path waits
    if (held === undefined) return this.general()
    const lease = held.lease
    this.held = held
    this.tried.keys.add(lease.keyId)
    this.tried.lastKey = lease.keyId
    const headers: Record<string, string> = { "content-type": "application/json", ...endpoint.headers, ...out.headers }
    if (lease.key !== undefined) Object.assign(headers, endpoint.auth(lease.key))
    const ms = this.budget.left()
    const send = endpoint.transport.text({
      url: out.url,
      headers,
      body: out.body,
      secretHeaders: endpoint.redactedHeaders,
      maxBodyBytes: endpoint.maxResponseBytes,
      timeoutMs: ms === Infinity ? undefined : ms
    })
    return Effect.matchCauseEffect(this.restore(untraced.has(endpoint.transport) ? send : Effect.withParentSpan(send, rec.span)), {
      onFailure: (cause) => {
        const failure = Cause.failureOption(cause)
        if (failure._tag === "Some") return this.failed(this.sendFailed(failure.value, lease))
        // interrupted, or a defect: no failure of the transport's inside
        const other = cause as Cause.Cause<never>
        this.release()
        rec.end(Exit.failCause(other))
        return Effect.failCause(other)
      },
      onSuccess: (reply) => {
        const result = this.replied(reply, lease)
        if (Err.isLlmError(result)) return this.failed(result)
        this.release()
        const usage = parts.usage
        if (usage !== undefined && !usage.record(endpoint.provider, out.model, result.usage, ambient)) {
          // a record that logs (a model's first unpriced call) runs as the tracker's Effect
          return Effect.as(Effect.ensuring(this.endpoint.usage!.record(endpoint.provider, out.model, result.usage), Effect.sync(() => rec.succeed(result))), result)
        }
        rec.succeed(result)
        return Effect.succeed(result)
      }
    })
  }

  private release(): void {
    const held = this.held
    this.held = undefined
    held?.release()
  }

  private report(keyId: string, outcome: KeyPool.Outcome): void {
    this.parts.pool.report(keyId, outcome, this.rec.ambient)
  }

  /** A send that failed below HTTP: the deadline's error, or a network failure, which counts against the key. */
  private sendFailed(cause: TransportFailure, lease: KeyPool.Lease): Err.LlmError {
    const error = transportError(this.endpoint, this.out.model, this.budget, cause)
    if (error._tag !== "TimeoutError") this.report(lease.keyId, { _tag: "Failure" })
    return error
  }

  /** The reply's head fed to the limiter, then its body decoded: the response, or its typed error (reported). */
  private replied(reply: TextReply, lease: KeyPool.Lease): ChatResponse | Err.LlmError {
    const { endpoint, out, parts, read, rec } = this
    const now = rec.clock.unsafeCurrentTimeMillis()
    const { body, headers, status } = reply
    observeHead(parts, lease, status, headers, now, rec.ambient)
    const reported = (error: Err.LlmError) => {
      reportNow(parts, lease.keyId, error, rec.ambient)
      return error
    }
    if (status >= 300) return reported(statusError(endpoint, out, read, lease, status, headers, body, now))
    const early = bodyError(endpoint, out, read, lease, headers, body, now, false)
    if (early !== undefined) return reported(early)
    const decoded = decodeSafely(endpoint, out, this.decode, body, status)
    if (Err.isLlmError(decoded)) {
      const embedded = bodyError(endpoint, out, read, lease, headers, body, now, true)
      if (embedded !== undefined) return reported(embedded)
      this.report(lease.keyId, { _tag: "Failure" })
      return redactSecret(decoded, lease.key)
    }
    this.report(lease.keyId, { _tag: "Success" })
    parts.limiter.settle(totalTokensOf(decoded), out.estimatedTokens)
    return decoded
  }

  /** A failed attempt: re-tried on another key when the failure was its key's and another can serve. */
  private failed(error: Err.LlmError): Effect.Effect<ChatResponse, Err.LlmError> {
    this.release()
    if (goesToAnotherKey(this.parts, this.tried, error)) return this.general()
    this.rec.end(Exit.fail(error))
    return Effect.fail(error)
  }

  /** The rest of the call on the general path, under this call's span. */
  private general(): Effect.Effect<ChatResponse, Err.LlmError> {
    const { endpoint, out, rec } = this
    const attempt = jsonAttempt(endpoint, out, this.read, this.decode, totalTokensOf, onSuccessOf(endpoint, out), rec.clock, this.budget)
    return this.restore(
      Effect.onExit(Effect.withParentSpan(retryOnAnotherKey(endpoint, this.tried, attempt), rec.span), (exit) => Effect.sync(() => rec.end(exit)))
    )
  }
}
