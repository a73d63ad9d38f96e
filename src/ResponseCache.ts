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
import { identity } from "effect/Function"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Stream from "effect/Stream"
import * as internal from "./internal/responseCache.js"
import { Accumulator, decorate, type Decorator, LanguageModel, responseToEvents, type Tracker, wrap } from "./LanguageModel.js"
import { attempt, counted } from "./internal/request/delivered.js"
import * as Streams from "./internal/streams.js"
import { classify, type LlmError } from "./LlmError.js"
import type { ChatRequest, ChatResponse, StreamEvent } from "./Message.js"

/** @since 0.1.0 @category models */
export interface Stats {
  readonly hits: number
  readonly misses: number
  /** hits / (hits + misses), 0 before the first lookup. */
  readonly hitRate: number
  /** Entries held in the store (fresh ones, and stale ones kept for degraded mode). */
  readonly size: number
  /** Stale replies served by degraded mode because the model failed. */
  readonly staleServed: number
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
  /**
   * An entry past its TTL but within the store's `staleFor` window (or a fresh one), for
   * degraded mode; a store without one serves no stale replies.
   */
  readonly getStale?: ((key: string) => Effect.Effect<ChatResponse | undefined>) | undefined
}

/** @since 0.1.0 @category models */
export interface Store extends Backend {
  /** Counts a lookup; the decorator calls it, so `stats` covers every model that shares the store. */
  readonly count: (hit: boolean) => Effect.Effect<void>
  /** Counts a stale reply served by degraded mode. */
  readonly countStale: Effect.Effect<void>
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

/** @since 0.1.0 @category metrics */
export const staleServed = Metric.counter("effect_llm_cache_stale_served_total", {
  description: "Stale replies ResponseCache's degraded mode served because the model failed",
  incremental: true
})

/**
 * Adds hit and miss counters to a backend.
 * @since 0.1.0 @category constructors
 */
export const makeStore = (backend: Backend): Effect.Effect<Store> =>
  Effect.sync(() => {
    let hits = 0
    let misses = 0
    let stale = 0
    return {
      ...backend,
      countStale: Effect.suspend(() => {
        stale++
        return Metric.increment(staleServed)
      }),
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
        size,
        staleServed: stale
      })),
      clear: Effect.zipRight(backend.clear, Effect.sync(() => {
        hits = 0
        misses = 0
        stale = 0
      }))
    }
  })

/** @since 0.1.0 @category models */
export interface MemoryOptions {
  readonly maxEntries: number
  readonly ttl: Duration.DurationInput
  /** How long an entry is kept past its TTL for degraded mode (`serveStale`). Default 0. */
  readonly staleFor?: Duration.DurationInput | undefined
}

/**
 * An in-process LRU (the `lru-cache` package) whose entries expire after `ttl` on Effect's
 * `Clock`, so `TestClock` drives expiry in tests.
 * @since 0.1.0 @category layers
 */
export const layerMemory = (options: MemoryOptions): Layer.Layer<ResponseCacheStore> =>
  Layer.effect(ResponseCacheStore, Effect.flatMap(internal.memoryBackend(options), makeStore))

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
  /**
   * Degraded mode: when the model below fails (after the Retry and Fallback under this
   * decorator gave up) and the store holds a reply to the same request, even past its TTL
   * within the store's `staleFor`, answer with it, marked `stale: true`. Never when the
   * error is the caller's (`LlmError.classification`'s `stale` column: an invalid request, a
   * content filter, a budget), never for a stream that already emitted events, never with
   * `cache: "bypass"`. Counted in `stats().staleServed` and a metric; one warning is logged
   * per outage (until the model answers again). Default false.
   */
  readonly serveStale?: boolean | undefined
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
  const stale = options.serveStale === true && store.getStale !== undefined ? degradedMode(store, store.getStale) : undefined

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
      const call = stale === undefined ? shared(key, clean) : stale.chat(key, shared(key, clean))
      if (mode === "refresh") return call
      return Effect.flatMap(store.get(key), (cached) =>
        cached !== undefined
          ? Effect.as(Effect.zipRight(store.count(true), Effect.annotateCurrentSpan("cache.hit", true)), cached)
          : Effect.zipRight(Effect.zipRight(store.count(false), Effect.annotateCurrentSpan("cache.hit", false)), call))
    }).pipe(Effect.withSpan("ResponseCache.chat"))

  const stream = (request: ChatRequest, tracker?: Tracker): Stream.Stream<StreamEvent, LlmError> => {
    if (options.streams !== "replay") {
      const clean = withoutCacheField(request)
      return stale === undefined || request.cache === "bypass"
        ? upstream.stream(clean, tracker)
        : stale.stream(() => internal.keyOf(upstream.provider, clean.model ?? upstream.model, clean), upstream, clean, tracker)
    }
    return Streams.withSpan(Streams.unwrap(Effect.suspend(() => {
      const mode = request.cache ?? "default"
      const clean = withoutCacheField(request)
      if (mode === "bypass") return Effect.succeed(upstream.stream(clean, tracker))
      const key = internal.keyOf(upstream.provider, clean.model ?? upstream.model, clean)
      const lookup = mode === "refresh" ? Effect.succeed(undefined) : store.get(key)
      return Effect.flatMap(lookup, (cached) => {
        // a hit is this stream's own source: it reports what it delivers, as any source must
        if (cached !== undefined) return Effect.as(store.count(true), counted(Stream.fromIterable(responseToEvents(cached)), tracker))
        const fromUpstream = stale === undefined
          ? storing(key, upstream.stream(clean, tracker))
          : stale.stream(() => key, upstream, clean, tracker, (events) => storing(key, events))
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

/**
 * Degraded mode: a failed call answered from a stale entry, when the failure is the model's
 * and nothing was delivered yet. One warning per outage, reset by the next upstream success.
 */
const degradedMode = (store: Store, getStale: (key: string) => Effect.Effect<ChatResponse | undefined>) => {
  let outage = false
  const eligible = (error: LlmError) => {
    const rule = classify(error).stale
    return rule === "always" || (rule === "ifNotPartial" && !(error._tag === "StreamError" && error.partial))
  }
  const served = (error: LlmError) =>
    Effect.suspend(() => {
      const first = !outage
      outage = true
      return Effect.zipRight(
        Effect.zipRight(store.countStale, Effect.annotateCurrentSpan("cache.stale", true)),
        first
          ? Effect.logWarning(`ResponseCache: ${error.provider}/${error.model} failed (${error._tag}); serving stale replies until it answers again`)
          : Effect.void
      )
    })
  const answered = Effect.sync(() => void (outage = false))
  const rescue = (key: string, error: LlmError): Effect.Effect<ChatResponse | undefined> =>
    eligible(error)
      ? Effect.flatMap(getStale(key), (found) => found === undefined ? Effect.succeed(undefined) : Effect.as(served(error), found))
      : Effect.succeed(undefined)
  return {
    chat: (key: string, call: Effect.Effect<ChatResponse, LlmError>): Effect.Effect<ChatResponse, LlmError> =>
      Effect.matchEffect(call, {
        onSuccess: (response) => Effect.as(answered, response),
        onFailure: (error) =>
          Effect.flatMap(rescue(key, error), (found) => found === undefined ? Effect.fail(error) : Effect.succeed({ ...found, stale: true }))
      }),
    // the stream below reports what it delivered: a failure after its first event is never rescued
    stream: (
      keyOf: () => string,
      model: LanguageModel["Type"],
      request: ChatRequest,
      around: Tracker | undefined,
      through: (events: Stream.Stream<StreamEvent, LlmError>) => Stream.Stream<StreamEvent, LlmError> = identity
    ): Stream.Stream<StreamEvent, LlmError> =>
      Stream.suspend(() => {
        const run = attempt(model, request, around)
        return Stream.catchAll(through(run.stream), (error) =>
          run.delivered().events > 0
            ? Stream.fail(error)
            : Stream.unwrap(Effect.map(rescue(keyOf(), error), (found) =>
              found === undefined ? Stream.fail(error) : counted(Stream.fromIterable(responseToEvents({ ...found, stale: true })), around))))
      })
  }
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
