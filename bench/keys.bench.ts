/**
 * Key pool and rate limiter measurements: `npx tsx bench/keys.bench.ts`.
 *
 * - pool acquire + release, ops/s with 10 and with 1000 keys (the heap makes the ratio
 *   close to 1);
 * - the limiter's overhead per admission, against a plain `Ref` token bucket;
 * - accuracy: 1000 concurrent callers against a 50 req/s bucket for 10 s (set
 *   KEYS_BENCH_SECONDS to shorten): achieved rate >= 97% of configured, 0 violations;
 * - load spread across 8 keys under uniform load: max - min in flight <= 1.
 */
import { Effect, Fiber, Ref } from "effect"
import * as KeyPool from "../src/KeyPool.js"
import * as RateLimiter from "../src/RateLimiter.js"

const line = (label: string, value: string, goal?: { readonly ok: boolean; readonly text: string }) =>
  console.log(`${label.padEnd(58)} ${value.padStart(16)}${goal ? `   ${goal.ok ? "ok  " : "FAIL"} ${goal.text}` : ""}`)

const timeLoop = <E>(n: number, body: Effect.Effect<unknown, E>) =>
  Effect.gen(function* () {
    // warm up, then measure
    yield* Effect.repeatN(body, Math.min(n, 20_000) - 1)
    const start = performance.now()
    yield* Effect.repeatN(body, n - 1)
    return (performance.now() - start) / n
  })

const poolOps = (keys: number) =>
  Effect.gen(function* () {
    const pool = yield* KeyPool.make({ providerId: "bench", keys: Array.from({ length: keys }, (_, i) => `key-${i}`) })
    // a realistic pool carries load: half the keys hold a lease while we measure
    const held = yield* Effect.forkDaemon(
      Effect.scoped(Effect.zipRight(Effect.forEach(Array.from({ length: Math.floor(keys / 2) }), () => pool.acquire), Effect.never))
    )
    yield* Effect.yieldNow()
    const perOp = yield* timeLoop(100_000, Effect.scoped(pool.acquire))
    yield* Fiber.interrupt(held)
    return 1000 / perOp
  })

/** The floor for one admission: a token bucket in a `Ref`, no waiting, no spans. */
const plainBucket = Effect.gen(function* () {
  const state = yield* Ref.make({ level: 1e12, last: Date.now() })
  return Effect.flatMap(
    Effect.clockWith((clock) => Effect.succeed(clock.unsafeCurrentTimeMillis())),
    (now) =>
      Ref.modify(state, (s) => {
        const level = Math.min(1e12, s.level + (now - s.last) * 1e9)
        return [level >= 1, { level: level - 1, last: now }] as const
      })
  )
})

const accuracy = (seconds: number) =>
  Effect.gen(function* () {
    const rate = 50
    const capacity = 50
    const limiter = yield* RateLimiter.make({ capacity, refillPerSecond: rate })
    const times: Array<number> = []
    const start = performance.now()
    const deadline = start + seconds * 1000
    const caller = Effect.gen(function* () {
      while (performance.now() < deadline) {
        yield* limiter.admit({ requests: 1 })
        const now = performance.now()
        if (now <= deadline) times.push(now)
      }
    })
    const fibers = yield* Effect.forEach(Array.from({ length: 1000 }), () => Effect.fork(caller))
    yield* Effect.sleep(seconds * 1000)
    yield* Effect.forEach(fibers, Fiber.interrupt)
    times.sort((a, b) => a - b)
    let violations = 0
    for (let i = 0; i < times.length; i++) {
      // a window with `capacity` admissions or fewer cannot exceed the bound
      for (let j = i + capacity; j < times.length; j++) {
        if (j - i + 1 > capacity + (rate * (times[j]! - times[i]!)) / 1000 + 1e-6) violations++
      }
    }
    // the steady rate, after the initial burst of `capacity`
    const achieved = (times.length - capacity) / seconds
    return { admitted: times.length, achieved, ratio: achieved / rate, violations }
  })

const spread = Effect.gen(function* () {
  const pool = yield* KeyPool.make({ providerId: "bench", keys: Array.from({ length: 8 }, (_, i) => `key-${i}`) })
  let worst = 0
  let samples = 0
  const sample = Effect.map(pool.status, (status) => {
    const loads = status.map((s) => s.inFlight)
    worst = Math.max(worst, Math.max(...loads) - Math.min(...loads))
    samples++
  })
  // uniform load: 60 callers, each holding its key for the same time, again and again
  const caller = Effect.repeatN(Effect.scoped(Effect.zipRight(Effect.zipRight(pool.acquire, sample), Effect.sleep(5))), 100)
  yield* Effect.forEach(Array.from({ length: 60 }), () => caller, { concurrency: "unbounded" })
  return { worst, samples }
})

const program = Effect.gen(function* () {
  console.log("effect-llm key pool and rate limiter bench")
  const small = yield* poolOps(10)
  const large = yield* poolOps(1000)
  line("KeyPool acquire+release, 10 keys", `${Math.round(small).toLocaleString()} ops/s`)
  line("KeyPool acquire+release, 1000 keys", `${Math.round(large).toLocaleString()} ops/s`)
  line("  1000 keys / 10 keys", `${(large / small).toFixed(2)}x`, { ok: large / small > 0.5, text: "> 0.5 (log n)" })

  const plain = yield* plainBucket
  const floor = yield* timeLoop(200_000, plain)
  const limiter = yield* RateLimiter.make({ capacity: 1e12, refillPerSecond: 1e12 })
  const perAdmit = yield* timeLoop(200_000, limiter.admit({ requests: 1 }))
  const withTokens = yield* RateLimiter.make({ capacity: 1e12, refillPerSecond: 1e12, tokenCapacity: 1e12, tokenRefillPerSecond: 1e12 })
  const perAdmitTokens = yield* timeLoop(200_000, withTokens.admit({ requests: 1, tokens: 500 }))
  line("plain Ref token bucket, per admission", `${(floor * 1000).toFixed(2)} µs`)
  line("RateLimiter.admit (requests), per admission", `${(perAdmit * 1000).toFixed(2)} µs`)
  line("RateLimiter.admit (requests + tokens), per admission", `${(perAdmitTokens * 1000).toFixed(2)} µs`)
  line("  admit / plain bucket", `${(perAdmit / floor).toFixed(2)}x`, { ok: perAdmit / floor < 4, text: "< 4x" })

  const seconds = Number(process.env.KEYS_BENCH_SECONDS ?? 10)
  const acc = yield* accuracy(seconds)
  line(`1000 callers, 50 req/s bucket, ${seconds} s: admitted`, `${acc.admitted}`)
  line("  achieved rate / configured", `${(acc.ratio * 100).toFixed(1)}%`, { ok: acc.ratio >= 0.97, text: ">= 97%" })
  line("  windows over capacity + rate x t", `${acc.violations}`, { ok: acc.violations === 0, text: "= 0" })

  const s = yield* spread
  line(`8 keys, 60 callers uniform load: max - min in flight`, `${s.worst} (${s.samples} samples)`, { ok: s.worst <= 1, text: "<= 1" })
})

Effect.runPromise(program).catch((error) => {
  console.error(error)
  process.exitCode = 1
})
