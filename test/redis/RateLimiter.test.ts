/**
 * Redis.layerRateLimiter against the real redis-server that test/setup/redis.ts starts:
 * one budget shared by several limiters, in this process and in four others.
 */
import { spawn } from "node:child_process"
import { randomUUID } from "node:crypto"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "@effect/vitest"
import { Cause, Context, Duration, Effect, Exit, Layer } from "effect"
import { inject } from "vitest"
import { RateLimiter } from "../../src/index.js"
import * as Redis from "../../src/Redis.js"
import { bundled } from "./bundle.js"
import { announce, targets } from "./targets.js"

const redisUrl = inject("redisUrl")
announce("the Redis.layerRateLimiter tests")

const worker = join(dirname(fileURLToPath(import.meta.url)), "limiter-worker.ts")

/** Builds a limiter layer into this scope, as a separate process would. */
const limiterIn = (options: Parameters<typeof Redis.layerRateLimiter>[0]) =>
  Effect.map(Layer.build(Redis.layerRateLimiter(options)), Context.get(RateLimiter.RateLimiter))

interface Worker {
  readonly ready: Promise<void>
  readonly go: () => void
  readonly times: Promise<Array<number>>
}

const startWorker = (script: string, env: Record<string, string>): Worker => {
  const child = spawn(process.execPath, [script, "admit"], {
    env: { ...process.env, ...env },
    stdio: ["pipe", "pipe", "pipe"]
  })
  let out = ""
  let err = ""
  let markReady: () => void = () => {}
  const ready = new Promise<void>((resolve) => (markReady = resolve))
  child.stdout.on("data", (d) => {
    out += d
    if (out.includes("ready\n")) markReady()
  })
  child.stderr.on("data", (d) => (err += d))
  const timer = setTimeout(() => child.kill("SIGKILL"), 55_000)
  const times = new Promise<Array<number>>((resolve, reject) =>
    child.on("exit", (code) => {
      clearTimeout(timer)
      markReady()
      if (code === 0) resolve(JSON.parse(out.split("\n").filter((l) => l.startsWith("["))[0]!) as Array<number>)
      else reject(new Error(`worker exited with ${code}: ${err}`))
    })
  )
  return { ready, go: () => child.stdin.end("go\n"), times }
}

for (const target of targets) describe.skipIf(!target.available)(`Redis.layerRateLimiter on ${target.name}`, () => {
  it.scopedLive("limiters on one Redis share one budget", () =>
    Effect.gen(function* () {
      const options = { ...target.options, prefix: `t-${randomUUID()}:`, name: "shared", capacity: 3, refillPerSecond: 0.01, onExceeded: "fail" as const }
      const a = yield* limiterIn(options)
      const b = yield* limiterIn(options)
      yield* a.admit({})
      yield* a.admit({})
      yield* b.admit({})
      const refused = yield* Effect.flip(b.admit({}).pipe(Effect.catchTag("StoreUnavailableError", Effect.die)))
      expect(refused._tag).toBe("RateLimitExceededError")
      expect(Duration.toMillis(refused.retryAfter!)).toBeGreaterThan(90_000)
      expect((yield* a.status).requests!.available).toBeLessThan(0.01)
      yield* a.reset
      expect((yield* b.status).requests!.available).toBe(3)
    }))

  it.scopedLive("observe lowers the shared bucket and a retry-after pauses every process", () =>
    Effect.gen(function* () {
      const options = { ...target.options, prefix: `t-${randomUUID()}:`, capacity: 100, refillPerSecond: 1, tokenCapacity: 10_000, tokenRefillPerSecond: 100 }
      const a = yield* limiterIn(options)
      const b = yield* limiterIn(options)
      yield* a.observe({ "x-ratelimit-remaining-requests": "7", "x-ratelimit-limit-tokens": "5000", "x-ratelimit-remaining-tokens": "4000" })
      const status = yield* b.status
      expect(status.requests!.available).toBeLessThan(7.5)
      expect(status.tokens!.capacity).toBe(5000)
      expect(status.tokens!.available).toBeLessThan(4100)
      yield* b.settle(1500, 500)
      expect((yield* a.status).tokens!.available).toBeLessThan(3100)

      yield* a.observe({ "retry-after-ms": "400" })
      const started = Date.now()
      yield* b.admit({})
      expect(Date.now() - started).toBeGreaterThanOrEqual(350)
      // an immediate re-try on another key is not held by the pause
      yield* a.observe({ "retry-after": "30" })
      const again = Date.now()
      yield* b.admit({ reattempt: true })
      expect(Date.now() - again).toBeLessThan(1000)
    }))

  it.scopedLive("a rate a provider reports lowers the shared bucket's capacity and refill for every process, never raises them", () =>
    Effect.gen(function* () {
      const options = { ...target.options, prefix: `t-${randomUUID()}:`, capacity: 100, refillPerSecond: 10 }
      const a = yield* limiterIn(options)
      const b = yield* limiterIn(options)
      yield* a.learnLimits({ source: "test", at: 0, requests: { limit: 30, intervalMs: 60_000 } })
      expect((yield* b.status).requests).toMatchObject({ capacity: 30, refillPerSecond: 0.5 })
      yield* a.learnLimits({ source: "test", at: 1, requests: { limit: 1000, intervalMs: 1_000 } })
      expect((yield* b.status).requests).toMatchObject({ capacity: 30, refillPerSecond: 0.5 })
    }))

  it.scopedLive("waiters across limiters are served in order at the refill rate", () =>
    Effect.gen(function* () {
      const options = { ...target.options, prefix: `t-${randomUUID()}:`, capacity: 1, refillPerSecond: 20 }
      const a = yield* limiterIn(options)
      const b = yield* limiterIn(options)
      const started = Date.now()
      yield* Effect.all([a.admit({}), b.admit({}), a.admit({}), b.admit({}), a.admit({})], { concurrency: "unbounded" })
      // one at once, four at 50 ms intervals
      expect(Date.now() - started).toBeGreaterThanOrEqual(190)
    }))

  it("four processes sharing one limiter never exceed capacity + rate × t in any window", async () => {
    const capacity = 4
    const rate = 20
    const perWorker = 10
    const env = {
      ...target.env,
      PREFIX: `t-${randomUUID()}:`,
      COUNT: String(perWorker),
      CAPACITY: String(capacity),
      RATE: String(rate)
    }
    const script = await bundled(worker)
    const workers = [0, 1, 2, 3].map(() => startWorker(script, env))
    await Promise.all(workers.map((w) => w.ready))
    workers.forEach((w) => w.go())
    const all = (await Promise.all(workers.map((w) => w.times))).flat().sort((x, y) => x - y)
    expect(all.length).toBe(4 * perWorker)
    // one admission of slack: a wall-clock timestamp is taken after the timer fires
    const slack = 1
    let worst = Number.NEGATIVE_INFINITY
    for (let i = 0; i < all.length; i++) {
      for (let j = i; j < all.length; j++) {
        const excess = j - i + 1 - (capacity + (rate * (all[j]! - all[i]!)) / 1000)
        worst = Math.max(worst, excess)
      }
    }
    expect(worst).toBeLessThanOrEqual(slack)
    // and the budget is used: 40 admissions at 20/s after a burst of 4 take about 1.8 s
    const span = all[all.length - 1]! - all[0]!
    expect(span).toBeGreaterThanOrEqual(((4 * perWorker - capacity) / rate) * 1000 - 50)
    expect(span).toBeLessThan(((4 * perWorker - capacity) / rate) * 1000 * 1.5)
  }, 60_000)
})

describe.skipIf(redisUrl === "")("Redis.layerRateLimiter options", () => {
  it.scoped("a bad url fails the layer with a RedisError that says why", () =>
    Effect.gen(function* () {
      const bad = yield* Effect.exit(Layer.build(Redis.layerRateLimiter({ url: "http://nope", capacity: 1, refillPerSecond: 1 })))
      expect(Exit.isFailure(bad) && Cause.pretty(bad.cause)).toContain("redis://host:port/db")
      const down = yield* Effect.exit(Layer.build(Redis.layerRateLimiter({ url: "redis://:secret@127.0.0.1:1/0", capacity: 1, refillPerSecond: 1 })))
      expect(Exit.isFailure(down)).toBe(true)
      const text = Exit.isFailure(down) ? Cause.pretty(down.cause) : ""
      expect(text).toContain("RedisError")
      expect(text).not.toContain("secret")
    }), { timeout: 15_000 })
})
