/**
 * One exchange: admission, a key lease, the HTTP call within the call's budget, the reply's
 * head mapped to a typed error and reported against the key, and an immediate re-try on
 * another key for failures that are the key's. JSON calls end here; streams go on in
 * `stream.ts`.
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as KeyPool from "../../KeyPool.js"
import * as Err from "../../LlmError.js"
import type { ChatResponse } from "../../Message.js"
import { renewedAfter } from "./credentials.js"
import { embeddedError, fromResponse, redactSecret, startsLikeErrorBody } from "./errors.js"
import { type ReadError } from "./errorBody.js"
import { reportError } from "../keyPool.js"
import * as Telemetry from "./telemetry.js"
import { type StreamReply, timedOut, type TransportFailure, type TransportRequest } from "../transport/types.js"
import { type Endpoint, type Outgoing, networkError } from "./endpoint.js"
export const requestFor = (endpoint: Endpoint, out: Outgoing, lease: KeyPool.Lease) => {
  const headers: Record<string, string> = { "content-type": "application/json", ...endpoint.headers, ...out.headers }
  if (lease.key !== undefined) Object.assign(headers, endpoint.auth(lease.key))
  return { url: out.url, headers, body: out.body, secretHeaders: endpoint.redactedHeaders, maxBodyBytes: endpoint.maxResponseBytes }
}

export const withoutRetryAfter = (headers: Readonly<Record<string, string | undefined>>) => {
  const { "retry-after": _seconds, "retry-after-ms": _millis, ...rest } = headers
  return rest
}

export const isKeySpecific = (error: Err.LlmError) => Err.classify(error).anotherKey

/**
 * Admits the request with the limiter, then leases a key in the current scope. A wait for
 * admission or a key is bounded by the call's budget when the caller set a `timeout` (the
 * defaults guard the network, where stalls happen; a wait here is bounded by the limits).
 */
const admitAndLease = (endpoint: Endpoint, out: Outgoing, tried: Tried, budget: Budget) => {
  const admitted = Effect.zipRight(
    Telemetry.timeAdmission(endpoint.limiter.admit({ requests: 1, tokens: out.estimatedTokens, reattempt: tried.last !== undefined })),
    Effect.flatMap(endpoint.pool.acquire, (lease) => {
      // an immediate re-try goes to another key: one this call already tried ends it
      if (tried.keys.has(lease.keyId) && tried.last !== undefined) return Effect.fail(tried.last)
      tried.keys.add(lease.keyId)
      tried.lastKey = lease.keyId
      return Effect.as(Telemetry.countLease(endpoint.provider), lease)
    })
  )
  if (!endpoint.timeoutGiven) return admitted
  return Effect.suspend(() => {
    const ms = budget.left()
    return ms === Infinity ? admitted : Effect.timeoutFail(admitted, { duration: Math.max(0, ms), onTimeout: () => budget.timeout() })
  })
}

/**
 * Feeds a reply's head to the limiter and, for a status other than 2xx, reads the body and
 * fails with the typed error (the body read by the API's `read`), reported against the key.
 * Resolves to true instead when `mayRenew` and the key's auth signs credentials and says this
 * 401 was an expired one (`credentials.renewedAfter`): the caller then sends once more, and
 * the key is not blamed.
 */
const checkHead = (
  endpoint: Endpoint,
  out: Outgoing,
  read: ReadError,
  lease: KeyPool.Lease,
  status: number,
  headers: Readonly<Record<string, string>>,
  body: Effect.Effect<string>,
  mayRenew: boolean
): Effect.Effect<boolean, Err.LlmError> => {
  // A 429's retry-after is about the key that got it, which the pool cools down. The
  // limiter pauses everyone only when no other key could serve: backoff is for when
  // every key is busy.
  const observed = status === 429
    ? Effect.flatMap(endpoint.pool.hasHealthyKey(lease.keyId), (anotherKey) =>
      endpoint.limiter.observe(anotherKey ? withoutRetryAfter(headers) : headers))
    : endpoint.limiter.observe(headers)
  if (status < 300) return Effect.as(observed, false)
  return Effect.gen(function* () {
    yield* observed
    const text = yield* body
    if (mayRenew && status === 401 && lease.key !== undefined && renewedAfter(endpoint.auth, lease.key, text)) return true
    const error = statusError(endpoint, out, read, lease, status, headers, text, yield* Clock.currentTimeMillis)
    yield* reportError(endpoint.pool.report, lease.keyId, error)
    return yield* Effect.fail(error)
  })
}

/** A reply's error status as its typed error (the body read by the API's `read`), the key masked. */
export const statusError = (
  endpoint: Endpoint,
  out: Outgoing,
  read: ReadError,
  lease: KeyPool.Lease,
  status: number,
  headers: Readonly<Record<string, string>>,
  body: string,
  now: number
): Err.LlmError => redactSecret(fromResponse({ provider: endpoint.provider, model: out.model, status, headers, body, now }, read), lease.key)

/** The remaining time of a call, in millis (`Infinity` for none), and the error when it passes (called as methods). */
export interface Budget {
  readonly left: () => number
  readonly timeout: () => Err.TimeoutError
}

/** A transport failure as the typed error: the deadline's own, a size cap, or a network failure. */
export const transportError = (endpoint: Endpoint, model: string, budget: Budget, cause: TransportFailure): Err.LlmError =>
  cause.reason === "timeout" ? budget.timeout() : networkError(endpoint, model, cause)

export const timedOutFailure = timedOut

/** `send`, bounded by the budget left: by the transport's own timer, or, for a transport without one, by the fiber. */
const sendWithin = <Reply, R>(
  endpoint: Endpoint,
  send: (request: TransportRequest) => Effect.Effect<Reply, TransportFailure, R>,
  request: TransportRequest,
  budget: Budget
): Effect.Effect<Reply, TransportFailure, R> => {
  const ms = budget.left()
  if (ms === Infinity) return send(request)
  if (endpoint.transport.timeouts === true) return send({ ...request, timeoutMs: ms })
  return Effect.timeoutFail(send(request), { duration: Math.max(0, ms), onTimeout: () => timedOutFailure })
}

/**
 * Admits, leases, and sends with `send` within the budget; a reply other than 2xx becomes
 * its typed error (its body read with `bodyOf`). Resolves to the 2xx reply and the lease.
 */
const exchange = <Reply extends { readonly status: number; readonly headers: Readonly<Record<string, string>> }, R>(
  endpoint: Endpoint,
  out: Outgoing,
  read: ReadError,
  tried: Tried,
  budget: Budget,
  send: (request: TransportRequest) => Effect.Effect<Reply, TransportFailure, R>,
  bodyOf: (reply: Reply) => Effect.Effect<string>
) =>
  Effect.flatMap(admitAndLease(endpoint, out, tried, budget), (lease) => {
    const sendOnce = (mayRenew: boolean): Effect.Effect<readonly [Reply, KeyPool.Lease], Err.LlmError, R> =>
      sendWithin(endpoint, send, requestFor(endpoint, out, lease), budget).pipe(
        Effect.mapError((cause) => transportError(endpoint, out.model, budget, cause)),
        // a connection that failed counts against the key; a deadline is the call's, not the key's
        Effect.tapError((error) => (error._tag === "TimeoutError" ? Effect.void : endpoint.pool.report(lease.keyId, { _tag: "Failure" }))),
        Effect.flatMap((reply) =>
          Effect.flatMap(checkHead(endpoint, out, read, lease, reply.status, reply.headers, bodyOf(reply), mayRenew), (renewed) =>
            renewed
              // a signed credential the server called expired was dropped: one more send on the
              // same key, with a fresh one, admitted like any request; a second 401 is the key's
              ? Effect.zipRight(endpoint.limiter.admit({ requests: 1, tokens: 0, reattempt: true }), sendOnce(false))
              : Effect.succeed([reply, lease] as const))
        )
      )
    return sendOnce(true)
  })

/** An error reply's body is read this far at most: its message and type are at the start. */
const ERROR_BODY_CHARS = 1024 * 1024

/** What is left in a streamed body, as text, up to `ERROR_BODY_CHARS`, within the budget. */
export const readRest = (reply: StreamReply, budget: Budget): Effect.Effect<string> =>
  Effect.suspend(() => {
    const decoder = new TextDecoder()
    let text = ""
    const pull = Effect.suspend(() => {
      const ms = budget.left()
      if (ms === Infinity) return reply.pull
      if (reply.pullWithin !== undefined) return reply.pullWithin(ms)
      return Effect.timeoutFail(reply.pull, { duration: Math.max(0, ms), onTimeout: () => timedOutFailure })
    })
    const loop: Effect.Effect<string, TransportFailure> = Effect.flatMap(pull, (pieces) => {
      if (pieces === undefined) return Effect.succeed(text + decoder.decode())
      for (const piece of pieces) text += decoder.decode(piece, { stream: true })
      return text.length > ERROR_BODY_CHARS ? Effect.succeed(text.slice(0, ERROR_BODY_CHARS)) : loop
    })
    return Effect.orElseSucceed(loop, () => text)
  })

/** Sends for the whole reply; a 2xx reply's body comes back. */
const exchangeText = (endpoint: Endpoint, out: Outgoing, read: ReadError, tried: Tried, budget: Budget) =>
  exchange(endpoint, out, read, tried, budget, endpoint.transport.text, (reply) => Effect.succeed(reply.body))

/**
 * Sends and resolves at a 2xx reply's head; the body stays open in the current scope. A 2xx
 * reply that is JSON where a stream was asked for is read whole: gateways answer a stream
 * request with `200` and an error object.
 */
export const exchangeStream = (endpoint: Endpoint, out: Outgoing, read: ReadError, tried: Tried, budget: Budget) =>
  Effect.flatMap(
    exchange(endpoint, out, read, tried, budget, endpoint.transport.stream, (reply) => readRest(reply, budget)),
    ([reply, lease]) => {
      if (!(reply.headers["content-type"] ?? "").includes("application/json")) return Effect.succeed([reply, lease] as const)
      return Effect.flatMap(Effect.zip(readRest(reply, budget), Clock.currentTimeMillis), ([body, now]) => {
        const embedded = errorInBody(endpoint, lease, bodyError(endpoint, out, read, lease, reply.headers, body, now, true))
        if (embedded !== undefined) return embedded
        // not an error: frame it as it is (a server that labels its stream as JSON)
        let sent = false
        const replay: StreamReply = {
          status: reply.status,
          headers: reply.headers,
          pull: Effect.sync(() => (sent ? undefined : ((sent = true), [new TextEncoder().encode(body)])))
        }
        return Effect.succeed([replay, lease] as const)
      })
    }
  )

/** An error found in a 2xx body (`bodyError`), reported against the key and failed with; undefined for none. */
const errorInBody = (endpoint: Endpoint, lease: KeyPool.Lease, safe: Err.LlmError | undefined): Effect.Effect<never, Err.LlmError> | undefined =>
  safe === undefined ? undefined : Effect.zipRight(reportError(endpoint.pool.report, lease.keyId, safe), Effect.fail(safe))

/**
 * A 2xx body that is an error object (gateways send rate limits and outages that way) as the
 * typed error the same error under its HTTP status would be; undefined for any other body.
 * `decodeFailed` says the provider's decoder refused the body; otherwise only a body that
 * starts like an error object is parsed a second time.
 */
export const bodyError = (
  endpoint: Endpoint,
  out: Outgoing,
  read: ReadError,
  lease: KeyPool.Lease,
  headers: Readonly<Record<string, string>>,
  body: string,
  now: number,
  decodeFailed: boolean
): Err.LlmError | undefined => {
  if (!decodeFailed && !startsLikeErrorBody(body)) return undefined
  const error = embeddedError({ provider: endpoint.provider, model: out.model, headers, now }, body, read)
  return error === undefined ? undefined : redactSecret(error, lease.key)
}

/** The keys one call has leased, and why the last attempt failed. */
export interface Tried {
  readonly keys: Set<string>
  lastKey: string | undefined
  last: Err.LlmError | undefined
}

/** A safety bound on immediate re-tries, whatever the pool's size. */
export const MAX_KEYS_PER_CALL = 9

/**
 * Runs `attempt` again at once, on another key, when it failed for a reason specific to
 * its key (429, 401, 403, quota) and another healthy key exists. Each key serves a call at
 * most once, so a call makes at most one immediate re-try per other key. Backoff is `Retry`'s.
 */
export const onAnotherKey = <A, R>(
  endpoint: Endpoint,
  attempt: (tried: Tried) => Effect.Effect<A, Err.LlmError, R>
): Effect.Effect<A, Err.LlmError, R> =>
  Effect.suspend(() => retryOnAnotherKey(endpoint, { keys: new Set(), lastKey: undefined, last: undefined }, attempt))

/** `onAnotherKey`'s loop, from the keys `tried` already holds. */
export const retryOnAnotherKey = <A, R>(
  endpoint: Endpoint,
  tried: Tried,
  attempt: (tried: Tried) => Effect.Effect<A, Err.LlmError, R>
): Effect.Effect<A, Err.LlmError, R> => {
  const loop: Effect.Effect<A, Err.LlmError, R> = Effect.catchIf(
    Effect.suspend(() => attempt(tried)),
    (error) => isKeySpecific(error) && tried.keys.size < MAX_KEYS_PER_CALL && error !== tried.last,
    (error) => {
      tried.last = error
      return Effect.flatMap(endpoint.pool.hasHealthyKey(tried.lastKey), (another) => (another ? loop : Effect.fail(error)))
    }
  )
  return loop
}

/**
 * A chat JSON exchange, traced and measured: `decode` turns a 2xx body into a response or a
 * typed error, `read` reads the API's error bodies.
 */
export const sendJson = (
  endpoint: Endpoint,
  out: Outgoing,
  read: ReadError,
  decode: (body: string, status: number) => ChatResponse | Err.LlmError
): Effect.Effect<ChatResponse, Err.LlmError> => {
  const usage = endpoint.usage
  return Telemetry.chat(
    endpoint.provider,
    out.model,
    sendJsonAs(
      endpoint,
      out,
      read,
      decode,
      (response) => response.usage.totalTokens,
      usage === undefined ? undefined : (response) => usage.record(endpoint.provider, out.model, response.usage)
    )
  )
}

/** The budget of one JSON call: its whole `timeout`, from now. */
export const jsonBudget = (endpoint: Endpoint, model: string, clock: Clock.Clock): Budget => {
  const total = endpoint.timeout
  if (!Duration.isFinite(total)) return unlimited
  const ms = Duration.toMillis(total)
  const end = clock.unsafeCurrentTimeMillis() + ms
  return {
    left: () => end - clock.unsafeCurrentTimeMillis(),
    timeout: () =>
      new Err.TimeoutError({
        provider: endpoint.provider,
        model,
        phase: "request",
        message: `${endpoint.provider} request timed out after ${Duration.format(total)}`
      })
  }
}

const unlimited: Budget = {
  left: () => Infinity,
  timeout: () => {
    throw new Error("unreachable: an unlimited budget never times out")
  }
}

const messageOf = (thrown: unknown) => thrown instanceof Error ? thrown.message : String(thrown)

/** A decoder that throws (a custom provider's, or a bug) is a typed failure, never a defect. */
export const decodeSafely = <A>(
  endpoint: Endpoint,
  out: Outgoing,
  decode: (body: string, status: number) => A | Err.LlmError,
  body: string,
  status: number
): A | Err.LlmError => {
  try {
    return decode(body, status)
  } catch (thrown) {
    return new Err.MalformedResponseError({
      provider: endpoint.provider,
      model: out.model,
      status,
      message: `${endpoint.provider} reply could not be decoded: ${messageOf(thrown)}`,
      excerpt: Err.excerptOf(body)
    })
  }
}

/**
 * A JSON exchange for any result (chat, embeddings): `decode` turns a 2xx body into a
 * result or a typed error, `read` reads the API's error bodies, `tokensOf` gives the tokens
 * to settle with the limiter, and `onSuccess` runs after the key is reported healthy.
 */
export const sendJsonAs = <A>(
  endpoint: Endpoint,
  out: Outgoing,
  read: ReadError,
  decode: (body: string, status: number) => A | Err.LlmError,
  tokensOf: (result: A) => number,
  onSuccess?: (result: A) => Effect.Effect<void>
): Effect.Effect<A, Err.LlmError> =>
  Effect.clockWith((clock) => onAnotherKey(endpoint, jsonAttempt(endpoint, out, read, decode, tokensOf, onSuccess, clock, jsonBudget(endpoint, out.model, clock))))

/** One attempt of `sendJsonAs`, on one key, in a scope of its own. */
export const jsonAttempt = <A>(
  endpoint: Endpoint,
  out: Outgoing,
  read: ReadError,
  decode: (body: string, status: number) => A | Err.LlmError,
  tokensOf: (result: A) => number,
  onSuccess: ((result: A) => Effect.Effect<void>) | undefined,
  clock: Clock.Clock,
  budget: Budget
) =>
(tried: Tried): Effect.Effect<A, Err.LlmError> =>
        Effect.scoped(
          Effect.flatMap(exchangeText(endpoint, out, read, tried, budget), ([reply, lease]) => {
            const now = clock.unsafeCurrentTimeMillis()
            const early = errorInBody(endpoint, lease, bodyError(endpoint, out, read, lease, reply.headers, reply.body, now, false))
            if (early !== undefined) return early
            const decoded = decodeSafely(endpoint, out, decode, reply.body, reply.status)
            if (Err.isLlmError(decoded)) {
              const embedded = errorInBody(endpoint, lease, bodyError(endpoint, out, read, lease, reply.headers, reply.body, now, true))
              if (embedded !== undefined) return embedded
              return Effect.zipRight(
                endpoint.pool.report(lease.keyId, { _tag: "Failure" }),
                Effect.fail(redactSecret(decoded, lease.key))
              )
            }
            const observe = endpoint.pool.observe
            const settled = Effect.zipRight(
              observe === undefined
                ? endpoint.pool.report(lease.keyId, { _tag: "Success" })
                : Effect.zipRight(observe(lease), endpoint.pool.report(lease.keyId, { _tag: "Success" })),
              endpoint.limiter.settle(tokensOf(decoded), out.estimatedTokens)
            )
            return Effect.as(onSuccess === undefined ? settled : Effect.zipRight(settled, onSuccess(decoded)), decoded)
          })
        )

