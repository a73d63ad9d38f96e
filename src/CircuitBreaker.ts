/**
 * A circuit breaker per model endpoint. It opens after `consecutiveFailures` failures in a
 * row, or when the failure rate over the last `windowSize` calls reaches `failureRate`
 * (once at least `minimumRequests` calls are in the window). While open, calls fail at
 * once with `CircuitOpenError`, which `Fallback` treats as "skip this step". After
 * `cooldown` it is half-open: one probe call goes through; its success closes the
 * breaker, its failure opens it again.
 *
 * What counts as a failure is what says the endpoint is unwell: server errors, timeouts,
 * network errors, malformed responses and broken streams. Client-side and per-key
 * conditions (429, no key, budget) are ignored; other answers (400, 401, context length…)
 * prove the endpoint is up and count as successes.
 *
 * Where the breaker's state lives is a separate service, `CircuitBreakerStore`: in memory
 * (the default of the `CircuitBreakerStore` reference, each breaker its own) or in Redis
 * (`Redis.layerCircuitBreakerStore` from `effect-llm/Redis`: one breaker per endpoint for
 * every process that uses the same prefix, so that failures one process sees open it for
 * all, and one half-open probe runs across all of them).
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Cause from "effect/Cause"
import * as Channel from "effect/Channel"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as internal from "./internal/circuitBreaker.js"
import { decorate, type Decorator, LanguageModel, wrap } from "./LanguageModel.js"
import { CircuitOpenError, classify, type LlmError, type StoreUnavailableError } from "./LlmError.js"
import type { StreamEvent } from "./Message.js"

/** @since 0.1.0 @category models */
export type State = internal.State

/** @since 0.1.0 @category models */
export type Outcome = internal.Outcome

/** @since 0.1.0 @category models */
export interface Options {
  /** The name in `status` and errors. Default `provider/model` of the wrapped model. */
  readonly endpoint?: string | undefined
  /** Failures in a row that open the breaker. Default 5. */
  readonly consecutiveFailures?: number | undefined
  /** The failure ratio over the window that opens the breaker. Default 0.5. */
  readonly failureRate?: number | undefined
  /** How many recent calls the sliding window holds. Default 20. */
  readonly windowSize?: number | undefined
  /** The ratio rule applies only once the window holds this many calls. Default 10. */
  readonly minimumRequests?: number | undefined
  /** How long the breaker stays open before letting a probe through. Default 30 seconds. */
  readonly cooldown?: Duration.DurationInput | undefined
  /** How an error counts; see the module notes for the default. */
  readonly classify?: ((error: LlmError) => Outcome) | undefined
}

/** @since 0.1.0 @category models */
export interface Status {
  readonly endpoint: string
  readonly state: State
  readonly consecutiveFailures: number
  /** Failures over calls in the window, 0 when it is empty. */
  readonly failureRate: number
  readonly requestsInWindow: number
  /** Epoch millis when it last opened, while not closed. */
  readonly openedAt: number | undefined
  /** Epoch millis when a probe will be let through, while open. */
  readonly retryAt: number | undefined
}

/** @since 0.1.0 @category models */
export interface Service {
  readonly endpoint: string
  /** Runs `effect` through the breaker; fails fast with `CircuitOpenError` while open. */
  readonly protect: <A, R>(effect: Effect.Effect<A, LlmError, R>) => Effect.Effect<A, LlmError, R>
  /** A stream through the breaker: admitted when it starts, settled when it ends. */
  readonly protectStream: <R>(stream: Stream.Stream<StreamEvent, LlmError, R>) => Stream.Stream<StreamEvent, LlmError, R>
  /** The model with `chat` and `stream` through the breaker. */
  readonly decorator: Decorator
  readonly status: Effect.Effect<Status>
}

/**
 * The default classification.
 * @since 0.1.0 @category utils
 */
export const defaultClassify = (error: LlmError): Outcome => classify(error).breaker

const transitions = Metric.counter("effect_llm_circuit_transitions_total", {
  description: "Circuit breaker state changes, tagged by endpoint and new state"
})

const positive = (name: string, value: number, integer: boolean): Either.Either<number, ConfigError.ConfigError> =>
  !(value > 0) || (integer && !Number.isInteger(value))
    ? Either.left(
      ConfigError.InvalidData([name], `CircuitBreaker: ${name} must be a positive ${integer ? "whole number" : "number"}, got ${value}`)
    )
    : Either.right(value)

/**
 * A breaker. `provider` and `model` name the endpoint in `CircuitOpenError`. An option that is
 * not a positive number (a whole one for counts) fails with a `ConfigError` naming it.
 * @since 0.1.0 @category constructors
 */
export const make = (
  options: Options & { readonly provider: string; readonly model: string }
): Effect.Effect<Service, ConfigError.ConfigError> =>
  Effect.flatMap(
    Effect.suspend(() =>
      Either.all({
        consecutiveFailures: positive("consecutiveFailures", options.consecutiveFailures ?? 5, true),
        failureRate: positive("failureRate", options.failureRate ?? 0.5, false),
        windowSize: positive("windowSize", options.windowSize ?? 20, true),
        minimumRequests: positive("minimumRequests", options.minimumRequests ?? 10, true)
      })
    ),
    (checked) => makeWith(options, { ...checked, cooldownMillis: Duration.toMillis(options.cooldown ?? "30 seconds") })
  )

/** @since 0.1.0 @category stores */
export type Settings = internal.Settings

/**
 * Whether a call may go: allowed (a `probe` when the breaker is half-open; `ticket` is the
 * store's own mark for it), or rejected until `retryAfterMillis` from now.
 * @since 0.1.0 @category stores
 */
export type Admission = internal.Admission

/** @since 0.1.0 @category stores */
export type Snapshot = internal.Snapshot

/**
 * What a store is built for: one endpoint's breaker, and its settings. `onTransition` is
 * called for each state change a call of this process caused (for the transitions metric).
 * @since 0.1.0 @category stores
 */
export interface StoreSpec {
  readonly endpoint: string
  readonly settings: Settings
  readonly onTransition: (to: State) => Effect.Effect<void>
}

/**
 * One breaker's state. `admit` decides and takes the half-open probe in one atomic step
 * (across every process on a shared store); `settle` records a call's outcome. `now` is the
 * caller's clock (a store with a clock of its own, as Redis, uses that). A shared store
 * that cannot answer decides as its options say (see `Redis.layerCircuitBreakerStore`).
 * @since 0.1.0 @category stores
 */
export interface Store {
  readonly admit: (now: number) => Effect.Effect<Admission, StoreUnavailableError>
  readonly settle: (admission: Extract<Admission, { readonly _tag: "Allowed" }>, outcome: Outcome, now: number) => Effect.Effect<void>
  readonly status: (now: number) => Effect.Effect<Snapshot>
}

/**
 * The `CircuitBreakerStore` service: it builds the store of each breaker.
 * @since 0.1.0 @category stores
 */
export interface StoreFactory {
  readonly make: (spec: StoreSpec) => Effect.Effect<Store>
}

/**
 * Where breakers keep their state: a `Context.Reference` that `make` and the decorators read
 * when they build. Its default keeps every breaker in memory, each its own (what
 * `layerStoreMemory` provides); provide `Redis.layerCircuitBreakerStore` from
 * `effect-llm/Redis` to share breakers across processes.
 * @since 0.1.0 @category tags
 */
export class CircuitBreakerStore extends Context.Reference<CircuitBreakerStore>()("effect-llm/CircuitBreakerStore", {
  defaultValue: (): StoreFactory => storesInMemory
}) {}

/**
 * The in-memory store of one breaker: the state machine, every transition one synchronous
 * step, timed by the caller's clock.
 * @since 0.1.0 @category stores
 */
export const makeStoreMemory: (spec: StoreSpec) => Effect.Effect<Store> = internal.memoryStore

const storesInMemory: StoreFactory = { make: makeStoreMemory }

/**
 * Every breaker in memory, each its own: `CircuitBreakerStore`'s default.
 * @since 0.1.0 @category layers
 */
export const layerStoreMemory: Layer.Layer<CircuitBreakerStore> = Layer.succeed(CircuitBreakerStore, storesInMemory)

const makeWith = (
  options: Options & { readonly provider: string; readonly model: string },
  settings: internal.Settings
): Effect.Effect<Service> =>
  Effect.map(
    Effect.flatMap(CircuitBreakerStore, (stores) =>
      stores.make({
        endpoint: options.endpoint ?? `${options.provider}/${options.model}`,
        settings,
        onTransition: (to) =>
          Metric.increment(
            Metric.tagged(Metric.tagged(transitions, "endpoint", options.endpoint ?? `${options.provider}/${options.model}`), "state", to)
          )
      })),
    (store) => serviceOver(options, store)
  )

const serviceOver = (options: Options & { readonly provider: string; readonly model: string }, store: Store): Service => {
  const endpoint = options.endpoint ?? `${options.provider}/${options.model}`
  const classify = options.classify ?? defaultClassify

  const admit = Effect.flatMap(Clock.currentTimeMillis, (now) =>
    Effect.flatMap(store.admit(now), (admission) => {
      if (admission._tag === "Allowed") return Effect.succeed(admission)
      return Effect.fail(
        new CircuitOpenError({
          provider: options.provider,
          model: options.model,
          message: admission.retryAfterMillis > 0
            ? `circuit for ${endpoint} is open; next probe in ${Math.ceil(admission.retryAfterMillis)} ms`
            : `circuit for ${endpoint} is half-open and its probe is in flight`,
          retryAfter: Duration.millis(admission.retryAfterMillis)
        })
      )
    }))
  const settle = (admission: Extract<Admission, { readonly _tag: "Allowed" }>, outcome: Outcome) =>
    Effect.flatMap(Clock.currentTimeMillis, (now) => store.settle(admission, outcome, now))
  const outcomeOfExit = (exit: Exit.Exit<unknown, LlmError>): Outcome => {
    if (Exit.isSuccess(exit)) return "success"
    const failure = Cause.failureOption(exit.cause)
    return Option.isSome(failure) ? classify(failure.value) : "ignore"
  }

  const protect = <A, R>(effect: Effect.Effect<A, LlmError, R>): Effect.Effect<A, LlmError, R> =>
    Effect.uninterruptibleMask((restore) =>
      Effect.flatMap(admit, (admission) => Effect.onExit(restore(effect), (exit) => settle(admission, outcomeOfExit(exit)))))

  // one channel stage: admitted when it starts, settled with how it ended (a consumer that
  // stops early interrupts it, which counts as "ignore")
  const protectStream = <R>(stream: Stream.Stream<StreamEvent, LlmError, R>): Stream.Stream<StreamEvent, LlmError, R> =>
    Stream.fromChannel(Channel.suspend(() => {
      // a consumer that stops early ends the stream without its end: that is no success
      let ended = false
      return Channel.acquireUseRelease(
        admit,
        () => Channel.map(Stream.toChannel(stream), (done) => ((ended = true), done)),
        (admission, exit) => settle(admission, Exit.isSuccess(exit) && !ended ? "ignore" : outcomeOfExit(exit))
      )
    }))

  const service: Service = {
    endpoint,
    protect,
    protectStream,
    decorator: (model) =>
      Effect.succeed(wrap(model, {
        chat: (request) => protect(model.chat(request)),
        stream: (request, tracker) => protectStream(model.stream(request, tracker))
      })),
    status: Effect.flatMap(Clock.currentTimeMillis, (now) => Effect.map(store.status(now), (snapshot) => ({ endpoint, ...snapshot })))
  }
  return service
}

/** @since 0.1.0 @category models */
export interface RegistryService {
  readonly register: (breaker: Service) => Effect.Effect<void, never, Scope.Scope>
  readonly status: Effect.Effect<ReadonlyArray<Status>>
}

/**
 * `Registry`'s default: it keeps no breaker, so `status` is empty.
 * @since 0.1.0 @category constructors
 */
export const unregistered: RegistryService = { register: () => Effect.void, status: Effect.succeed([]) }

/**
 * Where breakers make their status visible: a `Context.Reference` that decorators register
 * with when they build, for the layer's scope. Its default is `unregistered` (no status kept);
 * provide `layerRegistry` to read every breaker's `status`.
 * @since 0.1.0 @category tags
 */
export class Registry extends Context.Reference<Registry>()("effect-llm/CircuitBreaker/Registry", {
  defaultValue: (): RegistryService => unregistered
}) {}

/** @since 0.1.0 @category layers */
export const layerRegistry: Layer.Layer<Registry> = Layer.sync(Registry, (): RegistryService => {
  const breakers = new Set<Service>()
  return {
    register: (breaker) =>
      Effect.acquireRelease(Effect.sync(() => breakers.add(breaker)), () => Effect.sync(() => breakers.delete(breaker))),
    status: Effect.suspend(() => Effect.forEach([...breakers], (breaker) => breaker.status))
  }
})

/**
 * The status of every breaker registered in the `Registry` (empty without `layerRegistry`).
 * @since 0.1.0 @category accessors
 */
export const status: Effect.Effect<ReadonlyArray<Status>, never, Registry> = Effect.flatMap(Registry, (r) => r.status)

/**
 * Registers a breaker with the `Registry` in context (by default none keeps it), for the
 * current scope.
 * @since 0.1.0 @category utils
 */
export const register = (breaker: Service): Effect.Effect<void, never, Scope.Scope> =>
  Effect.flatMap(Registry, (registry) => registry.register(breaker))

/**
 * The decorator: the model below, behind a breaker of its own (registered in the `Registry`
 * in context, for the scope of the layer).
 * @since 0.1.0 @category decorators
 */
export const decorator = (options: Options = {}): Decorator<ConfigError.ConfigError, Scope.Scope> => (inner) =>
  Effect.gen(function* () {
    const breaker = yield* make({ ...options, provider: inner.provider, model: inner.model })
    yield* register(breaker)
    return yield* breaker.decorator(inner)
  })

/**
 * @since 0.1.0 @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<LanguageModel, ConfigError.ConfigError, LanguageModel> =>
  decorate(decorator(options))
