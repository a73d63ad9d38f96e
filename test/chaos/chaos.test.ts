/**
 * The chaos suite: ≥ 10 000 requests, half of them streams, through a full stack
 * (2 models × 3 keys, rate limiters, retry, fallback) against two `FakeProvider`s that
 * draw a fault per request: 20% 429 with retry-after, 5% 5xx, 2% connection resets,
 * 1% streams cut mid-way, 1% malformed JSON. 10% of callers are interrupted at random.
 *
 * It asserts what users need from a resilient client: every request ends in success or a
 * typed `LlmError` (no defects, no hangs); successful streams carry exactly the text the
 * server sent, and partial failures carry an exact prefix of it; every key lease is
 * returned; no retry reaches a key before its retry-after; no limiter is exceeded.
 * `CHAOS_REQUESTS` and `CHAOS_SEED` override the size and the seed.
 */
import { describe, expect, it } from "@effect/vitest"
import { Cause, Context, Effect, Exit, Fiber, Layer, Option } from "effect"
import { monitorEventLoopDelay, performance } from "node:perf_hooks"
import { Fallback, KeyPool, LanguageModel, LlmError, Message, OpenAiCompatible, RateLimiter, Retry, Testing, Transport } from "../../src/index.js"

const REQUESTS = Number(process.env.CHAOS_REQUESTS ?? 10_000)
const SEED = Number(process.env.CHAOS_SEED ?? 20261121)
const CONCURRENCY = 48
/** A small bucket, so that bursts of retries really queue at the limiter. */
const LIMIT = { capacity: 4, refillPerSecond: 500 }

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
      if (r < 0.20) fault = { _tag: "RateLimit", retryAfterMs: 2 + Math.floor(random() * 8) }
      else if (r < 0.25) fault = { _tag: "Status", status: [500, 502, 503, 529][Math.floor(random() * 4)]! }
      else if (r < 0.27) fault = { _tag: "Reset" }
      else if (r < 0.28 && stream) fault = { _tag: "CutStream", afterChunks: 1 + Math.floor(random() * 6) }
      else if (r < 0.29) fault = { _tag: "MalformedJson", afterChunks: 1 + Math.floor(random() * 6) }
      const name = fault?._tag ?? "ok"
      faults[name] = (faults[name] ?? 0) + 1
      arrivals.push({ at: performance.now(), key, id, retryAfterMs: fault?._tag === "RateLimit" ? fault.retryAfterMs : undefined })
      return fault
    }
  })

/** A limiter that records when each admission was granted, and how many had to wait (through the public interface). */
const recording = (limiter: RateLimiter.Service, admits: Array<number>, waited: { count: number }): RateLimiter.Service => ({
  ...limiter,
  admit: (cost) =>
    Effect.suspend(() => {
      const asked = performance.now()
      return Effect.tap(limiter.admit(cost), () =>
        Effect.sync(() => {
          const now = performance.now()
          if (now - asked > 1) waited.count++
          admits.push(now)
        }))
    })
})

/** The most admissions in any window, less what the bucket could have granted in it. */
const worstExcess = (times: ReadonlyArray<number>, refillPerSecond: number): number => {
  const sorted = [...times].sort((a, b) => a - b)
  let minF = Infinity
  let worst = -Infinity
  sorted.forEach((t, k) => {
    const f = k - (refillPerSecond * t) / 1000
    minF = Math.min(minF, f)
    worst = Math.max(worst, f - minF + 1)
  })
  return worst
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

describe("chaos", () => {
  it.live(`${REQUESTS} requests under injected faults end cleanly`, () =>
    Effect.gen(function* () {
      const random = prng(SEED)
      const arrivals = { a: [] as Array<Arrival>, b: [] as Array<Arrival> }
      const faults: Record<string, number> = {}
      const fakeA = yield* chaoticFake(random, arrivals.a, faults)
      const fakeB = yield* chaoticFake(random, arrivals.b, faults)
      const poolA = yield* KeyPool.make({ providerId: "a", keys: ["ka-1", "ka-2", "ka-3"] })
      const poolB = yield* KeyPool.make({ providerId: "b", keys: ["kb-1", "kb-2", "kb-3"] })
      const admits = { a: [] as Array<number>, b: [] as Array<number> }
      const waited = { count: 0 }
      const limiterA = recording(yield* RateLimiter.make(LIMIT), admits.a, waited)
      const limiterB = recording(yield* RateLimiter.make(LIMIT), admits.b, waited)
      const fast = Retry.schedule({ initialDelay: "2 millis", maxDelay: "20 millis", maxRetries: 3, maxRetryAfter: "1 second" })

      const modelA = OpenAiCompatible.layer({ model: "model-a", provider: "a", baseUrl: fakeA.baseUrl, timeout: "10 seconds" }).pipe(
        Layer.provide(Layer.succeed(KeyPool.KeyPool, poolA)),
        Layer.provide(Layer.succeed(RateLimiter.RateLimiter, limiterA))
      )
      const modelB = Retry.layer(fast).pipe(
        Layer.provide(OpenAiCompatible.layer({ model: "model-b", provider: "b", baseUrl: fakeB.baseUrl, timeout: "10 seconds" })),
        Layer.provide(Layer.succeed(KeyPool.KeyPool, poolB)),
        Layer.provide(Layer.succeed(RateLimiter.RateLimiter, limiterB))
      )
      const stack = Fallback.layer([{ model: modelA, attempts: 2, schedule: fast }, { model: modelB }]).pipe(
        Layer.provide(Transport.layerUndici)
      )
      const model = Context.get(yield* Layer.build(stack), LanguageModel.LanguageModel)

      const tally = { ok: 0, typedError: 0, partial: 0, interrupted: 0, defect: 0, untyped: 0, hang: 0, wrongText: 0, wrongPartial: 0 }
      const errors: Record<string, number> = {}
      const problems: Array<string> = []
      const started = performance.now()
      // admissions are timestamped when their fiber resumes, which event-loop lag delays
      const lag = monitorEventLoopDelay({ resolution: 10 })
      lag.enable()

      const caller = (i: number) =>
        Effect.gen(function* () {
          const id = `req-${i}`
          const streaming = i % 2 === 0
          const interruptAfter = random() < 0.1 ? random() * 15 : undefined
          const call = streaming
            ? LanguageModel.collect(model.stream(Message.request(id)))
            : model.chat(Message.request(id))
          const fiber = yield* Effect.fork(Effect.timeout(call, "30 seconds"))
          if (interruptAfter !== undefined) {
            yield* Effect.sleep(interruptAfter)
            yield* Fiber.interrupt(fiber)
          }
          const exit = yield* Fiber.await(fiber)
          if (Exit.isSuccess(exit)) {
            tally.ok++
            if (exit.value.text !== expectedText(id)) {
              tally.wrongText++
              problems.push(`${id}: got ${JSON.stringify(exit.value.text)}`)
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
      // p99, not max: one long pause (GC, start-up) would make the allowance meaningless
      const maxLagMs = lag.percentile(99) / 1e6
      // a delay of L ms can bunch up to rate × L admissions that the bucket spread out
      const allowance = LIMIT.capacity + 1 + (LIMIT.refillPerSecond * maxLagMs) / 1000

      const keys = [...(yield* poolA.status), ...(yield* poolB.status)]
      const retryAfter = retryAfterViolations([...arrivals.a, ...arrivals.b])
      const excess = { a: worstExcess(admits.a, LIMIT.refillPerSecond), b: worstExcess(admits.b, LIMIT.refillPerSecond) }
      const span = (xs: ReadonlyArray<Arrival>) => (xs.length < 2 ? 0 : xs[xs.length - 1]!.at - xs[0]!.at)
      console.log(JSON.stringify({
        seed: SEED,
        requests: REQUESTS,
        seconds: Number(seconds.toFixed(1)),
        httpRequests: { a: arrivals.a.length, b: arrivals.b.length },
        faults,
        outcomes: tally,
        errors,
        retryAfterPairsChecked: retryAfter.checked,
        limiterWorstWindow: excess,
        admissionsThatWaited: waited.count,
        p99EventLoopLagMs: Number(maxLagMs.toFixed(1)),
        limiterAllowance: Number(allowance.toFixed(1)),
        keys: keys.map((k) => ({ key: k.keyId, inFlight: k.inFlight, successes: k.successes, failures: k.failures }))
      }))
      if (problems.length > 0) console.log(problems.slice(0, 20).join("\n"))

      expect(tally.ok + tally.typedError + tally.interrupted).toBe(REQUESTS)
      expect({ defect: tally.defect, untyped: tally.untyped, hang: tally.hang }).toEqual({ defect: 0, untyped: 0, hang: 0 })
      expect({ wrongText: tally.wrongText, wrongPartial: tally.wrongPartial }).toEqual({ wrongText: 0, wrongPartial: 0 })
      expect(problems).toEqual([])
      // the mix really happened, and the stack really served through it
      expect(faults.RateLimit! / (arrivals.a.length + arrivals.b.length)).toBeGreaterThan(0.15)
      expect(faults.Reset).toBeGreaterThan(0)
      expect(faults.CutStream).toBeGreaterThan(0)
      expect(faults.MalformedJson).toBeGreaterThan(0)
      expect(tally.ok).toBeGreaterThan(REQUESTS * 0.8)
      expect(tally.interrupted).toBeGreaterThan(0)
      expect(arrivals.b.length).toBeGreaterThan(0)
      // every lease came back
      expect(keys.map((k) => k.inFlight)).toEqual([0, 0, 0, 0, 0, 0])
      // no retry reached a key before its retry-after
      expect(retryAfter.checked).toBeGreaterThan(REQUESTS / 50)
      expect(retryAfter.violations).toEqual([])
      // the limiters never admitted more than a bucket of `capacity` refilled at `refillPerSecond`
      expect(waited.count).toBeGreaterThan(0)
      expect(excess.a).toBeLessThanOrEqual(allowance)
      expect(excess.b).toBeLessThanOrEqual(allowance)
      // and, at the servers, the overall rate stayed within it too
      for (const xs of [arrivals.a, arrivals.b]) {
        expect(xs.length).toBeLessThanOrEqual(LIMIT.capacity + (LIMIT.refillPerSecond * span(xs)) / 1000 + 1)
      }
    }).pipe(Effect.scoped), 540_000)
})
