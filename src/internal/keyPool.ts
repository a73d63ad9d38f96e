import { createHash } from "node:crypto"
import * as ConfigError from "effect/ConfigError"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Metric from "effect/Metric"
import * as Random from "effect/Random"
import * as Redacted from "effect/Redacted"
import * as Ref from "effect/Ref"
import * as Scope from "effect/Scope"
import type { KeyState, KeyStatus, Lease, Options, Outcome, Service, Store, StoreSpec, Take, Timings } from "../KeyPool.js"
import { classify, isLlmError, NoKeyAvailableError, type StoreUnavailableError } from "../LlmError.js"
import { type HeapEntry, KeyHeap, rank } from "./keyHeap.js"
import * as latencyScore from "./latencyScore.js"
import * as syncOps from "./syncOps.js"

export const fingerprint = (key: string): string =>
  "key_" + createHash("sha256").update(key).digest("hex").slice(0, 10)

/**
 * The configured keys, deduplicated, by fingerprint; or, for a key that cannot go in an HTTP
 * header, a `ConfigError` that names it by position, never by value. Keys never leave the
 * process.
 */
export const keysOf = (
  keys: Options["keys"],
  providerId = "pool"
): Either.Either<ReadonlyMap<string, Redacted.Redacted<string>>, ConfigError.ConfigError> => {
  const byId = new Map<string, Redacted.Redacted<string>>()
  for (const [index, raw] of keys.entries()) {
    const key = typeof raw === "string" ? Redacted.make(raw) : raw
    const problem = headerProblem(Redacted.value(key))
    if (problem !== undefined) {
      return Either.left(
        ConfigError.InvalidData(["keys"], `KeyPool ${providerId}: key ${index + 1} of ${keys.length} ${problem}, so it cannot go in an HTTP header`)
      )
    }
    const id = fingerprint(Redacted.value(key))
    if (!byId.has(id)) byId.set(id, key)
  }
  return Either.right(byId)
}

/**
 * Why a key cannot go in an HTTP header (a pasted line break, a control character, a
 * character outside ASCII), or undefined. The key itself is never part of the answer.
 */
export const headerProblem = (key: string): string | undefined => {
  for (let i = 0; i < key.length; i++) {
    const code = key.charCodeAt(i)
    if (code === 10 || code === 13) return `contains a line break at character ${i + 1}`
    if (code < 32 || code === 127) return `contains a control character at character ${i + 1}`
    if (code > 126) return `contains a character outside ASCII at character ${i + 1}`
  }
  return undefined
}

/** The pool's timings, or a `ConfigError` naming the option that cannot be one. */
export const timingsOf = (options: Options): Either.Either<Timings, ConfigError.ConfigError> => {
  const max = options.maxConcurrentPerKey
  if (max !== undefined && (!Number.isInteger(max) || max < 1)) {
    return Either.left(
      ConfigError.InvalidData(["maxConcurrentPerKey"], `KeyPool ${options.providerId}: maxConcurrentPerKey must be a positive integer, got ${String(max)}`)
    )
  }
  return Either.right({
    defaultCooldown: Duration.toMillis(options.defaultCooldown ?? "10 seconds"),
    quotaReset: Duration.toMillis(options.quotaResetAfter ?? "1 hour"),
    maxConcurrentPerKey: max
  })
}

/** The latency-aware choice's settings, when the pool has one; or a `ConfigError` naming the bad one. */
export const latencyOf = (options: Options): Either.Either<latencyScore.Resolved | undefined, ConfigError.ConfigError> =>
  options.latency === undefined ? Either.right(undefined) : latencyScore.resolve(options.latency, `KeyPool ${options.providerId}`, [])

// ---------------------------------------------------------------------------
// Stores
// ---------------------------------------------------------------------------

/**
 * Where a key stands, by precedence: disabled, cooling down, half-open, healthy. A
 * cooldown or a timed disable that has run out reads as half-open even before the next
 * lease moves the key back.
 */
export const stateOf = (
  now: number,
  s: {
    readonly cooldownUntil: number | undefined
    readonly disabledReason: string | undefined
    readonly disabledUntil: number | undefined
    readonly halfOpen: boolean
  }
): KeyState => {
  if (s.disabledReason !== undefined) return s.disabledUntil !== undefined && s.disabledUntil <= now ? "halfOpen" : "disabled"
  if (s.cooldownUntil !== undefined) return s.cooldownUntil > now ? "coolingDown" : "halfOpen"
  return s.halfOpen ? "halfOpen" : "healthy"
}

interface Entry extends HeapEntry {
  successes: number
  failures: number
  cooldownUntil: number | undefined
  disabledReason: string | undefined
  disabledUntil: number | undefined
}

/** When an out-of-heap key serves again; undefined for a key disabled for good. */
const backAt = (e: Entry): number | undefined => (e.disabledReason !== undefined ? e.disabledUntil : e.cooldownUntil)

interface MemoryState {
  readonly heap: KeyHeap<Entry>
  /** Keys out of the heap: cooling down, or disabled. */
  readonly resting: Array<Entry>
}

/**
 * The in-memory store: healthy keys in a min-heap guarded by a `Ref`, resting keys beside
 * it until their time comes. Its clock is the one of the fiber that builds it.
 */
export const memoryStore = ({ keyIds: ids, timings }: StoreSpec): Effect.Effect<Store> =>
  Effect.clockWith((clock) =>
    Effect.gen(function* () {
      const entries = new Map<string, Entry>()
      const heap = new KeyHeap<Entry>()
      ids.forEach((keyId, seq) => {
        const entry: Entry = {
          keyId,
          seq,
          inFlight: 0,
          lastUsed: 0,
          halfOpen: false,
          index: -1,
          successes: 0,
          failures: 0,
          cooldownUntil: undefined,
          disabledReason: undefined,
          disabledUntil: undefined
        }
        entries.set(keyId, entry)
        heap.push(entry)
      })
      const state: MemoryState = { heap, resting: [] }
      const ref = yield* Ref.make<MemoryState>(state)
      const max = timings.maxConcurrentPerKey

      /** Resting keys whose time has come go back into the heap, half-open. */
      const wake = (state: MemoryState, now: number): void => {
        if (state.resting.length === 0) return
        for (let i = state.resting.length - 1; i >= 0; i--) {
          const entry = state.resting[i]!
          const back = backAt(entry)
          if (back !== undefined && back <= now) {
            state.resting.splice(i, 1)
            entry.cooldownUntil = undefined
            entry.disabledReason = undefined
            entry.disabledUntil = undefined
            entry.halfOpen = true
            state.heap.push(entry)
          }
        }
      }

      const rest = (state: MemoryState, entry: Entry): void => {
        if (entry.index >= 0) {
          state.heap.remove(entry)
          state.resting.push(entry)
        }
      }

      const takeNow = (state: MemoryState): Take => {
        const now = clock.unsafeCurrentTimeMillis()
        wake(state, now)
        const top = state.heap.peek()
        if (top === undefined) {
          let earliest: number | undefined
          for (const entry of state.resting) {
            const back = backAt(entry)
            if (back !== undefined && (earliest === undefined || back < earliest)) earliest = back
          }
          return { _tag: "Unavailable", retryAfterMs: earliest === undefined ? undefined : earliest - now }
        }
        if (rank(top) === Number.POSITIVE_INFINITY || (max !== undefined && top.inFlight >= max)) {
          return { _tag: "Busy" }
        }
        top.inFlight++
        top.lastUsed = now
        state.heap.update(top)
        return { _tag: "Leased", keyId: top.keyId, leaseId: top.keyId }
      }
      const take: Effect.Effect<Take> = Ref.modify(ref, (state): [Take, MemoryState] => [takeNow(state), state])

      /** Whether `entry` can take one more call now (it is in the heap, so healthy or half-open). */
      const canServe = (entry: Entry): boolean =>
        entry.index >= 0 && rank(entry) !== Number.POSITIVE_INFINITY && (max === undefined || entry.inFlight < max)

      const takePreferring = (order: ReadonlyArray<string>): Effect.Effect<Take> =>
        Effect.flatMap(
          Ref.modify(ref, (state): [Take | undefined, MemoryState] => {
            const now = clock.unsafeCurrentTimeMillis()
            wake(state, now)
            for (const keyId of order) {
              const entry = entries.get(keyId)
              if (entry === undefined || !canServe(entry)) continue
              entry.inFlight++
              entry.lastUsed = now
              state.heap.update(entry)
              return [{ _tag: "Leased", keyId, leaseId: keyId }, state]
            }
            return [undefined, state]
          }),
          // none of them can serve: `take` says why (busy, or when one comes back)
          (taken) => (taken === undefined ? take : Effect.succeed(taken))
        )

      const releaseNow = (state: MemoryState, keyId: string): MemoryState => {
        const entry = entries.get(keyId)
        if (entry !== undefined && entry.inFlight > 0) {
          entry.inFlight--
          state.heap.update(entry)
        }
        return state
      }
      const release = (keyId: string): Effect.Effect<void> => Ref.update(ref, (state) => releaseNow(state, keyId))

      const reportNow = (state: MemoryState, keyId: string, outcome: Outcome): MemoryState => {
        const entry = entries.get(keyId)
        if (entry === undefined) return state
        const now = clock.unsafeCurrentTimeMillis()
        switch (outcome._tag) {
          case "Success":
            entry.successes++
            if (entry.halfOpen) {
              entry.halfOpen = false
              state.heap.update(entry)
            }
            break
          case "RateLimited": {
            entry.failures++
            const wait = outcome.retryAfter === undefined ? timings.defaultCooldown : Duration.toMillis(outcome.retryAfter)
            entry.cooldownUntil = Math.max(entry.cooldownUntil ?? 0, now + wait)
            entry.halfOpen = false
            rest(state, entry)
            break
          }
          case "Rejected":
          case "QuotaExceeded":
            entry.failures++
            entry.disabledReason = outcome.reason
            // a rejected key is disabled for good; one out of quota until its quota resets
            entry.disabledUntil = outcome._tag === "QuotaExceeded" ? now + timings.quotaReset : undefined
            entry.halfOpen = false
            rest(state, entry)
            break
          case "Failure":
            entry.failures++
            break
        }
        return state
      }
      const report = (keyId: string, outcome: Outcome): Effect.Effect<void> => Ref.update(ref, (state) => reportNow(state, keyId, outcome))

      const status = Effect.map(Ref.get(ref), () => {
        const now = clock.unsafeCurrentTimeMillis()
        return [...entries.values()].map((e): KeyStatus => ({
          keyId: e.keyId,
          state: stateOf(now, e),
          load: max === undefined ? e.inFlight : e.inFlight / max,
          inFlight: e.inFlight,
          successes: e.successes,
          failures: e.failures,
          cooldownUntil: e.cooldownUntil,
          disabledReason: e.disabledReason,
          disabledUntil: e.disabledUntil,
          lastUsed: e.lastUsed
        }))
      })

      const healthyNow = (state: MemoryState, exceptKeyId?: string) => {
        const now = clock.unsafeCurrentTimeMillis()
        if (state.heap.items.some((e) => e.keyId !== exceptKeyId)) return true
        return state.resting.some((e) => {
          const back = backAt(e)
          return e.keyId !== exceptKeyId && back !== undefined && back <= now
        })
      }
      const hasHealthyKey = (exceptKeyId?: string) => Effect.map(Ref.get(ref), (state) => healthyNow(state, exceptKeyId))

      const store: Store = { take, takePreferring, release, report, status, hasHealthyKey, pollMillis: 1000 }
      // the same steps, for the request path's fast path: the Ref holds this one state object
      // for the store's life, and each step is synchronous, so calling them directly is as atomic
      syncOps.poolStoreOps.set(store, {
        take: () => takeNow(state),
        release: (keyId) => void releaseNow(state, keyId),
        report: (keyId, outcome) => void reportNow(state, keyId, outcome),
        hasHealthyKey: (exceptKeyId) => healthyNow(state, exceptKeyId)
      })
      return store
    })
  )

// ---------------------------------------------------------------------------
// The service, over any store
// ---------------------------------------------------------------------------

const leased = Metric.counter("effect_llm_key_pool_leased", { description: "keys leased" })
const waitedForKey = Metric.counter("effect_llm_key_pool_waited", { description: "leases that waited for a key" })
const cooledDown = Metric.counter("effect_llm_key_pool_cooldowns", { description: "keys cooled down after a 429" })
const disabled = Metric.counter("effect_llm_key_pool_disabled", { description: "keys disabled (401, 403, quota)" })

export const makeWith = (
  options: Options,
  keys: ReadonlyMap<string, Redacted.Redacted<string>>,
  timings: Timings,
  store: Store,
  latency?: latencyScore.Resolved
): Service => {
  const providerId = options.providerId
  const waitForKeys = timings.maxConcurrentPerKey !== undefined
  const chooser = latency === undefined ? undefined : makeChooser(latency, [...keys.keys()], store)

  // Callers waiting for a key, oldest first; each release wakes the oldest.
  const waiters: Array<Deferred.Deferred<void>> = []
  const wakeOne = Effect.suspend(() => {
    const next = waiters.shift()
    return next === undefined ? Effect.void : Deferred.succeed(next, undefined)
  })
  const awaitTurn = (front: boolean) =>
    Effect.flatMap(Deferred.make<void>(), (turn) =>
      Effect.suspend(() => {
        if (front) waiters.unshift(turn)
        else waiters.push(turn)
        return Deferred.await(turn).pipe(
          // releases in other processes wake nobody here
          Effect.timeout(store.pollMillis),
          Effect.ignore,
          Effect.onExit((exit) =>
            Effect.suspend(() => {
              const at = waiters.indexOf(turn)
              if (at >= 0) {
                waiters.splice(at, 1)
                return Effect.void
              }
              // woken, but interrupted before taking the key: pass the turn on
              return Exit.isInterrupted(exit) ? wakeOne : Effect.void
            })
          )
        )
      }))

  const unavailable = (retryAfterMs: number | undefined) =>
    new NoKeyAvailableError({
      provider: providerId,
      model: "*",
      message: retryAfterMs === undefined
        ? `every key of ${providerId} is disabled`
        : `every key of ${providerId} is cooling down; the first is back in ${Math.ceil(retryAfterMs)}ms`,
      ...(retryAfterMs === undefined ? {} : { retryAfter: Duration.millis(Math.max(0, retryAfterMs)) })
    })

  // The release goes straight into the scope: Effect.acquireRelease would also diff and patch
  // the fiber's refs around it, twice per lease, which nothing here needs.
  const takeScoped: Effect.Effect<Take, StoreUnavailableError, Scope.Scope> = Effect.uninterruptible(
    Effect.flatMap(chooser === undefined ? store.take : chooser.take, (take): Effect.Effect<Take, StoreUnavailableError, Scope.Scope> =>
      take._tag === "Leased"
        ? Effect.as(
          Effect.flatMap(Effect.scope, (scope) =>
            Scope.addFinalizer(
              scope,
              Effect.zipRight(store.release(take.keyId, take.leaseId), chooser === undefined ? wakeOne : Effect.zipRight(chooser.released(take), wakeOne))
            )),
          take
        )
        : Effect.succeed(take))
  )

  const loop = (waited: boolean): Effect.Effect<Lease, NoKeyAvailableError | StoreUnavailableError, Scope.Scope> =>
    Effect.flatMap(takeScoped, (take) => {
      switch (take._tag) {
        case "Leased": {
          const lease: Lease = chooser === undefined ? { keyId: take.keyId, key: keys.get(take.keyId) } : chooser.leaseOf(take, keys.get(take.keyId))
          // there may be room for the next waiter too (a key came back without a release)
          return waited ? Effect.as(Effect.zipRight(Metric.increment(waitedForKey), wakeOne), lease) : Effect.succeed(lease)
        }
        case "Busy":
          return Effect.zipRight(awaitTurn(waited), loop(true))
        case "Unavailable":
          return waitForKeys && take.retryAfterMs !== undefined
            ? Effect.zipRight(Effect.sleep(Math.max(1, take.retryAfterMs)), loop(true))
            : Effect.fail(unavailable(take.retryAfterMs))
      }
    })

  const keyless: Lease = { keyId: "none", key: undefined }
  const leasing = Effect.suspend(() => (waiters.length > 0 ? Effect.zipRight(awaitTurn(false), loop(true)) : loop(false))).pipe(
    Effect.tap(() => Metric.increment(leased))
  )
  // useSpan, not withSpan: the lease starts no spans of its own, so its span need not become
  // the parent, and not providing it saves ~16 KB of garbage per call
  const acquire: Service["acquire"] = keys.size === 0
    ? options.keyless === true
      ? Effect.succeed(keyless)
      : Effect.fail(
        new NoKeyAvailableError({
          provider: providerId,
          model: "*",
          message: `the ${providerId} key pool has no keys: give it keys (an empty env var gives none), or use KeyPool.layerKeyless for a provider that takes no key`,
          retryable: false
        })
      )
    : Effect.useSpan("KeyPool.acquire", { attributes: { provider: providerId }, captureStackTrace: false }, () => leasing)

  const report = (keyId: string, outcome: Outcome): Effect.Effect<void> => {
    if (!keys.has(keyId)) return Effect.void
    const counted = outcome._tag === "RateLimited"
      ? Metric.increment(cooledDown)
      : outcome._tag === "Rejected" || outcome._tag === "QuotaExceeded"
      ? Metric.increment(disabled)
      : Effect.void
    const scored = chooser === undefined || outcome._tag === "Success" ? counted : Effect.zipRight(chooser.failed(keyId), counted)
    return Effect.zipRight(store.report(keyId, outcome), scored)
  }

  const withKey: Service["withKey"] = (f) =>
    Effect.scoped(
      Effect.flatMap(acquire, (lease) =>
        f(lease).pipe(
          Effect.tapBoth({
            onSuccess: () => report(lease.keyId, { _tag: "Success" }),
            onFailure: (error) => reportError(report, lease.keyId, error)
          })
        ))
    ).pipe(Effect.withSpan("KeyPool.withKey", { attributes: { provider: providerId }, captureStackTrace: false }))

  const storeOps = syncOps.poolStoreOps.get(store)
  const service: Service = {
    providerId,
    acquire,
    withKey,
    report,
    status: store.status,
    hasHealthyKey: (exceptKeyId) => (keys.size === 0 ? Effect.succeed(false) : store.hasHealthyKey(exceptKeyId)),
    checkKeys: (rule) => {
      const all = [...keys.values()]
      for (const [index, key] of all.entries()) {
        const problem = rule(Redacted.value(key))
        if (problem !== undefined) return `key ${index + 1} of ${all.length} ${problem}`
      }
      return undefined
    },
    observe: chooser?.observe,
    scores: chooser?.scores
  }
  // a pool in memory that chooses by load leases synchronously on the request path's fast path
  if (storeOps !== undefined && chooser === undefined && keys.size > 0) {
    syncOps.poolOps.set(service, {
      lease: (ambient) => {
        if (waiters.length > 0) return undefined
        const take = storeOps.take()
        if (take._tag !== "Leased") return undefined
        leased.unsafeUpdate(1, ambient)
        return { keyId: take.keyId, key: keys.get(take.keyId) }
      },
      release: (lease) => {
        storeOps.release(lease.keyId)
        const next = waiters.shift()
        if (next !== undefined) Deferred.unsafeDone(next, Exit.void)
      },
      report: (keyId, outcome, ambient) => {
        if (!keys.has(keyId)) return
        storeOps.report(keyId, outcome)
        if (outcome._tag === "RateLimited") cooledDown.unsafeUpdate(1, ambient)
        else if (outcome._tag === "Rejected" || outcome._tag === "QuotaExceeded") disabled.unsafeUpdate(1, ambient)
      },
      hasHealthyKey: storeOps.hasHealthyKey
    })
  }
  return service
}

/**
 * The latency-aware choice of one pool: its scores (this process's), the preferred order of
 * the keys for each take, and the samples. A lease's start and whether it was sampled live in
 * a map by lease object, dropped when the lease ends.
 */
const makeChooser = (resolved: latencyScore.Resolved, ids: ReadonlyArray<string>, store: Store) => {
  const scores = new latencyScore.Scores(resolved)
  interface Held {
    readonly keyId: string
    readonly at: number
    sampled: boolean
  }
  // by the store's Take, which the release finalizer and the lease both know
  const held = new Map<Take, Held>()
  const byLease = new WeakMap<Lease, Held>()
  const draws = Effect.map(Effect.all([Random.next, Random.next, Random.next]), ([explore, first, second]) => ({ explore, first, second }))
  const takePreferring = store.takePreferring
  const take: Effect.Effect<Take, StoreUnavailableError> = Effect.flatMap(
    takePreferring === undefined ? store.take : Effect.flatMap(draws, (d) => takePreferring(scores.order(ids, d))),
    (taken): Effect.Effect<Take> =>
      taken._tag !== "Leased" ? Effect.succeed(taken) : Effect.clockWith((clock) =>
        Effect.sync(() => {
          scores.started(taken.keyId)
          held.set(taken, { keyId: taken.keyId, at: clock.unsafeCurrentTimeMillis(), sampled: false })
          return taken
        })
      )
  )
  return {
    take,
    leaseOf: (taken: Take, key: Redacted.Redacted<string> | undefined): Lease => {
      const lease: Lease = { keyId: (taken as Extract<Take, { _tag: "Leased" }>).keyId, key }
      const h = held.get(taken)
      if (h !== undefined) byLease.set(lease, h)
      return lease
    },
    released: (taken: Take) =>
      Effect.clockWith((clock) =>
        Effect.sync(() => {
          const h = held.get(taken)
          if (h === undefined) return
          held.delete(taken)
          scores.ended(h.keyId)
          if (!h.sampled) scores.censored(h.keyId, clock.unsafeCurrentTimeMillis() - h.at)
        })
      ),
    observe: (lease: Lease) =>
      Effect.clockWith((clock) =>
        Effect.sync(() => {
          const h = byLease.get(lease)
          if (h === undefined || h.sampled) return
          h.sampled = true
          scores.latency(h.keyId, clock.unsafeCurrentTimeMillis() - h.at)
        })
      ),
    failed: (keyId: string) =>
      Effect.sync(() => scores.failure(keyId)),
    scores: Effect.sync(() => ids.map((keyId) => ({ keyId, ...scores.score(keyId) })))
  }
}

/**
 * What an error says about the key that got it, from its classification (`LlmError.classify`).
 * Accepts unknown so that `withKey` can classify whatever its callback failed with: anything
 * that is not an `LlmError` counts as a failure of the call on that key.
 */
export const outcomeOf = (error: unknown): Outcome | undefined => {
  if (!isLlmError(error)) return { _tag: "Failure" }
  switch (classify(error).key) {
    case "rateLimited":
      return { _tag: "RateLimited", retryAfter: (error as { retryAfter?: Duration.Duration }).retryAfter }
    case "rejected":
      return { _tag: "Rejected", reason: error.message }
    case "quotaExceeded":
      return { _tag: "QuotaExceeded", reason: error.message }
    case "failure":
      return { _tag: "Failure" }
    case "none":
      return undefined
  }
}

/** Reports what `error` says about the key, if it says anything. */
export const reportError = (
  report: (keyId: string, outcome: Outcome) => Effect.Effect<void>,
  keyId: string,
  error: unknown
): Effect.Effect<void> => {
  const outcome = outcomeOf(error)
  return outcome === undefined ? Effect.void : report(keyId, outcome)
}
