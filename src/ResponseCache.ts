/**
 * A response cache in front of a `LanguageModel`. The decorator (`layer`) is written once;
 * the storage is a separate service, `ResponseCacheStore`, with an in-process LRU
 * (`layerMemory`) and a Redis (`Redis.layerResponseCacheStore` from `effect-llm/Redis`)
 * implementation. Concurrent identical requests share one upstream call.
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Stream from "effect/Stream"
import * as internal from "./internal/responseCache.js"
import { Accumulator, decorate, type Decorator, LanguageModel, responseToEvents, type Tracker, wrap } from "./LanguageModel.js"
import { counted } from "./internal/request/delivered.js"
import * as Streams from "./internal/streams.js"
import type { LlmError } from "./LlmError.js"
import type { ChatRequest, ChatResponse, StreamEvent } from "./Message.js"

/** @since 0.1.0 @category models */
export interface Stats {
  readonly hits: number
  readonly misses: number
  /** hits / (hits + misses), 0 before the first lookup. */
  readonly hitRate: number
  /** Live entries in the store. */
  readonly size: number
}

/**
 * A storage backend. It never fails: a backend that cannot answer reports a miss.
 * @since 0.1.0 @category models
 */
export interface Backend {
  readonly get: (key: string) => Effect.Effect<ChatResponse | undefined>
  readonly set: (key: string, response: ChatResponse) => Effect.Effect<void>
  readonly clear: Effect.Effect<void>
  readonly size: Effect.Effect<number>
}

/** @since 0.1.0 @category models */
export interface Store extends Backend {
  /** Counts a lookup; the decorator calls it, so `stats` covers every model that shares the store. */
  readonly count: (hit: boolean) => Effect.Effect<void>
  readonly stats: Effect.Effect<Stats>
}

/**
 * Where cached answers live, shared by every model the decorator wraps. Unlike the key
 * pool's and the limiter's, this store is not built per user: its options (size, TTL) are
 * the cache's own, so the Tag holds the store itself.
 * @since 0.1.0 @category tags
 */
export class ResponseCacheStore extends Context.Tag("effect-llm/ResponseCacheStore")<ResponseCacheStore, Store>() {}

/** @since 0.1.0 @category metrics */
export const lookups = Metric.counter("effect_llm_cache_lookups_total", {
  description: "ResponseCache lookups, tagged result=hit|miss",
  incremental: true
})
const hitsMetric = lookups.pipe(Metric.tagged("result", "hit"))
const missesMetric = lookups.pipe(Metric.tagged("result", "miss"))

/**
 * Adds hit and miss counters to a backend.
 * @since 0.1.0 @category constructors
 */
export const makeStore = (backend: Backend): Effect.Effect<Store> =>
  Effect.sync(() => {
    let hits = 0
    let misses = 0
    return {
      ...backend,
      count: (hit) =>
        Effect.suspend(() => {
          if (hit) hits++
          else misses++
          return Metric.increment(hit ? hitsMetric : missesMetric)
        }),
      stats: Effect.map(backend.size, (size) => ({
        hits,
        misses,
        hitRate: hits + misses === 0 ? 0 : hits / (hits + misses),
        size
      })),
      clear: Effect.zipRight(backend.clear, Effect.sync(() => {
        hits = 0
        misses = 0
      }))
    }
  })

/** @since 0.1.0 @category models */
export interface MemoryOptions {
  readonly maxEntries: number
  readonly ttl: Duration.DurationInput
}

/**
 * An in-process LRU (the `lru-cache` package) whose entries expire after `ttl` on Effect's
 * `Clock`, so `TestClock` drives expiry in tests.
 * @since 0.1.0 @category layers
 */
export const layerMemory = (options: MemoryOptions): Layer.Layer<ResponseCacheStore> =>
  Layer.effect(ResponseCacheStore, Effect.flatMap(internal.memoryBackend(options), makeStore))

/** @since 0.1.0 @category models */
export interface RedisOptions {
  /** `redis://host:port/db` */
  readonly url: string
  /** Default `effect-llm:cache:`. */
  readonly prefix?: string | undefined
  readonly ttl: Duration.DurationInput
  /** Least recently used entries beyond this are evicted. Default: no limit beyond the TTL. */
  readonly maxEntries?: number | undefined
  /**
   * Longest wait for one Redis command before it counts as a miss (a write, as skipped).
   * Default 500 ms: a lookup sits in front of every call.
   */
  readonly commandTimeout?: Duration.DurationInput | undefined
}

/**
 * A store shared by every process on one Redis: `Redis.layerResponseCacheStore(options)`
 * (see `effect-llm/Redis`), kept here for convenience. ioredis is loaded when the layer is
 * built, not when this module is imported.
 *
 * When Redis is down, frozen or slow, reads are misses and writes are skipped: it never
 * fails a request, and never holds one longer than `commandTimeout` (default 500 ms) per
 * lookup. Unlike the key pool and the limiter, even an unreachable Redis at build time does
 * not fail the layer. The connection reconnects forever (100 ms doubling to 2 s); one
 * warning is logged when an outage starts, one info line when Redis answers again.
 * @since 0.1.0 @category layers
 */
export const layerRedis = (options: RedisOptions): Layer.Layer<ResponseCacheStore> =>
  Layer.unwrapEffect(
    Effect.map(
      // dynamic: `import("effect-llm")` must not load ioredis
      Effect.promise(() => import("./Redis.js")),
      (Redis) => Redis.layerResponseCacheStore(options)
    )
  )

/**
 * A store from your own backend.
 * @since 0.1.0 @category layers
 */
export const layerBackend = (backend: Backend): Layer.Layer<ResponseCacheStore> =>
  Layer.effect(ResponseCacheStore, makeStore(backend))

/** @since 0.1.0 @category models */
export interface Options {
  /**
   * `bypass` (default): streams go straight to the model. `replay`: a cached answer is
   * replayed as a stream, and a streamed answer that finishes is stored.
   */
  readonly streams?: "bypass" | "replay" | undefined
}

/**
 * The cache key of a request to `provider`/`model`: SHA-256 of the canonical request. Key
 * order, empty lists and provider defaults (`toolChoice: "auto"`, `topP: 1`, zero penalties,
 * a `text` response format) do not change it; `user` and `cache` are left out.
 * @since 0.1.0 @category utils
 */
export const keyOf: (provider: string, model: string, request: ChatRequest) => string = internal.keyOf

const withoutCacheField = (request: ChatRequest): ChatRequest => {
  if (request.cache === undefined) return request
  const { cache: _, ...rest } = request
  return rest
}

/**
 * The decorator: the model below, in front of the `ResponseCacheStore` in context.
 * @since 0.1.0 @category decorators
 */
export const decorator = (options: Options = {}): Decorator<never, ResponseCacheStore> => (upstream) =>
  Effect.map(ResponseCacheStore, (store) => cached(upstream, store, options))

const cached = (upstream: LanguageModel["Type"], store: Store, options: Options): LanguageModel["Type"] => {
  const inflight = new Map<string, Deferred.Deferred<ChatResponse, LlmError>>()

  // One upstream call per key at a time; the others wait for its result. If the caller that
  // made the call is interrupted, the waiters make their own.
  const shared = (key: string, request: ChatRequest): Effect.Effect<ChatResponse, LlmError> =>
    Effect.suspend(() => {
      const running = inflight.get(key)
      if (running !== undefined) {
        return Deferred.await(running).pipe(
          Effect.catchAllCause((cause) => Cause.isInterruptedOnly(cause) ? shared(key, request) : Effect.failCause(cause))
        )
      }
      const deferred = Deferred.unsafeMake<ChatResponse, LlmError>(FiberId.none)
      inflight.set(key, deferred)
      return upstream.chat(request).pipe(
        Effect.tap((response) => storable(response) ? store.set(key, response) : Effect.void),
        Effect.onExit((exit) =>
          Effect.suspend(() => {
            if (inflight.get(key) === deferred) inflight.delete(key)
            return Deferred.done(deferred, Exit.isInterrupted(exit) ? Exit.interrupt(FiberId.none) : exit)
          })
        )
      )
    })

  const chat = (request: ChatRequest) =>
    Effect.suspend(() => {
      const mode = request.cache ?? "default"
      const clean = withoutCacheField(request)
      if (mode === "bypass") return upstream.chat(clean)
      const key = internal.keyOf(upstream.provider, clean.model ?? upstream.model, clean)
      if (mode === "refresh") return shared(key, clean)
      return Effect.flatMap(store.get(key), (cached) =>
        cached !== undefined
          ? Effect.as(Effect.zipRight(store.count(true), Effect.annotateCurrentSpan("cache.hit", true)), cached)
          : Effect.zipRight(Effect.zipRight(store.count(false), Effect.annotateCurrentSpan("cache.hit", false)), shared(key, clean)))
    }).pipe(Effect.withSpan("ResponseCache.chat"))

  const stream = (request: ChatRequest, tracker?: Tracker): Stream.Stream<StreamEvent, LlmError> => {
    if (options.streams !== "replay") return upstream.stream(withoutCacheField(request), tracker)
    return Streams.withSpan(Streams.unwrap(Effect.suspend(() => {
      const mode = request.cache ?? "default"
      const clean = withoutCacheField(request)
      if (mode === "bypass") return Effect.succeed(upstream.stream(clean, tracker))
      const key = internal.keyOf(upstream.provider, clean.model ?? upstream.model, clean)
      const lookup = mode === "refresh" ? Effect.succeed(undefined) : store.get(key)
      return Effect.flatMap(lookup, (cached) => {
        // a hit is this stream's own source: it reports what it delivers, as any source must
        if (cached !== undefined) return Effect.as(store.count(true), counted(Stream.fromIterable(responseToEvents(cached)), tracker))
        const fromUpstream = storing(key, upstream.stream(clean, tracker))
        return mode === "refresh" ? Effect.succeed(fromUpstream) : Effect.as(store.count(false), fromUpstream)
      })
    })), "ResponseCache.stream")
  }

  // Folds the events as they pass, and stores the answer once its Finish has gone by.
  const storing = (key: string, events: Stream.Stream<StreamEvent, LlmError>) =>
    Stream.suspend(() => {
      const acc = new Accumulator()
      return Stream.mapChunksEffect(events, (chunk) => {
        acc.addAll(chunk)
        if (acc.finish === undefined) return Effect.succeed(chunk)
        return acc.result().pipe(
          Effect.flatMap((response) => storable(response) ? store.set(key, response) : Effect.void),
          Effect.orElse(() => Effect.void),
          Effect.as(chunk)
        )
      })
    })

  return wrap(upstream, { chat, stream })
}

/** Errors and filtered answers are not worth replaying. */
const storable = (response: ChatResponse) => response.finishReason !== "error" && response.finishReason !== "content_filter"

/**
 * The decorator, with options.
 * @since 0.1.0 @category layers
 */
export const layerWith = (options: Options): Layer.Layer<LanguageModel, never, LanguageModel | ResponseCacheStore> =>
  decorate(decorator(options))

/**
 * The decorator: `Layer<LanguageModel, never, LanguageModel | ResponseCacheStore>`.
 * @since 0.1.0 @category layers
 */
export const layer: Layer.Layer<LanguageModel, never, LanguageModel | ResponseCacheStore> = layerWith({})

/** @since 0.1.0 @category accessors */
export const stats: Effect.Effect<Stats, never, ResponseCacheStore> = Effect.flatMap(ResponseCacheStore, (s) => s.stats)

/** @since 0.1.0 @category accessors */
export const clear: Effect.Effect<void, never, ResponseCacheStore> = Effect.flatMap(ResponseCacheStore, (s) => s.clear)
