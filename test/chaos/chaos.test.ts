/**
 * The chaos suite: ≥ 10 000 requests, half of them streams, through a full stack
 * (a model with 2 keys falling back to one with 3, rate limiters, retry) against two
 * `FakeProvider`s that draw a fault per request: 20% 429 with retry-after, 5% 5xx, 2%
 * connection resets, 1% streams cut mid-way, 1% malformed JSON, and 1% of streams a
 * `NullFrame` (a valid JSON frame with `"choices":[null]` at a random frame, after which the
 * body ends: a typed error, never the end of the answer). 10% of callers are interrupted at random. The primary has 2 keys so that both
 * are often cooling at once: a 429 then reaches the retry schedules instead of being
 * re-tried on another key.
 *
 * The secondary's key pool lives in a private redis-server (`Redis.layerKeyPool`), which
 * goes down twice mid-run: killed once 40% of the requests have ended and restarted, empty,
 * on the same port 3 s later; frozen (SIGSTOP) for 2.5 s once 65% have ended. (Its limiter
 * stays in memory: the exact limiter checks below read the limiter's own clock and waits,
 * and a Redis limiter decides by the Redis server's clock inside a script.) Without a
 * redis-server binary, that pool stays in memory and the outages are skipped, saying so.
 *
 * It asserts what users need from a resilient client: every request ends in success or a
 * typed `LlmError` (no defects, no hangs; the store's `StoreUnavailableError` is one);
 * successful streams carry exactly the text the server sent, and end with `Finish`, and
 * partial failures carry an exact prefix of it (a success that lost events is counted as a
 * silent success, and there must be none); every key lease is returned, in memory and in
 * Redis after the outages; no retry reaches a key before its retry-after, and no retry of a
 * call comes before the `retryAfter` of the error it retries; once a stream has delivered an
 * event, no model is asked again for that call; no limiter is exceeded; no key is leased
 * without Redis's answer (no lease asked for after Redis was dead or stopped is granted
 * before it was back, and no key reaches the secondary's server more often than it was
 * leased); and calls succeed on the secondary again after each outage.
 *
 * Every check holds on a busy machine as on an idle one: each compares times that are
 * causally ordered (a retry follows the failure it retries; an arrival follows its
 * admission; a lease asked for after Redis was seen dead or stopped, and granted before it
 * was restarted or thawed, had no answer from it), or the limiter's own decisions read from
 * its own clock, or counts and Redis's own state, never a time that event-loop lag can move.
 * (That each outage met requests, refused some and was followed by successes is checked too:
 * a lease is asked for as each begins, and the outages come at shares of the run, not at
 * times.) `CHAOS_REQUESTS` and `CHAOS_SEED` override the size and the seed.
 */
import { describe, expect, it } from "@effect/vitest"
import { Cause, Clock, Context, Duration, Effect, Exit, Fiber, Layer, Option, Stream } from "effect"
import { monitorEventLoopDelay, performance } from "node:perf_hooks"
import { inject } from "vitest"
import { Fallback, KeyPool, LanguageModel, LlmError, Message, OpenAiCompatible, RateLimiter, Retry, Transport } from "../../src/index.js"
import * as Redis from "../../src/Redis.js"
import * as Testing from "../../src/Testing.js"
import { redisServer } from "../support/redisServer.js"

/** Without a redis-server binary, the secondary's pool stays in memory and there is no outage. */
const REDIS = inject("redisUrl") !== ""
if (!REDIS) console.warn("[chaos] no redis-server: the secondary's pool stays in memory and the Redis outages are skipped")

const REQUESTS = Number(process.env.CHAOS_REQUESTS ?? 10_000)
const SEED = Number(process.env.CHAOS_SEED ?? 20261121)
const CONCURRENCY = 48
/** A small bucket, so that bursts of retries really queue at the limiter. */
const LIMIT = { capacity: 4, refillPerSecond: 500 }
/**
 * The retry-after of a 429, in millis: mostly a few, sometimes tens, so that now and then
 * every key of a provider is cooling and the error reaches the retry schedules.
 */
const retryAfterMs = (random: () => number) =>
  random() < 0.15 ? 20 + Math.floor(random() * 21) : 2 + Math.floor(random() * 8)
/** The longest of them. */
const MAX_RETRY_AFTER_MS = 40
/**
 * How early a wait may end against `performance.now`: Effect's clock reads `Date.now`, whole
 * millis, and a timer fires on the loop's whole-millisecond time; lag only makes waits longer.
 */
const TIMER_SLACK_MS = 2
/** The fake's streamed reply, in frames: role, 6 of text, finish reason, usage, [DONE]. */
const STREAM_FRAMES = 10
/** The Redis outages: when (the share of requests ended) and how long. */
const KILL_AT = 0.4
const KILL_MS = 3000
const FREEZE_AT = 0.65
const FREEZE_MS = 2500

/** mulberry32: a small seeded PRNG, so a failing run can be replayed. */
const prng = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = seed
  t = Math.imul(t ^ (t >>> 15), t | 1)
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

/**
 * Every answer is this text. Stream faults make the fake cut its default reply, so one
 * text for all keeps partial answers checkable; distinct words make any repeated or
 * dropped piece visible.
 */
const ANSWER = "one two three four five six seven eight nine ten eleven twelve thirteen fourteen."
const expectedText = (_id: string) => ANSWER

interface Arrival {
  readonly at: number
  /** `Date.now()`, the clock the limiter reads. */
  readonly wall: number
  readonly key: string
  readonly id: string
  /** The retry-after sent with a 429, in millis. */
  readonly retryAfterMs: number | undefined
}

/** A fake whose responder draws a fault per request and records each arrival. */
const chaoticFake = (random: () => number, arrivals: Array<Arrival>, faults: Record<string, number>) =>
  Testing.FakeProvider.make({
    record: false,
    reply: { text: ANSWER, chunks: 6 },
    respond: (request) => {
      const body = request.body as { messages?: Array<{ content?: unknown }>; stream?: boolean }
      const id = String(body.messages?.[0]?.content ?? "?")
      const key = String(request.headers.authorization ?? "")
      const stream = body.stream === true
      const r = random()
      let fault: Testing.Fault | undefined
      if (r < 0.20) fault = { _tag: "RateLimit", retryAfterMs: retryAfterMs(random) }
      else if (r < 0.25) fault = { _tag: "Status", status: [500, 502, 503, 529][Math.floor(random() * 4)]! }
      else if (r < 0.27) fault = { _tag: "Reset" }
      else if (r < 0.28 && stream) fault = { _tag: "CutStream", afterChunks: 1 + Math.floor(random() * 6) }
      else if (r < 0.29) fault = { _tag: "MalformedJson", afterChunks: 1 + Math.floor(random() * 6) }
      else if (r < 0.30 && stream) fault = { _tag: "NullFrame", afterChunks: Math.floor(random() * STREAM_FRAMES) }
      const name = fault?._tag ?? "ok"
      faults[name] = (faults[name] ?? 0) + 1
      arrivals.push({ at: performance.now(), wall: Date.now(), key, id, retryAfterMs: fault?._tag === "RateLimit" ? fault.retryAfterMs : undefined })
      return fault
    }
  })

type AnyFiber = Fiber.RuntimeFiber<unknown, unknown>

/** One admission being decided: the limiter's first clock read (its reservation) and the first wait it gave. */
interface Deciding {
  at: number | undefined
  /** Which clock read that was, to order it against the pauses the limiter learned. */
  read: number
  wait: number | undefined
}

/** A pause the limiter learned from a retry-after: from its clock read `read` on, until `until`. */
interface Pause {
  readonly read: number
  readonly until: number
}

/** A reservation an interrupted waiter gave back, some time between `at` and `returnedBy`. */
interface Refund {
  readonly at: number
  readonly wait: number
  readonly returnedBy: number
}

interface Admission {
  readonly at: number
  readonly read: number
  /** Limiter-clock millis at which the admission was covered: `at` plus the wait it was given. */
  readonly covered: number
}

/**
 * The limiter's own record of its decisions: for each admission, the time it read from its
 * clock when it reserved and the wait it then gave; for each pause, when it learned it and
 * until when. A slow event loop delays when a waiter resumes, but not these, so the bucket
 * can be judged exactly on a busy machine too. The limiter reads this clock (it was made on
 * it) and its waiters sleep on it; each read and sleep is told apart by the fiber making it.
 */
class LimiterLog {
  reads = 0
  readonly deciding = new Map<AnyFiber, Deciding>()
  /** Fibers in `observe`, with the pause the headers they observe ask for (0 for none). */
  readonly learning = new Map<AnyFiber, { readonly pauseMs: number; seen: boolean }>()
  readonly pauses: Array<Pause> = []
  readonly admissions: Array<Admission> = []
  /** Reservations given back: their waiter was interrupted (`returnedBy`: Date.now() just after). */
  readonly refunds: Array<Refund> = []
  waited = 0
  /** Admissions granted without their reservation seen: the recording itself failed. */
  unseen = 0

  readonly clock: Clock.Clock
  constructor() {
    const base = Clock.make()
    const clock: Clock.Clock = {
      [Clock.ClockTypeId]: Clock.ClockTypeId,
      unsafeCurrentTimeMillis: () => {
        const now = base.unsafeCurrentTimeMillis()
        const read = ++this.reads
        const fiber = Fiber.getCurrentFiber()
        if (Option.isNone(fiber)) return now
        const admission = this.deciding.get(fiber.value)
        if (admission !== undefined && admission.at === undefined) {
          admission.at = now
          admission.read = read
        }
        const learning = this.learning.get(fiber.value)
        if (learning !== undefined && !learning.seen) {
          learning.seen = true
          if (learning.pauseMs > 0) this.pauses.push({ read, until: now + learning.pauseMs })
        }
        return now
      },
      currentTimeMillis: Effect.sync(() => clock.unsafeCurrentTimeMillis()),
      unsafeCurrentTimeNanos: () => base.unsafeCurrentTimeNanos(),
      currentTimeNanos: base.currentTimeNanos,
      sleep: (duration) =>
        Effect.withFiberRuntime((fiber) => {
          const admission = this.deciding.get(fiber)
          if (admission !== undefined && admission.wait === undefined) admission.wait = Duration.toMillis(duration)
          return base.sleep(duration)
        })
    }
    this.clock = clock
  }

  /**
   * The admissions whose time the bucket alone decided. One that a pause held is covered when
   * the pause ends, whenever the bucket would have covered it; those are left out (they are
   * judged, with the pause's allowance, among all admissions).
   */
  bucketDecided(): Array<number> {
    const byRead = [...this.admissions].sort((a, b) => a.read - b.read)
    const out: Array<number> = []
    let pausedUntil = 0
    let next = 0
    for (const admission of byRead) {
      while (next < this.pauses.length && this.pauses[next]!.read < admission.read) {
        pausedUntil = Math.max(pausedUntil, this.pauses[next]!.until)
        next++
      }
      if (!(pausedUntil > admission.at && admission.covered === pausedUntil)) out.push(admission.covered)
    }
    return out
  }
}

/** The pause `observe` learns from these headers, as the limiter reads them (public `parseHeaders`). */
const pauseOf = (headers: RateLimiter.HeaderInput): number => {
  const limits = RateLimiter.parseHeaders(headers, Date.now())
  const exhausted = (d: RateLimiter.ServerDimension) => (d.remaining === 0 ? d.resetMs ?? 0 : 0)
  return Math.max(limits.retryAfterMs ?? 0, exhausted(limits.requests), exhausted(limits.tokens))
}

/** A limiter made on a `LimiterLog`'s clock, recording each admission it grants and each pause it learns. */
const recordingLimiter = (options: RateLimiter.Options) =>
  Effect.gen(function* () {
    const log = new LimiterLog()
    const limiter = yield* Effect.withClock(RateLimiter.make(options), log.clock)
    const service: RateLimiter.Service = {
      ...limiter,
      admit: (cost) =>
        Effect.withFiberRuntime((fiber) => {
          const admission: Deciding = { at: undefined, read: 0, wait: undefined }
          log.deciding.set(fiber, admission)
          return limiter.admit(cost).pipe(
            Effect.withClock(log.clock),
            Effect.onExit((exit) =>
              Effect.sync(() => {
                log.deciding.delete(fiber)
                if (Exit.isFailure(exit)) {
                  if (admission.at !== undefined) log.refunds.push({ at: admission.at, wait: admission.wait ?? 0, returnedBy: Date.now() })
                  return
                }
                if (admission.at === undefined) return void log.unseen++
                const wait = admission.wait ?? 0
                if (wait > 0) log.waited++
                log.admissions.push({ at: admission.at, read: admission.read, covered: admission.at + wait })
              })
            )
          )
        }),
      observe: (headers) =>
        Effect.withFiberRuntime((fiber) => {
          log.learning.set(fiber, { pauseMs: pauseOf(headers), seen: false })
          return Effect.ensuring(limiter.observe(headers), Effect.sync(() => log.learning.delete(fiber)))
        })
    }
    return { service, log }
  })

/**
 * The most admissions in any window [u, v], less what the bucket could have granted in it:
 * its refill, and each token an interrupted waiter gave back that could count there. A token
 * given back (at some time in [at, returnedBy]) can be spent from then on; and while waiters
 * that reserved before it are still waiting (at most `horizon` millis), it can also add to
 * the level a window starts with. So it counts in windows with at <= v and u <= returnedBy +
 * horizon. (The bucket counts a reservation's token from when it was made, and gives it back
 * whole: after the level has meanwhile been capped, that is a token more than if the
 * reservation had never been made.)
 */
const worstExcess = (
  times: ReadonlyArray<number>,
  refillPerSecond: number,
  refunds: ReadonlyArray<Refund>,
  horizon: number
): number => {
  const sorted = [...times].sort((a, b) => a - b)
  const given = refunds.map((r) => r.at).sort((a, b) => a - b)
  const spent = refunds.map((r) => r.returnedBy + horizon).sort((a, b) => a - b)
  let givenBy = 0
  let spentBefore = 0
  let minStart = Infinity
  let worst = -Infinity
  sorted.forEach((t, k) => {
    while (givenBy < given.length && given[givenBy]! <= t) givenBy++
    while (spentBefore < spent.length && spent[spentBefore]! < t) spentBefore++
    const refill = (refillPerSecond * t) / 1000
    // window [sorted[i], t]: (k - i + 1) - refill·(t - sorted[i]) - (givenBy - spentBefore at sorted[i])
    minStart = Math.min(minStart, k - refill - spentBefore)
    worst = Math.max(worst, k - refill - givenBy - minStart + 1)
  })
  return worst
}

interface ChatAttempt {
  readonly start: number
  failedAt?: number
  retryAfterMs?: number | undefined
  succeededAt?: number
}

/**
 * Records each chat attempt a model makes for a call: when it started, when it failed and
 * with what `retryAfter`. Streams pass through untouched: wrapping them would move Retry and
 * Fallback off the provider stream's own delivery tracking, which is the path under test.
 */
const recordingChats = (name: string, log: Map<string, Array<ChatAttempt>>) =>
  Layer.effect(
    LanguageModel.LanguageModel,
    Effect.map(LanguageModel.LanguageModel, (inner): LanguageModel.Service => ({
      ...inner,
      chat: (request) =>
        Effect.suspend(() => {
          const call = `${name}|${String(request.messages[0]?.content ?? "?")}`
          const attempt: ChatAttempt = { start: performance.now() }
          const attempts = log.get(call)
          if (attempts === undefined) log.set(call, [attempt])
          else attempts.push(attempt)
          return Effect.tapBoth(inner.chat(request), {
            onFailure: (error) =>
              Effect.sync(() => {
                attempt.failedAt = performance.now()
                const hint = (error as { readonly retryAfter?: Duration.Duration }).retryAfter
                attempt.retryAfterMs = hint === undefined ? undefined : Duration.toMillis(hint)
              }),
            onSuccess: () => Effect.sync(() => void (attempt.succeededAt = performance.now()))
          })
        })
    }))
  )

/** Every retry of a call on one model against the `retryAfter` of the failure it follows. */
const retryAfterIgnored = (log: ReadonlyMap<string, ReadonlyArray<ChatAttempt>>) => {
  let checked = 0
  const violations: Array<string> = []
  for (const [call, attempts] of log) {
    for (let i = 1; i < attempts.length; i++) {
      const previous = attempts[i - 1]!
      if (previous.failedAt === undefined || previous.retryAfterMs === undefined) continue
      checked++
      const waited = attempts[i]!.start - previous.failedAt
      if (waited < previous.retryAfterMs - TIMER_SLACK_MS) {
        violations.push(`${call}: retried ${waited.toFixed(2)} ms after an error with retryAfter ${previous.retryAfterMs} ms`)
      }
    }
  }
  return { checked, violations }
}

/** Requests for a stream's call that reached any server after the caller had its first event. */
const askedAfterFirstEvent = (firstEvents: ReadonlyMap<string, number>, servers: Record<string, ReadonlyArray<Arrival>>) => {
  const violations: Array<string> = []
  for (const [server, arrivals] of Object.entries(servers)) {
    for (const arrival of arrivals) {
      const first = firstEvents.get(arrival.id)
      if (first !== undefined && arrival.at > first) {
        violations.push(`${arrival.id}: a request reached ${server} ${(arrival.at - first).toFixed(2)} ms after the caller's first event`)
      }
    }
  }
  return violations
}

/** Every 429 on (request, key) against the next arrival of that request on that key. */
const retryAfterViolations = (arrivals: ReadonlyArray<Arrival>) => {
  const last = new Map<string, Arrival>()
  let checked = 0
  const violations: Array<string> = []
  for (const arrival of arrivals) {
    const slot = `${arrival.id}|${arrival.key}`
    const previous = last.get(slot)
    if (previous?.retryAfterMs !== undefined) {
      checked++
      // 1 ms of slack: timers have millisecond resolution, performance.now does not
      if (arrival.at < previous.at + previous.retryAfterMs - 1) {
        violations.push(`${slot}: ${(arrival.at - previous.at).toFixed(2)} ms after a ${previous.retryAfterMs} ms retry-after`)
      }
    }
    last.set(slot, arrival)
  }
  return { checked, violations }
}

/** A lease the pool granted: when it was asked for and when it was granted (`performance.now`). */
interface Grant {
  readonly keyId: string
  readonly asked: number
  readonly granted: number
}

/** An `acquire` that failed with `StoreUnavailableError`. */
interface Refusal {
  readonly asked: number
  readonly at: number
}

/** A pool that records each lease it grants and each `StoreUnavailableError` it fails with. */
const recordingPool = (pool: KeyPool.Service, grants: Array<Grant>, refusals: Array<Refusal>): KeyPool.Service => ({
  ...pool,
  acquire: Effect.suspend(() => {
    const asked = performance.now()
    return Effect.tapBoth(pool.acquire, {
      onSuccess: (lease) => Effect.sync(() => void grants.push({ keyId: lease.keyId, asked, granted: performance.now() })),
      onFailure: (error) =>
        Effect.sync(() => void (error._tag === "StoreUnavailableError" && refusals.push({ asked, at: performance.now() })))
    })
  }),
  // the providers lease with `acquire`; a lease taken here would go unrecorded
  withKey: () => Effect.dieMessage("chaos: the stack was expected to lease with acquire")
})

/**
 * A span in which the redis-server could answer nothing: from when it was dead (its exit
 * seen) or stopped (its state read as stopped), to just before it was started again or
 * sent SIGCONT (`performance.now`).
 */
interface Outage {
  readonly kind: "kill" | "freeze"
  readonly from: number
  readonly to: number
  /** Requests ended when it went down. */
  readonly ended: number
  /** When it was back: the restarted server answered PING, or SIGCONT was sent. */
  back: number
}

/**
 * Leases granted without Redis's answer: asked for after the server was dead or stopped,
 * and granted before it was started or thawed. Its answer cannot have come in between.
 */
const leasedWithoutRedis = (grants: ReadonlyArray<Grant>, outages: ReadonlyArray<Outage>) =>
  grants.filter((g) => outages.some((o) => g.asked >= o.from && g.granted <= o.to))

/** Per key: the requests the server saw with it, and the leases the pool granted on it. */
const sentAndLeased = (arrivals: ReadonlyArray<Arrival>, grants: ReadonlyArray<Grant>, keys: ReadonlyArray<string>) =>
  keys.map((key) => {
    const keyId = KeyPool.fingerprint(key)
    return {
      key,
      sent: arrivals.filter((a) => a.key === `Bearer ${key}`).length,
      leased: grants.filter((g) => g.keyId === keyId).length
    }
  })

describe("chaos", () => {
  it.live(`${REQUESTS} requests under injected faults end cleanly`, () =>
    Effect.gen(function* () {
      const random = prng(SEED)
      const arrivals = { a: [] as Array<Arrival>, b: [] as Array<Arrival> }
      const faults: Record<string, number> = {}
      const fakeA = yield* chaoticFake(random, arrivals.a, faults)
      const fakeB = yield* chaoticFake(random, arrivals.b, faults)
      const poolA = yield* KeyPool.make({ providerId: "a", keys: ["ka-1", "ka-2"] })
      const keysB = ["kb-1", "kb-2", "kb-3"]
      // the secondary's pool in a redis-server of the test's own (its finalizer thaws and kills it);
      // leases outlive the run, so a lease never given back is still counted at the end
      const redis = REDIS ? yield* redisServer : undefined
      const storedPoolB = redis === undefined
        ? yield* KeyPool.make({ providerId: "b", keys: keysB })
        : Context.get(
          yield* Layer.build(Redis.layerKeyPool({ url: redis.url, prefix: "chaos:", providerId: "b", keys: keysB, leaseTtl: "10 minutes" })),
          KeyPool.KeyPool
        )
      const grantsB: Array<Grant> = []
      const refusalsB: Array<Refusal> = []
      const poolB = recordingPool(storedPoolB, grantsB, refusalsB)
      const limiterA = yield* recordingLimiter(LIMIT)
      const limiterB = yield* recordingLimiter(LIMIT)
      const fast = Retry.schedule({ initialDelay: "2 millis", maxDelay: "20 millis", maxRetries: 3, maxRetryAfter: "1 second" })
      // each model's chat attempts per call, under the schedule that retries them (Fallback's step for a, Retry for b)
      const chatAttempts = new Map<string, Array<ChatAttempt>>()

      const modelA = recordingChats("a", chatAttempts).pipe(
        Layer.provide(OpenAiCompatible.layer({ model: "model-a", provider: "a", baseUrl: fakeA.baseUrl, timeout: "10 seconds" })),
        Layer.provide(Layer.succeed(KeyPool.KeyPool, poolA)),
        Layer.provide(Layer.succeed(RateLimiter.RateLimiter, limiterA.service))
      )
      const modelB = Retry.layer(fast).pipe(
        Layer.provide(recordingChats("b", chatAttempts)),
        Layer.provide(OpenAiCompatible.layer({ model: "model-b", provider: "b", baseUrl: fakeB.baseUrl, timeout: "10 seconds" })),
        Layer.provide(Layer.succeed(KeyPool.KeyPool, poolB)),
        Layer.provide(Layer.succeed(RateLimiter.RateLimiter, limiterB.service))
      )
      const stack = Fallback.layer([{ model: modelA, attempts: 2, schedule: fast }, { model: modelB }]).pipe(
        Layer.provide(Transport.layerUndici)
      )
      const model = Context.get(yield* Layer.build(stack), LanguageModel.LanguageModel)

      const tally = {
        ok: 0,
        typedError: 0,
        partial: 0,
        interrupted: 0,
        defect: 0,
        untyped: 0,
        hang: 0,
        wrongText: 0,
        wrongPartial: 0,
        silentSuccess: 0
      }
      const errors: Record<string, number> = {}
      const problems: Array<string> = []
      /** When each streaming caller received its first event. */
      const firstEvents = new Map<string, number>()
      const started = performance.now()
      // reported, not used by any check: it shows how busy the machine was
      const lag = monitorEventLoopDelay({ resolution: 10 })
      lag.enable()

      /** Requests ended, for the outages' timing. */
      let ended = 0
      const outages: Array<Outage> = []
      const whenEnded = (share: number) => Effect.repeat(Effect.sleep(10), { until: () => ended >= REQUESTS * share })
      // One lease asked for at the start of each outage besides the stack's own, so that each
      // outage surely meets a request (it goes through the recording pool, like the stack's).
      // It too must end in a lease or a typed error.
      const probe = Effect.fork(Effect.scoped(poolB.acquire))
      const probed = (fiber: Fiber.RuntimeFiber<KeyPool.Lease, LlmError.LlmError>) =>
        Effect.map(Fiber.await(fiber), (exit) => {
          if (Exit.isFailure(exit) && !LlmError.isLlmError(Option.getOrUndefined(Cause.failureOption(exit.cause)))) {
            problems.push(`a lease asked for during an outage: ${Cause.pretty(exit.cause)}`)
          }
        })
      // killed, then restarted empty on the same port; later frozen, then thawed (also if interrupted)
      const outage = redis === undefined ? Effect.void : Effect.gen(function* () {
        yield* whenEnded(KILL_AT)
        const endedAtKill = ended
        yield* redis.kill
        const killed = performance.now()
        const probeKill = yield* probe
        yield* Effect.sleep(KILL_MS)
        const kill: Outage = { kind: "kill", from: killed, to: performance.now(), ended: endedAtKill, back: Infinity }
        outages.push(kill)
        yield* redis.start
        kill.back = performance.now()
        yield* probed(probeKill)
        yield* whenEnded(FREEZE_AT)
        const endedAtFreeze = ended
        const [freeze, probeFreeze] = yield* Effect.acquireUseRelease(
          Effect.zipRight(Effect.zipRight(redis.freeze, redis.stopped), Effect.sync(() => performance.now())),
          (stopped) =>
            Effect.gen(function* () {
              const probing = yield* probe
              yield* Effect.sleep(FREEZE_MS)
              const frozen: Outage = { kind: "freeze", from: stopped, to: performance.now(), ended: endedAtFreeze, back: Infinity }
              return [frozen, probing] as const
            }),
          () => redis.thaw
        )
        freeze.back = performance.now()
        outages.push(freeze)
        yield* probed(probeFreeze)
      })
      const outageFiber = yield* Effect.forkScoped(outage)

      const caller = (i: number) =>
        Effect.gen(function* () {
          const id = `req-${i}`
          const streaming = i % 2 === 0
          const interruptAfter = random() < 0.1 ? random() * 15 : undefined
          // what the caller received, event by event: a success must carry the whole answer and end with Finish
          const seen = { text: "", last: "" }
          const call = streaming
            ? LanguageModel.collect(model.stream(Message.request(id)).pipe(Stream.mapChunks((chunk) => {
              if (chunk.length > 0 && !firstEvents.has(id)) firstEvents.set(id, performance.now())
              for (const event of chunk) {
                if (event._tag === "TextDelta") seen.text += event.text
                seen.last = event._tag
              }
              return chunk
            })))
            : model.chat(Message.request(id))
          const fiber = yield* Effect.fork(Effect.timeout(call, "30 seconds"))
          if (interruptAfter !== undefined) {
            yield* Effect.sleep(interruptAfter)
            yield* Fiber.interrupt(fiber)
          }
          const exit = yield* Fiber.await(fiber)
          ended++
          if (Exit.isSuccess(exit)) {
            tally.ok++
            if (exit.value.text !== expectedText(id)) {
              tally.wrongText++
              problems.push(`${id}: got ${JSON.stringify(exit.value.text)}`)
            }
            const whole = exit.value.text === expectedText(id) &&
              (!streaming || (seen.text === expectedText(id) && seen.last === "Finish"))
            if (!whole) {
              tally.silentSuccess++
              problems.push(`${id}: a success without the whole answer: received ${JSON.stringify(seen.text)}, last event ${seen.last}`)
            }
            return
          }
          const cause = exit.cause
          if (Cause.isInterruptedOnly(cause)) {
            if (interruptAfter === undefined) problems.push(`${id}: interrupted without being asked`)
            tally.interrupted++
            return
          }
          if (Option.isSome(Cause.dieOption(cause))) {
            tally.defect++
            problems.push(`${id}: defect ${Cause.pretty(cause)}`)
            return
          }
          const error = Option.getOrUndefined(Cause.failureOption(cause))
          if (error !== undefined && error._tag === "TimeoutException") {
            tally.hang++
            problems.push(`${id}: no end within 30 s`)
            return
          }
          if (!LlmError.isLlmError(error)) {
            tally.untyped++
            problems.push(`${id}: untyped failure ${Cause.pretty(cause)}`)
            return
          }
          tally.typedError++
          errors[error._tag] = (errors[error._tag] ?? 0) + 1
          if (error._tag === "StreamError" && error.partial) {
            tally.partial++
            if (!streaming || !expectedText(id).startsWith(error.partialText ?? "\u0000")) {
              tally.wrongPartial++
              problems.push(`${id}: partial text ${JSON.stringify(error.partialText)} is not a prefix of the answer`)
            }
          }
        })

      yield* Effect.forEach(Array.from({ length: REQUESTS }, (_, i) => i), caller, { concurrency: CONCURRENCY, discard: true })
      const seconds = (performance.now() - started) / 1000
      lag.disable()
      yield* Fiber.join(outageFiber)

      // read from Redis after the outages, on the connection every release went through
      const keys = [...(yield* poolA.status), ...(yield* storedPoolB.status)]
      const leasedB = sentAndLeased(arrivals.b, grantsB, keysB)
      const withoutRedis = leasedWithoutRedis(grantsB, outages)
      // during each outage, the pool said so; after it, the secondary served calls again
      const successesB = [...chatAttempts].filter(([call]) => call.startsWith("b|")).flatMap(([, attempts]) => attempts)
      const outageReport = outages.map((o, i) => {
        const until = outages[i + 1]?.from ?? Infinity
        return {
          kind: o.kind,
          atEnded: o.ended,
          ms: Math.round(o.to - o.from),
          backAfterMs: Math.round(o.back - o.from),
          refusedInside: refusalsB.filter((r) => r.asked <= o.to && r.at >= o.from).length,
          leasedInside: grantsB.filter((g) => g.asked >= o.from && g.granted <= o.to).length,
          successesAfter: successesB.filter((a) => a.start >= o.back && a.succeededAt !== undefined && a.succeededAt <= until).length
        }
      })
      const retryAfter = retryAfterViolations([...arrivals.a, ...arrivals.b])
      const retries = retryAfterIgnored(chatAttempts)
      const afterFirstEvent = askedAfterFirstEvent(firstEvents, arrivals)
      const limiters = { a: limiterA.log, b: limiterB.log }
      const coveredAt = (log: LimiterLog) => log.admissions.map((a) => a.covered)
      // the longest any reservation waited (a pause-held one, up to the longest retry-after):
      // how long a token given back can weigh on the level
      const horizon = (log: LimiterLog) =>
        1 + Math.max(MAX_RETRY_AFTER_MS, ...log.admissions.map((a) => a.covered - a.at), ...log.refunds.map((r) => r.wait))
      const judge = (log: LimiterLog, times: ReadonlyArray<number>) => worstExcess(times, LIMIT.refillPerSecond, log.refunds, horizon(log))
      // the admissions the bucket alone timed: no window may hold more than it grants
      const bucketDecided = { a: limiters.a.bucketDecided(), b: limiters.b.bucketDecided() }
      const excess = { a: judge(limiters.a, bucketDecided.a), b: judge(limiters.b, bucketDecided.b) }
      // All of them: the reservations a retry-after pause held are all covered when it ends,
      // each at most that pause after the bucket would have covered it. So a window may hold
      // what the bucket refills in that much more time.
      const allowance = LIMIT.capacity + (LIMIT.refillPerSecond * MAX_RETRY_AFTER_MS) / 1000
      const excessAll = { a: judge(limiters.a, coveredAt(limiters.a)), b: judge(limiters.b, coveredAt(limiters.b)) }
      // At a server, every request was admitted before it arrived: so up to its last arrival,
      // no more than the bucket could have admitted since its first reservation (with the
      // tokens given back). Lag only delays arrivals, which loosens this bound, so it needs no
      // allowance for load. (+2 ms: a timer may end a wait up to a millisecond early, and
      // Date.now is whole millis.)
      const serverBound = (xs: ReadonlyArray<Arrival>, log: LimiterLog) => {
        if (xs.length === 0) return 0
        const span = Math.max(...xs.map((x) => x.wall)) + 2 - Math.min(...log.admissions.map((a) => a.at))
        return LIMIT.capacity + (LIMIT.refillPerSecond * span) / 1000 + log.refunds.length
      }
      const server = {
        a: { arrivals: arrivals.a.length, admitted: limiters.a.admissions.length, bound: serverBound(arrivals.a, limiters.a) },
        b: { arrivals: arrivals.b.length, admitted: limiters.b.admissions.length, bound: serverBound(arrivals.b, limiters.b) }
      }
      console.log(JSON.stringify({
        seed: SEED,
        requests: REQUESTS,
        seconds: Number(seconds.toFixed(1)),
        httpRequests: { a: arrivals.a.length, b: arrivals.b.length },
        faults,
        outcomes: tally,
        errors,
        retryAfterPairsChecked: retryAfter.checked,
        retriesAfterRetryAfterChecked: retries.checked,
        streamsWithAnEvent: firstEvents.size,
        limiterWorstWindow: { bucketDecided: excess, all: excessAll, allowanceForAll: allowance },
        admissions: {
          a: { all: limiters.a.admissions.length, bucketDecided: bucketDecided.a.length, waited: limiters.a.waited, pauses: limiters.a.pauses.length, refunds: limiters.a.refunds.length, horizon: horizon(limiters.a) },
          b: { all: limiters.b.admissions.length, bucketDecided: bucketDecided.b.length, waited: limiters.b.waited, pauses: limiters.b.pauses.length, refunds: limiters.b.refunds.length, horizon: horizon(limiters.b) }
        },
        server: { a: { ...server.a, bound: Number(server.a.bound.toFixed(1)) }, b: { ...server.b, bound: Number(server.b.bound.toFixed(1)) } },
        eventLoopLagMs: { p99: Number((lag.percentile(99) / 1e6).toFixed(1)), max: Number((lag.max / 1e6).toFixed(1)) },
        redis: redis === undefined ? "none" : { outages: outageReport, refused: refusalsB.length, leased: leasedB },
        keys: keys.map((k) => ({ key: k.keyId, inFlight: k.inFlight, successes: k.successes, failures: k.failures }))
      }))
      if (problems.length > 0) console.log(problems.slice(0, 20).join("\n"))

      expect(tally.ok + tally.typedError + tally.interrupted).toBe(REQUESTS)
      expect({ defect: tally.defect, untyped: tally.untyped, hang: tally.hang }).toEqual({ defect: 0, untyped: 0, hang: 0 })
      // no success without the whole answer ending with Finish (a NullFrame must never be taken for the end)
      expect({ silentSuccess: tally.silentSuccess }).toEqual({ silentSuccess: 0 })
      expect({ wrongText: tally.wrongText, wrongPartial: tally.wrongPartial }).toEqual({ wrongText: 0, wrongPartial: 0 })
      expect(problems).toEqual([])
      // the mix really happened, and the stack really served through it
      expect(faults.RateLimit! / (arrivals.a.length + arrivals.b.length)).toBeGreaterThan(0.15)
      expect(faults.Reset).toBeGreaterThan(0)
      expect(faults.CutStream).toBeGreaterThan(0)
      expect(faults.MalformedJson).toBeGreaterThan(0)
      expect(faults.NullFrame).toBeGreaterThan(0)
      expect(tally.ok).toBeGreaterThan(REQUESTS * 0.8)
      expect(tally.interrupted).toBeGreaterThan(0)
      expect(arrivals.b.length).toBeGreaterThan(0)
      // every lease came back
      expect(keys.map((k) => k.inFlight)).toEqual([0, 0, 0, 0, 0])
      // no retry reached a key before its retry-after
      expect(retryAfter.checked).toBeGreaterThan(REQUESTS / 50)
      expect(retryAfter.violations).toEqual([])
      // no schedule retried a call before the retryAfter of the error it retried
      expect(retries.checked).toBeGreaterThan(REQUESTS / 200)
      expect(retries.violations.slice(0, 3), `${retries.violations.length} of ${retries.checked} retries came before their retryAfter`).toEqual([])
      // once a stream delivered an event, no model was asked again for its call
      expect(firstEvents.size).toBeGreaterThan(REQUESTS / 4)
      expect(afterFirstEvent.slice(0, 3), `${afterFirstEvent.length} requests were sent after their stream's first event`).toEqual([])
      // the limiters never admitted more than a bucket of `capacity` refilled at `refillPerSecond`
      // (with the tokens interrupted waiters gave back), judged by their own clock and waits,
      // so a busy machine cannot change the answer: exactly for the admissions the bucket timed,
      // and with the longest pause's refill for those a retry-after pause held
      expect({ unseen: limiters.a.unseen + limiters.b.unseen }).toEqual({ unseen: 0 })
      expect(limiters.a.waited).toBeGreaterThan(0)
      expect(bucketDecided.a.length).toBeGreaterThan(limiters.a.admissions.length * 0.8)
      expect(excess.a).toBeLessThanOrEqual(LIMIT.capacity + 1e-9)
      expect(excess.b).toBeLessThanOrEqual(LIMIT.capacity + 1e-9)
      expect(excessAll.a).toBeLessThanOrEqual(allowance)
      expect(excessAll.b).toBeLessThanOrEqual(allowance)
      // and at the servers, nothing arrived that the limiters had not admitted
      for (const { arrivals: n, admitted, bound } of [server.a, server.b]) {
        expect(n).toBeLessThanOrEqual(admitted)
        expect(n).toBeLessThanOrEqual(bound)
      }
      // every request at the secondary came with a key the pool had leased for it: no key more often than it was leased
      expect(leasedB.reduce((n, k) => n + k.sent, 0)).toBe(arrivals.b.length)
      for (const { key, leased, sent } of leasedB) expect(sent, `${key}: sent ${sent} times, leased ${leased}`).toBeLessThanOrEqual(leased)
      if (redis !== undefined) {
        // no lease asked for while Redis was dead or stopped was granted before it was back
        expect(withoutRedis.slice(0, 3), `${withoutRedis.length} leases were granted without Redis`).toEqual([])
        // both outages came while requests were running, and the pool refused leases during each
        // (leases asked for before it ends, refused after it began)
        expect(outageReport.map((o) => o.kind)).toEqual(["kill", "freeze"])
        for (const o of outageReport) {
          expect(o.atEnded).toBeLessThan(REQUESTS)
          expect(o.refusedInside, `${o.kind}: no lease refused during the outage`).toBeGreaterThan(0)
        }
        // and the secondary served calls again after each outage
        for (const o of outageReport) expect(o.successesAfter, `${o.kind}: no success on the secondary after it`).toBeGreaterThan(0)
      }
    }).pipe(Effect.scoped), 540_000)
})

/**
 * Fallback and a stream's first event, under faults a provider does not already mark: the
 * primary is a model of the user's own (`LanguageModel.make`) over a real provider, whose
 * stream fails at random before or after some events with errors that are not partial
 * (retryable 5xx, network, 429, timeouts), or with a provider-style partial `StreamError`;
 * the secondary is a provider over a fake that draws 429s, 5xx, resets and cut streams.
 * With the default `when` and with one that takes every error, once a caller has an event
 * no model is asked again for its call, and a failure after it is a partial `StreamError`
 * with exactly the text received.
 */
describe("chaos: Fallback after a stream's first event", () => {
  const CALLS = 240

  it.live(`${CALLS} streams per policy never fall back nor retry once an event was delivered`, () =>
    Effect.gen(function* () {
      const random = prng(SEED + 1)
      // one logical clock for every log point: the JS thread orders them causally
      let tick = 0
      const started: Array<{ readonly id: string; readonly step: string; readonly at: number }> = []
      const idOf = (request: Message.ChatRequest) => {
        const first = request.messages[0]
        return first !== undefined && typeof first.content === "string" ? first.content : "?"
      }
      const fakeA = yield* Testing.FakeProvider.make({ record: false, reply: { text: ANSWER, chunks: 6 } })
      const fakeB = yield* Testing.FakeProvider.make({
        record: false,
        reply: { text: ANSWER, chunks: 6 },
        respond: (request) => {
          const r = random()
          if (r < 0.15) return { _tag: "RateLimit", retryAfterMs: 1 }
          if (r < 0.25) return { _tag: "Status", status: 503 }
          if (r < 0.30) return { _tag: "Reset" }
          if (r < 0.40 && (request.body as { stream?: boolean }).stream === true) return { _tag: "CutStream", afterChunks: 1 + Math.floor(random() * 5) }
          return undefined
        }
      })
      const provider = (fake: Testing.FakeProviderService, name: string) =>
        Effect.map(
          Layer.build(
            OpenAiCompatible.layer({ model: `model-${name}`, provider: name, baseUrl: fake.baseUrl, timeout: "10 seconds" }).pipe(
              Layer.provide(KeyPool.layer({ providerId: name, keys: [`k${name}-1`, `k${name}-2`] })),
              Layer.provide(RateLimiter.unlimited),
              Layer.provide(Transport.layerUndici)
            )
          ),
          Context.get(LanguageModel.LanguageModel)
        )
      const below = yield* provider(fakeA, "a")
      const secondary = yield* provider(fakeB, "b")
      const fault = (): LlmError.LlmError => {
        const r = random()
        const ids = { provider: "flaky", model: "f" }
        if (r < 0.3) return new LlmError.ServerError({ ...ids, message: "503 mid-stream", status: 503 })
        if (r < 0.5) return new LlmError.NetworkError({ ...ids, message: "connection reset mid-stream" })
        if (r < 0.65) return new LlmError.RateLimitError({ ...ids, message: "429 mid-stream", status: 429 })
        if (r < 0.8) return new LlmError.TimeoutError({ ...ids, message: "idle", phase: "idle" })
        return new LlmError.StreamError({ ...ids, message: "cut", partial: true, partialText: "" })
      }
      // the user's own model: the provider's events, or a failure before any event, or after some
      const flaky = LanguageModel.make({
        provider: "flaky",
        model: "f",
        chat: below.chat,
        stream: (request) =>
          Stream.suspend(() => {
            started.push({ id: idOf(request), step: "flaky", at: ++tick })
            const r = random()
            if (r < 0.35) return below.stream(request)
            const after = r < 0.7 ? 0 : 1 + Math.floor(random() * 6)
            return Stream.concat(Stream.take(below.stream(request), after), Stream.fail(fault()))
          })
      })
      const logged = LanguageModel.wrap(secondary, {
        stream: (request, tracker) =>
          Stream.suspend(() => {
            started.push({ id: idOf(request), step: "secondary", at: ++tick })
            return secondary.stream(request, tracker)
          })
      })

      for (const when of [undefined, () => true]) {
        const model = yield* Fallback.make([
          { model: LanguageModel.layer(flaky), attempts: 2 },
          { model: LanguageModel.layer(logged) }
        ], when === undefined ? {} : { when })
        const firstEvent = new Map<string, number>()
        const problems: Array<string> = []
        const tally = { ok: 0, beforeFirst: 0, afterFirst: 0 }
        yield* Effect.forEach(Array.from({ length: CALLS }, (_, i) => `${when === undefined ? "default" : "any"}-${i}`), (id) =>
          Effect.gen(function* () {
            let text = ""
            const exit = yield* Effect.exit(
              Stream.runForEach(model.stream(Message.request(id)), (event) =>
                Effect.sync(() => {
                  if (!firstEvent.has(id)) firstEvent.set(id, ++tick)
                  if (event._tag === "TextDelta") text += event.text
                }))
            )
            if (Exit.isSuccess(exit)) {
              tally.ok++
              if (text !== ANSWER) problems.push(`${id}: succeeded with ${JSON.stringify(text)}`)
              return
            }
            const error = Option.getOrUndefined(Cause.failureOption(exit.cause))
            if (error === undefined || !LlmError.isLlmError(error)) return void problems.push(`${id}: ${Cause.pretty(exit.cause)}`)
            if (!firstEvent.has(id)) return void tally.beforeFirst++
            tally.afterFirst++
            if (!(error._tag === "StreamError" && error.partial && error.partialText === text)) {
              problems.push(`${id}: failed after its first event with ${error._tag} (partial text ${JSON.stringify((error as { partialText?: string }).partialText)}, received ${JSON.stringify(text)})`)
            }
          }), { concurrency: 16, discard: true })
        const askedAgain = started.filter((s) => {
          const first = firstEvent.get(s.id)
          return first !== undefined && s.at > first
        })
        const policy = when === undefined ? "default when" : "when: () => true"
        expect(problems.slice(0, 3), `${policy}: ${problems.length} calls ended wrongly`).toEqual([])
        expect(askedAgain.slice(0, 3), `${policy}: ${askedAgain.length} models were asked after the caller's first event`).toEqual([])
        // the run met each case it is about
        expect(tally.ok, policy).toBeGreaterThan(CALLS / 4)
        expect(tally.afterFirst, policy).toBeGreaterThan(CALLS / 10)
        expect(started.filter((s) => s.step === "secondary" && s.id.startsWith(when === undefined ? "default" : "any")).length, policy)
          .toBeGreaterThan(CALLS / 20)
      }
    }).pipe(Effect.scoped), 120_000)
})
