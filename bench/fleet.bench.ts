/**
 * Fleet measurements over Redis: `npx tsx bench/fleet.bench.ts` (needs `redis-server`; it
 * starts its own on a free loopback port, and says so and exits when the binary is absent).
 * Each "process" is a store layer of its own: its own connection, as another process's.
 *
 * - the circuit breaker's fleet-wide reaction time: process B asks the shared breaker in a
 *   loop; process A settles the failure that opens it; the time from A sending that outcome
 *   to B's first refusal, over many trials, beside one Redis round trip (PING);
 * - the budget's over-spend: four processes, eight requests in flight each, every request's
 *   actual usage its estimate times a factor in [0.6, 1.1], then in [1, 1.1] (a provider may
 *   bill more than the estimate), until the budget refuses them all; the recorded spend against the budget and
 *   the largest estimate, over many runs. Set FLEET_BENCH_RUNS to change the count (20).
 */
import { execFileSync, spawn } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import * as net from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Context, Effect, Exit, Layer, Scope } from "effect"
import * as Budget from "../src/Budget.js"
import * as CircuitBreaker from "../src/CircuitBreaker.js"
import * as Redis from "../src/Redis.js"

const binary = (() => {
  try {
    return execFileSync("sh", ["-c", "command -v redis-server"]).toString().trim() || undefined
  } catch {
    return undefined
  }
})()
if (binary === undefined) {
  console.log("fleet.bench: redis-server is not installed; skipped")
  process.exit(0)
}

const freePort = () =>
  new Promise<number>((resolve) => {
    const server = net.createServer()
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as net.AddressInfo).port
      server.close(() => resolve(port))
    })
  })

const quantile = (sorted: ReadonlyArray<number>, q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!
const ms = (n: number) => `${n.toFixed(2)} ms`

const port = await freePort()
const dir = mkdtempSync(join(tmpdir(), "effect-llm-fleet-bench-"))
const server = spawn(binary, ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir], { stdio: "ignore" })
process.on("exit", () => {
  server.kill("SIGKILL")
  rmSync(dir, { recursive: true, force: true })
})
await new Promise((r) => setTimeout(r, 300))
const url = `redis://127.0.0.1:${port}/0`

const breakerReaction = (trials: number) =>
  Effect.gen(function* () {
    const settings = { consecutiveFailures: 1, failureRate: 1, windowSize: 10, minimumRequests: 10, cooldownMillis: 60_000 }
    const storeOf = Effect.map(Layer.build(Redis.layerCircuitBreakerStore({ url, prefix: "bench:" })), Context.get(CircuitBreaker.CircuitBreakerStore))
    const [storeA, storeB] = yield* Effect.all([storeOf, storeOf])
    // one Redis round trip, for scale
    const pings: Array<number> = []
    const client = yield* Effect.map(Layer.build(Redis.layerBudgetStore({ url, prefix: "bench:" })), Context.get(Budget.BudgetStore))
    const probe = yield* client.make({ name: "ping", maxTokens: undefined, maxCost: undefined, warnAt: 1, leaseTtlMillis: 60_000, onWarning: () => Effect.void })
    for (let i = 0; i < 200; i++) {
      const start = performance.now()
      yield* probe.status({ start: 0, end: 1 }, 0)
      pings.push(performance.now() - start)
    }
    const reactions: Array<number> = []
    for (let trial = 0; trial < trials; trial++) {
      const endpoint = `bench-${trial}`
      const a = yield* storeA.make({ endpoint, settings, onTransition: () => Effect.void })
      const b = yield* storeB.make({ endpoint, settings, onTransition: () => Effect.void })
      const admitted = yield* a.admit(0)
      if (admitted._tag !== "Allowed") throw new Error("expected a closed breaker")
      let sentAt = Number.POSITIVE_INFINITY
      const poll = Effect.gen(function* () {
        for (;;) {
          const answer = yield* b.admit(0)
          if (answer._tag === "Rejected") return performance.now()
        }
      })
      const opener = Effect.zipRight(Effect.sleep(2), Effect.suspend(() => {
        sentAt = performance.now()
        return a.settle(admitted, "failure", 0)
      }))
      const [refusedAt] = yield* Effect.all([poll, opener], { concurrency: "unbounded" })
      reactions.push(refusedAt - sentAt)
    }
    pings.sort((x, y) => x - y)
    reactions.sort((x, y) => x - y)
    console.log(`one Redis round trip (a status script), median / p99            ${ms(quantile(pings, 0.5))} / ${ms(quantile(pings, 0.99))}`)
    console.log(`breaker reaction, failure sent in A -> refusal in B, ${trials} trials:`)
    console.log(`  median / p99 / max                                         ${ms(quantile(reactions, 0.5))} / ${ms(quantile(reactions, 0.99))} / ${ms(reactions[reactions.length - 1]!)}`)
  })

const overspend = (runs: number, minFactor: number, maxFactor: number) =>
  Effect.gen(function* () {
    const budget = 5000
    const results: Array<{ readonly spent: number; readonly largest: number; readonly requests: number }> = []
    for (let run = 0; run < runs; run++) {
      const scope = yield* Scope.make()
      const name = `bound-${minFactor}-${maxFactor}-${run}-${Date.now()}`
      const processes = yield* Effect.forEach([0, 1, 2, 3], () =>
        Effect.flatMap(
          Effect.map(Scope.extend(Layer.build(Redis.layerBudgetStore({ url, prefix: "bench:" })), scope), Context.get(Budget.BudgetStore)),
          (factory) => factory.make({ name, maxTokens: budget, maxCost: undefined, warnAt: 1, leaseTtlMillis: 60_000, onWarning: () => Effect.void })
        ))
      let largest = 0
      let requests = 0
      let counter = 0
      const fiber = (store: Budget.Store) =>
        Effect.gen(function* () {
          let refused = 0
          while (refused < 3) {
            const estimate = 20 + Math.floor(Math.random() * 60)
            const [start, end] = Budget.periodBounds("day", Date.now())
            const id = `${run}-${counter++}`
            const answer = yield* store.reserve({ id, period: { start, end }, tokens: estimate, cost: undefined, now: Date.now() })
            if (answer._tag === "Refused") {
              refused++
              yield* Effect.sleep(2)
              continue
            }
            refused = 0
            requests++
            largest = Math.max(largest, estimate)
            yield* Effect.sleep(1 + Math.random() * 5)
            const actual = Math.round(estimate * (minFactor + Math.random() * (maxFactor - minFactor)))
            yield* store.settle({ id, period: { start, end }, tokens: actual, cost: 0, now: Date.now() })
          }
        })
      yield* Effect.all(processes.flatMap((store) => Array.from({ length: 8 }, () => fiber(store))), { concurrency: "unbounded", discard: true })
      const [start, end] = Budget.periodBounds("day", Date.now())
      const status = yield* processes[0]!.status({ start, end }, Date.now())
      results.push({ spent: status.tokens, largest, requests })
      yield* Scope.close(scope, Exit.void)
    }
    const over = results.map((r) => r.spent - budget)
    const worst = Math.max(...over)
    const within = results.every((r) => r.spent - budget <= r.largest)
    console.log(`budget over-spend, 4 processes x 8 in flight, actual ${minFactor}-${maxFactor}x the estimate, ${runs} runs of ${budget} tokens:`)
    console.log(`  worst recorded spend - budget                              ${worst} tokens (largest estimate ${Math.max(...results.map((r) => r.largest))})` +
      `   ${within ? "ok  " : "FAIL"} within one request's largest estimate`)
    console.log(`  requests per run                                           ${Math.min(...results.map((r) => r.requests))}-${Math.max(...results.map((r) => r.requests))}`)
  })

await Effect.runPromise(Effect.scoped(Effect.gen(function* () {
  yield* breakerReaction(200)
  const runs = Number(process.env.FLEET_BENCH_RUNS ?? 20)
  yield* overspend(runs, 0.6, 1.1)
  // every request billed at or over its estimate: the worst case for the bound
  yield* overspend(runs, 1, 1.1)
})))
process.exit(0)
