/**
 * A separate process for the Redis tests, bundled (bundle.ts) and run as `node limiter-worker.mjs MODE`.
 * - `admit`: builds a Redis limiter shared with the other workers, prints "ready", waits
 *   for a line on stdin, takes COUNT admissions and prints, as JSON, the wall-clock
 *   millis of each admission.
 * - `hold`: leases a key from a Redis pool, prints "leased", and waits to be killed.
 */
import { Effect, Layer } from "effect"
import * as KeyPool from "../../src/KeyPool.js"
import * as RateLimiter from "../../src/RateLimiter.js"
import * as Redis from "../../src/Redis.js"
import { targetFromEnv } from "./workerTarget.js"

const env = (name: string): string => {
  const value = process.env[name]
  if (value === undefined || value === "") throw new Error(`limiter-worker: ${name} is not set`)
  return value
}

const target = targetFromEnv()
const prefix = env("PREFIX")
const mode = process.argv[2]

const admit = Effect.suspend(() => Effect.gen(function* () {
  const count = Number(env("COUNT"))
  const limiter = yield* RateLimiter.RateLimiter
  const times: Array<number> = []
  // start together, so that the workers contend from the first admission: say we are
  // ready, and wait for the parent's "go" on stdin
  process.stdout.write("ready\n")
  yield* Effect.async<void>((resume) => {
    process.stdin.once("data", () => resume(Effect.void))
  })
  for (let i = 0; i < count; i++) {
    yield* limiter.admit({ requests: 1 })
    times.push(Date.now())
  }
  process.stdout.write(JSON.stringify(times) + "\n")
}).pipe(
  Effect.provide(
    Redis.layerRateLimiter({
      ...target,
      prefix,
      name: "shared",
      capacity: Number(env("CAPACITY")),
      refillPerSecond: Number(env("RATE"))
    })
  )
))

const hold = Effect.suspend(() => Effect.gen(function* () {
  yield* KeyPool.acquire
  process.stdout.write("leased\n")
  yield* Effect.never
}).pipe(
  Effect.scoped,
  Effect.provide(
    Layer.orDie(Redis.layerKeyPool({ ...target, prefix, providerId: "openai", keys: ["k1", "k2"], leaseTtl: Number(env("LEASE_TTL_MS")) }))
  )
))

const program = mode === "admit" ? admit : mode === "hold" ? hold : Effect.dieMessage(`limiter-worker: unknown mode ${mode}`)

Effect.runPromise(program as Effect.Effect<void, unknown>).then(
  () => process.exit(0),
  (error) => {
    console.error(error)
    process.exit(1)
  }
)
