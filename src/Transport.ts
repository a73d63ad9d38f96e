/**
 * How provider requests reach the network. Every provider sends through a `Transport` when
 * one is provided, and through the `HttpClient` it requires when not, so a stack chooses
 * its transport by swapping one layer:
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
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { makeHttpClient } from "./internal/transport/httpClient.js"
import type * as internal from "./internal/transport/types.js"
import { makeUndici } from "./internal/transport/undici.js"

export type Request = internal.TransportRequest
export type TextReply = internal.TextReply
export type StreamReply = internal.StreamReply
export type Service = internal.Service
export { TransportFailure } from "./internal/transport/types.js"

export class Transport extends Context.Tag("effect-llm/Transport")<Transport, Service>() {}

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
