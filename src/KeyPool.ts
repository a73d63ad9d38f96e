/**
 * A pool of API keys for one provider. Each call leases the least-loaded healthy key;
 * outcomes are reported back so that rate-limited keys cool down and rejected keys are
 * disabled. Keys are `Redacted` everywhere and identified by a fingerprint in `status`.
 *
 * Where the pool's state lives is a separate service, `KeyPoolStore`: in memory
 * (`layerStoreMemory`, a min-heap by load, then least recent use; the default of the
 * `KeyPoolStore` reference) or in Redis (`Redis.layerKeyPoolStore` from `effect-llm/Redis`, which
 * shares leases, cooldowns and disables across processes). Leasing, waiting, reporting and
 * errors are written once, over any store.
 *
 * @since 0.1.0
 */
import type * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import * as envKeys from "./internal/envKeys.js"
import * as internal from "./internal/keyPool.js"
import type * as latencyScore from "./internal/latencyScore.js"
import type { LlmError, NoKeyAvailableError, StoreUnavailableError } from "./LlmError.js"

/**
 * A leased key. `key` is undefined for keyless providers (a local Ollama), which still
 * go through a pool with an empty key list so that stacks look the same everywhere.
 * @since 0.1.0 @category models
 */
export interface Lease {
  readonly keyId: string
  readonly key: Redacted.Redacted<string> | undefined
}

/**
 * What happened on a key, as the provider adapters report it.
 * @since 0.1.0 @category models
 */
export type Outcome =
  | { readonly _tag: "Success" }
  /** 429: cool down for `retryAfter`, or the pool's default cooldown. */
  | { readonly _tag: "RateLimited"; readonly retryAfter?: Duration.Duration | undefined }
  /** 401 / 403: the key is disabled. */
  | { readonly _tag: "Rejected"; readonly reason: string }
  /** `insufficient_quota`: disabled until the pool's quota reset. */
  | { readonly _tag: "QuotaExceeded"; readonly reason: string }
  /** Any other failure; counted, the key stays healthy. */
  | { readonly _tag: "Failure" }

/**
 * Where a key stands. A key back from a cooldown or a quota reset is `halfOpen`: it
 * serves one call at a time until a success makes it `healthy` again.
 * @since 0.1.0 @category models
 */
export type KeyState = "healthy" | "halfOpen" | "coolingDown" | "disabled"

/** @since 0.1.0 @category models */
export interface KeyStatus {
  /** A fingerprint of the key, never the key. */
  readonly keyId: string
  readonly state: KeyState
  /** In-flight calls over `maxConcurrentPerKey`, or the in-flight count when there is no maximum. */
  readonly load: number
  readonly inFlight: number
  readonly successes: number
  readonly failures: number
  /** Epoch millis until which the key cools down, when it does. */
  readonly cooldownUntil: number | undefined
  readonly disabledReason: string | undefined
  /** Epoch millis when a quota-disabled key is tried again; undefined when disabled for good. */
  readonly disabledUntil: number | undefined
  readonly lastUsed: number
}

/**
 * The pool. A pool in memory never fails with `StoreUnavailableError`; one in Redis does
 * when Redis does not answer (see `Redis.layerKeyPool` in `effect-llm/Redis`).
 * @since 0.1.0 @category models
 */
export interface Service {
  readonly providerId: string
  /** Leases the least-loaded healthy key until the scope closes. */
  readonly acquire: Effect.Effect<Lease, NoKeyAvailableError | StoreUnavailableError, Scope.Scope>
  /** Leases a key, runs `f`, and reports its outcome. */
  readonly withKey: <A, E, R>(
    f: (lease: Lease) => Effect.Effect<A, E, R>
  ) => Effect.Effect<A, E | NoKeyAvailableError | StoreUnavailableError, R>
  /** Never fails: a report the store cannot take is dropped. */
  readonly report: (keyId: string, outcome: Outcome) => Effect.Effect<void>
  readonly status: Effect.Effect<ReadonlyArray<KeyStatus>, StoreUnavailableError>
  /**
   * Whether another key than `exceptKeyId` could serve right now (for immediate re-tries);
   * false when the store cannot answer.
   */
  readonly hasHealthyKey: (exceptKeyId?: string) => Effect.Effect<boolean>
  /**
   * The first key `rule` refuses, as `key N of M` and the rule's reason, never the key;
   * undefined when it takes them all. For auth schemes that need keys of a shape (Zhipu's
   * `id.secret`), checked as their layer builds. The keys never leave the pool.
   */
  readonly checkKeys: (rule: (key: string) => string | undefined) => string | undefined
  /**
   * Present on a pool that chooses by latency (`latency` option): records the time from
   * `lease` to now as its key's latency sample. The request path calls it when a JSON reply
   * has been read, and when a stream's first event arrives (time to first event, never a
   * per-token figure). A lease released without a sample counts as one at least as long as
   * it was held, when that is longer than the key's average.
   */
  readonly observe?: ((lease: Lease) => Effect.Effect<void>) | undefined
  /** The latency scores of a pool that chooses by latency (this process's), by key fingerprint. */
  readonly scores?: Effect.Effect<ReadonlyArray<KeyScore>> | undefined
}

/**
 * A key's latency score in this process: its weighted latency (undefined before a sample),
 * its weighted error rate, and the calls this process has in flight on it.
 * @since 0.1.0 @category models
 */
export interface KeyScore {
  readonly keyId: string
  readonly latencyMillis: number | undefined
  readonly errorRate: number
  readonly inFlight: number
}

/**
 * The latency-aware choice's settings (the `latency` option): `smoothing`, the weight of a
 * new sample in the average (default 0.3); `exploration`, the share of leases given to the key
 * heard from least recently (default 0.05); `errorPenalty`, how much a key's error rate raises
 * its cost (default 4); `tolerance`, how close two keys' costs must be to count as equal, the pick
 * between them then random (default 0.25).
 * @since 0.1.0 @category models
 */
export type LatencyOptions = latencyScore.Options

/** @since 0.1.0 @category tags */
export class KeyPool extends Context.Tag("effect-llm/KeyPool")<KeyPool, Service>() {}

/** @since 0.1.0 @category models */
export interface Options {
  readonly providerId: string
  readonly keys: ReadonlyArray<Redacted.Redacted<string> | string>
  /** Cooldown after a 429 without retry-after. Default 10 seconds. */
  readonly defaultCooldown?: Duration.DurationInput
  /** How long a key that ran out of quota stays disabled. Default 1 hour. */
  readonly quotaResetAfter?: Duration.DurationInput
  /**
   * At most this many calls at once on one key. When every healthy key is at the
   * maximum, or every key is cooling down, callers wait (in FIFO order) instead of
   * failing with `NoKeyAvailableError`; they still fail when every key is disabled.
   */
  readonly maxConcurrentPerKey?: number
  /**
   * The provider takes no credentials (a local Ollama or vLLM): with no keys, requests go out
   * without an `Authorization` header. Without it, a pool given no keys fails each lease with
   * a non-retryable `NoKeyAvailableError`, so that no request is ever sent without a key by
   * mistake (an empty env var, say).
   */
  readonly keyless?: boolean
  /**
   * Choose keys by latency instead of by load alone (opt-in; least-loaded is the default).
   * Per key, this process keeps a weighted latency (a JSON reply's time; a stream's time to
   * its first event) and error rate; each lease goes to the cheaper of two keys drawn at
   * random, a key's cost being its latency, raised by its errors, times its calls in flight
   * plus one; a small share goes to the key heard from least recently, so that a key that
   * recovered is noticed. The scores stay in each process, also over the Redis store (which
   * still keeps leases, cooldowns and disables shared); a store without `takePreferring`
   * leases by load. `true` takes the defaults of `LatencyOptions`.
   */
  readonly latency?: true | LatencyOptions | undefined
}

// ---------------------------------------------------------------------------
// The store
// ---------------------------------------------------------------------------

/**
 * The result of one attempt to lease a key.
 * @since 0.1.0 @category stores
 */
export type Take =
  | { readonly _tag: "Leased"; readonly keyId: string; readonly leaseId: string }
  /** Healthy keys exist but all are at `maxConcurrentPerKey` (or carry a half-open probe). */
  | { readonly _tag: "Busy" }
  /** No key is healthy; `retryAfterMs` is when the earliest comes back, if one will. */
  | { readonly _tag: "Unavailable"; readonly retryAfterMs: number | undefined }

/**
 * A pool's timings, in millis, as its options give them.
 * @since 0.1.0 @category stores
 */
export interface Timings {
  /** Cooldown after a 429 without retry-after. */
  readonly defaultCooldown: number
  /** How long a key that ran out of quota stays disabled. */
  readonly quotaReset: number
  readonly maxConcurrentPerKey: number | undefined
}

/**
 * What a store is built for: one pool's keys, by fingerprint (the keys themselves never
 * reach a store), in configuration order, and its timings.
 * @since 0.1.0 @category stores
 */
export interface StoreSpec {
  readonly providerId: string
  readonly keyIds: ReadonlyArray<string>
  readonly timings: Timings
}

/**
 * One pool's state. Each operation is atomic in its store; leasing, waiting in FIFO order,
 * reporting, metrics and errors are the service's, written once over any store. A shared
 * store that cannot answer fails `take` and `status` with `StoreUnavailableError`;
 * `release` and `report` are bookkeeping that never fails nor holds the caller for long,
 * and `hasHealthyKey` is then false.
 * @since 0.1.0 @category stores
 */
export interface Store {
  readonly take: Effect.Effect<Take, StoreUnavailableError>
  /**
   * `take`, leasing the first key of `order` (key ids, best first) that can serve, by the same
   * rules of health and load as `take`. For a pool that chooses by latency; a store without it
   * leases by load.
   */
  readonly takePreferring?: ((order: ReadonlyArray<string>) => Effect.Effect<Take, StoreUnavailableError>) | undefined
  readonly release: (keyId: string, leaseId: string) => Effect.Effect<void>
  readonly report: (keyId: string, outcome: Outcome) => Effect.Effect<void>
  readonly status: Effect.Effect<ReadonlyArray<KeyStatus>, StoreUnavailableError>
  readonly hasHealthyKey: (exceptKeyId?: string) => Effect.Effect<boolean>
  /** How often a waiter looks again without being woken (other processes free keys too). */
  readonly pollMillis: number
}

/**
 * The `KeyPoolStore` service: it builds the store of each pool. A factory rather than a
 * store, because a pool's state is shaped by its keys and timings, which are the pool's
 * options: one store layer (one Redis connection) then serves every pool of a stack, as
 * `@effect/experimental`'s `BackingPersistence` serves every persisted store.
 * @since 0.1.0 @category stores
 */
export interface StoreFactory {
  readonly make: (spec: StoreSpec) => Effect.Effect<Store>
}

/**
 * Where pools keep their state: a `Context.Reference` that `make` and `layer` read when they
 * build. Its default keeps every pool in memory, each its own (what `layerStoreMemory`
 * provides); provide `Redis.layerKeyPoolStore` from `effect-llm/Redis` to share pools across
 * processes.
 * @since 0.1.0 @category tags
 */
export class KeyPoolStore extends Context.Reference<KeyPoolStore>()("effect-llm/KeyPoolStore", {
  defaultValue: (): StoreFactory => storesInMemory
}) {}

/**
 * The in-memory store of one pool: healthy keys in a min-heap by (in-flight load, last
 * use), guarded by a `Ref`, and resting keys beside it until their time comes. Its clock
 * is the one of the fiber that builds it.
 * @since 0.1.0 @category stores
 */
export const makeStoreMemory: (spec: StoreSpec) => Effect.Effect<Store> = internal.memoryStore

const storesInMemory: StoreFactory = { make: makeStoreMemory }

/**
 * Every pool in memory, each its own: `KeyPoolStore`'s default. Provide it to say so, or to
 * override a store provided further out.
 * @since 0.1.0 @category layers
 */
export const layerStoreMemory: Layer.Layer<KeyPoolStore> = Layer.succeed(KeyPoolStore, storesInMemory)

// ---------------------------------------------------------------------------
// The service
// ---------------------------------------------------------------------------

/**
 * The outcome an error implies for the key that produced it (`LlmError.classification`'s
 * `key` column); undefined for an error that says nothing about the key.
 * @since 0.1.0 @category utils
 */
export const outcomeOf: (error: LlmError) => Outcome | undefined = internal.outcomeOf

/**
 * Builds a pool over the `KeyPoolStore` in context (by default, in memory). An invalid
 * `maxConcurrentPerKey` or `latency` setting, or a key that cannot go in an HTTP header (a line break, a control
 * or non-ASCII character), fails with a `ConfigError` that names the option or the key's
 * position, never the key.
 * @since 0.1.0 @category constructors
 */
export const make = (options: Options): Effect.Effect<Service, ConfigError.ConfigError> =>
  Effect.suspend(() =>
    Either.match(Either.all([internal.keysOf(options.keys, options.providerId), internal.timingsOf(options), internal.latencyOf(options)]), {
      onLeft: Effect.fail,
      onRight: ([keys, timings, latency]) => makeOver(options, keys, timings, latency)
    })
  )

const makeOver = (
  options: Options,
  keys: ReadonlyMap<string, Redacted.Redacted<string>>,
  timings: Timings,
  latency?: latencyScore.Resolved
): Effect.Effect<Service> =>
  Effect.flatMap(
    KeyPoolStore,
    (stores) =>
      Effect.map(
        stores.make({ providerId: options.providerId, keyIds: [...keys.keys()], timings }),
        (store) => internal.makeWith(options, keys, timings, store, latency)
      )
  )

/**
 * A pool over the `KeyPoolStore` provided to this layer (by default, in memory):
 * `KeyPool.layer(options).pipe(Layer.provide(Redis.layerKeyPoolStore({ url })))`. Fails as it
 * builds with `make`'s `ConfigError`.
 * @since 0.1.0 @category layers
 */
export const layer = (options: Options): Layer.Layer<KeyPool, ConfigError.ConfigError> => Layer.effect(KeyPool, make(options))

/**
 * Keys from config: one key, or a comma-separated list, e.g. `OPENAI_API_KEY=k1,k2`.
 *
 * A variable that is missing, or set but empty (`""`, `" , "`), fails as the layer is built
 * with a `ConfigError` that names it ("OPENAI_API_KEY is set but empty"), unless `optional`
 * is true: then the pool is keyless (for providers that take no key, such as a local Ollama).
 * @since 0.1.0 @category layers
 */
export const layerConfig = (
  options: Omit<Options, "keys" | "keyless"> & {
    readonly keys: Config.Config<Redacted.Redacted<string>>
    /** The provider needs no key: missing or empty means a keyless pool. Default false. */
    readonly optional?: boolean
  }
): Layer.Layer<KeyPool, ConfigError.ConfigError> => {
  const { optional, keys, ...rest } = options
  return Layer.effect(KeyPool, Effect.flatMap(envKeys.read(keys, optional === true), (read) => make({ ...rest, keys: read, keyless: optional === true })))
}

/**
 * A pool with no keys, for providers that need none (a local Ollama).
 * @since 0.1.0 @category layers
 */
export const layerKeyless = (providerId: string): Layer.Layer<KeyPool> =>
  Layer.effect(KeyPool, makeOver({ providerId, keys: [], keyless: true }, new Map(), { defaultCooldown: 0, quotaReset: 0, maxConcurrentPerKey: undefined }))

/** @since 0.1.0 @category accessors */
export const status: Effect.Effect<ReadonlyArray<KeyStatus>, StoreUnavailableError, KeyPool> = Effect.flatMap(
  KeyPool,
  (pool) => pool.status
)

/** @since 0.1.0 @category accessors */
export const withKey = <A, E, R>(
  f: (lease: Lease) => Effect.Effect<A, E, R>
): Effect.Effect<A, E | NoKeyAvailableError | StoreUnavailableError, R | KeyPool> =>
  Effect.flatMap(KeyPool, (pool) => pool.withKey(f))

/** @since 0.1.0 @category accessors */
export const acquire: Effect.Effect<Lease, NoKeyAvailableError | StoreUnavailableError, KeyPool | Scope.Scope> = Effect.flatMap(
  KeyPool,
  (pool) => pool.acquire
)

/** @since 0.1.0 @category utils */
export const fingerprint = (key: string): string => internal.fingerprint(key)
