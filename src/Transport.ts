/**
 * How provider requests reach the network. `Transport` is a `Context.Reference` that a
 * provider reads when its layer builds; its default (`viaHttpClient`) sends through the
 * `HttpClient` the provider requires. A stack chooses its transport by swapping one layer:
 *
 * - `Transport.layerUndici` drives undici's dispatcher directly. It is the fast path: about
 *   a third of the CPU per request of going through `@effect/platform`'s HttpClient (see the
 *   README's Benchmark section). It provides an `HttpClient` over the same connection pool
 *   too, so it satisfies a provider's requirements on its own.
 * - `Transport.layerHttpClient` (what a provider does without a Transport) sends through
 *   whatever `HttpClient` is provided: its middleware, tracing and proxies apply.
 *
 * @since 0.1.0
 */
import * as HttpClient from "@effect/platform/HttpClient"
// the subpath: the package index also loads cluster, rpc, sql, msgpackr and ws
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { makeHttpClient } from "./internal/transport/httpClient.js"
import * as internal from "./internal/transport/types.js"
import { makeUndici } from "./internal/transport/undici.js"

/**
 * One request as a provider hands it to a transport: `url`, `headers` (with the key),
 * `body`, the names of the headers that hold a secret (never written to a span or log), a
 * cap on the reply's size (`maxBodyBytes`) and a deadline (`timeoutMs`).
 * @since 0.1.0 @category models
 */
export type Request = internal.TransportRequest

/**
 * A whole reply: its status, its headers (lower-case names) and its body as text.
 * @since 0.1.0 @category models
 */
export type TextReply = internal.TextReply

/**
 * A streamed reply: its status and headers, and `pull`, which gives the body pieces received
 * since the last pull, or `undefined` at the end.
 * @since 0.1.0 @category models
 */
export type StreamReply = internal.StreamReply

/**
 * A transport: `text` sends a request and reads the whole reply, `stream` sends one and
 * resolves at the reply's head (the body is released when the scope closes). Interrupting
 * either aborts the request. `timeouts` says whether it honours `Request.timeoutMs` itself.
 * @since 0.1.0 @category models
 */
export type Service = internal.Service

/**
 * Why an exchange failed below HTTP (a `Schema.TaggedError`): `network`, `tooLarge` or
 * `timeout`, with a `description` that never carries the request.
 * @since 0.1.0 @category errors
 */
export const TransportFailure: typeof internal.TransportFailure = internal.TransportFailure
/** @since 0.1.0 @category errors */
export type TransportFailure = internal.TransportFailure

/**
 * The transport providers send through: a `Context.Reference` read when a provider's layer
 * builds. Default `viaHttpClient`.
 * @since 0.1.0 @category references
 */
export const Transport: typeof internal.Transport = internal.Transport
/** @since 0.1.0 @category references */
export type Transport = internal.Transport

/**
 * `Transport`'s default: each provider sends through the `HttpClient` it requires, bound when
 * its layer builds (its middleware, tracing and proxies apply). On its own, outside a
 * provider, it sends nothing: `fromHttpClient(client)` is the transport over a given client.
 * @since 0.1.0 @category references
 */
export const viaHttpClient: Service = internal.viaHttpClient

/**
 * A transport over an undici dispatcher (an `Agent`, a `Pool`, a `ProxyAgent`, …) you own.
 * @since 0.1.0 @category constructors
 */
export const fromDispatcher = makeUndici

/**
 * A transport over any `@effect/platform` HttpClient.
 * @since 0.1.0 @category constructors
 */
export const fromHttpClient = makeHttpClient

/**
 * undici, driven directly, over one keep-alive `Agent` closed with the layer; with an
 * `HttpClient` over the same agent for anything else in the stack that wants one.
 * @since 0.1.0 @category layers
 */
export const layerUndici: Layer.Layer<Transport | HttpClient.HttpClient> = Layer.merge(
  Layer.effect(Transport, Effect.map(NodeHttpClient.Dispatcher, makeUndici)),
  NodeHttpClient.layerUndiciWithoutDispatcher
).pipe(Layer.provide(NodeHttpClient.dispatcherLayer))

/**
 * Sends through the provided `HttpClient`: the behaviour of a provider given no Transport.
 * @since 0.1.0 @category layers
 */
export const layerHttpClient: Layer.Layer<Transport, never, HttpClient.HttpClient> = Layer.effect(
  Transport,
  Effect.map(HttpClient.HttpClient, makeHttpClient)
)
