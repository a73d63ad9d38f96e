/**
 * Health checks: a background fiber, scoped to the layer, probes each registered endpoint
 * every `interval` and reports it `connected`, `slow` or `disconnected` with the last
 * latency. It needs no reset: the next good probe marks the endpoint connected again.
 * `Fallback` (with `skipDisconnected`) skips endpoints reported disconnected.
 *
 * @since 0.1.0
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as Clock from "effect/Clock"
import * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Scope from "effect/Scope"
import type { Service as Model } from "./LanguageModel.js"
import { isLlmError } from "./LlmError.js"
import { user } from "./Message.js"

/** @since 0.1.0 @category models */
export type Connection = "connected" | "slow" | "disconnected"

/** @since 0.1.0 @category models */
export interface EndpointStatus {
  readonly name: string
  /** `unknown` until the first probe finishes. */
  readonly status: Connection | "unknown"
  /** The latency of the last successful probe. */
  readonly latency: Duration.Duration | undefined
  /** Epoch millis of the last finished probe. */
  readonly checkedAt: number | undefined
  readonly consecutiveFailures: number
  /** Why the last probe failed, when it did. */
  readonly lastError: string | undefined
}

/**
 * An endpoint to watch. A probe should be cheap: `probeHttp` on a models or tags URL,
 * or `probeChat`, which spends one output token.
 * @since 0.1.0 @category models
 */
export interface Endpoint {
  readonly name: string
  readonly probe: Effect.Effect<unknown, unknown>
}

/** @since 0.1.0 @category models */
export interface Options {
  /** Time between probes. Default 30 seconds. */
  readonly interval?: Duration.DurationInput | undefined
  /** A probe slower than this fails. Default 10 seconds. */
  readonly timeout?: Duration.DurationInput | undefined
  /** A probe slower than this reports `slow`. Default 2 seconds. */
  readonly slowThreshold?: Duration.DurationInput | undefined
  /** Failed probes in a row that make an endpoint `disconnected`. Default 1. */
  readonly failuresToDisconnect?: number | undefined
  /** Endpoints watched from the start. */
  readonly endpoints?: ReadonlyArray<Endpoint> | undefined
}

/** @since 0.1.0 @category models */
export interface Service {
  /** Watches an endpoint until the scope closes; its first probe starts at once. */
  readonly register: (endpoint: Endpoint) => Effect.Effect<void, never, Scope.Scope>
  readonly status: Effect.Effect<ReadonlyArray<EndpointStatus>>
  readonly get: (name: string) => Effect.Effect<EndpointStatus | undefined>
  /** Probes every endpoint now, and waits for the results. */
  readonly checkNow: Effect.Effect<void>
}

/** @since 0.1.0 @category tags */
export class Health extends Context.Tag("effect-llm/Health")<Health, Service>() {}

const describe = (error: unknown): string =>
  isLlmError(error) ? `${error._tag}: ${error.message}` : error instanceof Error ? error.message : String(error)

/**
 * Builds the service and starts its fiber in the current scope.
 * @since 0.1.0 @category constructors
 */
export const make = (options: Options = {}): Effect.Effect<Service, ConfigError.ConfigError, Scope.Scope> =>
  Effect.gen(function* () {
    const interval = Duration.decode(options.interval ?? "30 seconds")
    const timeout = Duration.decode(options.timeout ?? "10 seconds")
    const slowMillis = Duration.toMillis(options.slowThreshold ?? "2 seconds")
    const failuresToDisconnect = options.failuresToDisconnect ?? 1
    if (!(failuresToDisconnect >= 1)) {
      return yield* Effect.fail(
        ConfigError.InvalidData(["failuresToDisconnect"], `Health: failuresToDisconnect must be ≥ 1, got ${failuresToDisconnect}`)
      )
    }
    const scope = yield* Effect.scope
    const endpoints = new Map<string, { readonly endpoint: Endpoint; status: EndpointStatus }>()

    const probeOne = (name: string) =>
      Effect.suspend(() => {
        const entry = endpoints.get(name)
        if (entry === undefined) return Effect.void
        return Effect.gen(function* () {
          const start = yield* Clock.currentTimeMillis
          const result = yield* entry.endpoint.probe.pipe(
            Effect.timeoutFail({ duration: timeout, onTimeout: () => `no answer within ${Duration.format(timeout)}` }),
            Effect.either
          )
          const now = yield* Clock.currentTimeMillis
          const previous = entry.status
          entry.status = result._tag === "Right"
            ? {
              name,
              status: now - start > slowMillis ? "slow" : "connected",
              latency: Duration.millis(now - start),
              checkedAt: now,
              consecutiveFailures: 0,
              lastError: undefined
            }
            : {
              name,
              status: previous.consecutiveFailures + 1 >= failuresToDisconnect ? "disconnected" : previous.status,
              latency: previous.latency,
              checkedAt: now,
              consecutiveFailures: previous.consecutiveFailures + 1,
              lastError: describe(result.left)
            }
        }).pipe(Effect.withSpan("Health.probe", { attributes: { endpoint: name } }))
      })

    const checkNow = Effect.suspend(() =>
      Effect.forEach([...endpoints.keys()], probeOne, { concurrency: "unbounded", discard: true })
    )

    yield* Effect.forkIn(Effect.forever(Effect.delay(checkNow, interval)), scope)

    const service: Service = {
      register: (endpoint) =>
        Effect.acquireRelease(
          Effect.sync(() => {
            endpoints.set(endpoint.name, {
              endpoint,
              status: {
                name: endpoint.name,
                status: "unknown",
                latency: undefined,
                checkedAt: undefined,
                consecutiveFailures: 0,
                lastError: undefined
              }
            })
          }),
          () => Effect.sync(() => endpoints.delete(endpoint.name))
        ).pipe(Effect.zipRight(Effect.asVoid(Effect.forkIn(probeOne(endpoint.name), scope)))),
      status: Effect.sync(() => [...endpoints.values()].map((entry) => entry.status)),
      get: (name) => Effect.sync(() => endpoints.get(name)?.status),
      checkNow
    }
    for (const endpoint of options.endpoints ?? []) yield* service.register(endpoint)
    return service
  })

/** @since 0.1.0 @category layers */
export const layer = (options?: Options): Layer.Layer<Health, ConfigError.ConfigError> => Layer.scoped(Health, make(options))

/** @since 0.1.0 @category accessors */
export const status: Effect.Effect<ReadonlyArray<EndpointStatus>, never, Health> = Effect.flatMap(Health, (h) => h.status)

/**
 * A probe that sends a one-token chat. It costs a token per probe on paid providers.
 * @since 0.1.0 @category probes
 */
export const probeChat = (model: Model): Effect.Effect<unknown, unknown> =>
  model.chat({ messages: [user("ping")], maxTokens: 1 })

/**
 * A probe that GETs a URL (for example `…/v1/models`, or Ollama's `/api/tags`). Any
 * answer below 500 counts as reachable: a 401 still proves the server is up.
 * @since 0.1.0 @category probes
 */
export const probeHttp = (
  url: string,
  headers?: Record<string, string>
): Effect.Effect<Effect.Effect<unknown, unknown>, never, HttpClient.HttpClient> =>
  Effect.map(HttpClient.HttpClient, (client) =>
    Effect.scoped(
      Effect.flatMap(client.get(url, headers === undefined ? undefined : { headers }), (response) =>
        response.status >= 500 ? Effect.fail(`status ${response.status}`) : Effect.void)
    ))
