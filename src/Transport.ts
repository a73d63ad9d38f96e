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

export type Request = internal.TransportRequest
export type TextReply = internal.TextReply
export type StreamReply = internal.StreamReply
export type Service = internal.Service

/** Why an exchange failed below HTTP (a `Schema.TaggedError`); never carries the request. */
export const TransportFailure: typeof internal.TransportFailure = internal.TransportFailure
export type TransportFailure = internal.TransportFailure

/**
 * The transport providers send through: a `Context.Reference` read when a provider's layer
 * builds. Default `viaHttpClient`.
 */
export const Transport: typeof internal.Transport = internal.Transport
export type Transport = internal.Transport

/**
 * `Transport`'s default: each provider sends through the `HttpClient` it requires, bound when
 * its layer builds (its middleware, tracing and proxies apply). On its own, outside a
 * provider, it sends nothing: `fromHttpClient(client)` is the transport over a given client.
 */
export const viaHttpClient: Service = internal.viaHttpClient

/** A transport over an undici dispatcher (an `Agent`, a `Pool`, a `ProxyAgent`, …) you own. */
export const fromDispatcher = makeUndici

/** A transport over any `@effect/platform` HttpClient. */
export const fromHttpClient = makeHttpClient

/**
 * undici, driven directly, over one keep-alive `Agent` closed with the layer; with an
 * `HttpClient` over the same agent for anything else in the stack that wants one.
 */
export const layerUndici: Layer.Layer<Transport | HttpClient.HttpClient> = Layer.merge(
  Layer.effect(Transport, Effect.map(NodeHttpClient.Dispatcher, makeUndici)),
  NodeHttpClient.layerUndiciWithoutDispatcher
).pipe(Layer.provide(NodeHttpClient.dispatcherLayer))

/** Sends through the provided `HttpClient`: the behaviour of a provider given no Transport. */
export const layerHttpClient: Layer.Layer<Transport, never, HttpClient.HttpClient> = Layer.effect(
  Transport,
  Effect.map(HttpClient.HttpClient, makeHttpClient)
)
