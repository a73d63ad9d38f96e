/**
 * Four processes (fleet-worker.ts, bundled) on one budget, one circuit breaker and one usage mirror,
 * on one Redis and on a three-node Redis Cluster:
 * - the budget: the recorded spend never exceeds the budget plus one request's largest
 *   estimate, no request is sent once it is spent, and the recorded spend is exactly what
 *   the processes sent; a killed process's reservations end with their lease;
 * - the breaker: failures one process sees open it for the others at their next call, and
 *   exactly one half-open probe runs across the four;
 * - the usage mirror: the totals are the sum of what each process recorded;
 * and, on one Redis, the budget through a frozen and then a killed Redis: typed errors, no
 * over-spend, nothing counted twice or lost, and recovery with no restart.
 * The measurements (over-spend, the breaker's reaction time) are printed.
 */
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process"
import { randomUUID } from "node:crypto"
import { dirname, join } from "node:path"
import * as readline from "node:readline"
import { fileURLToPath } from "node:url"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Logger, ManagedRuntime } from "effect"
import { Budget, Usage } from "../../src/index.js"
import * as Redis from "../../src/Redis.js"
import { redisServerPersisted } from "../support/redisServer.js"
import { bundled } from "./bundle.js"
import { announce, single, type Target, targets } from "./targets.js"

announce("the fleet tests (four processes)")

const workerFile = join(dirname(fileURLToPath(import.meta.url)), "fleet-worker.ts")

interface Worker {
  readonly ready: Promise<void>
  readonly ask: <A>(command: Record<string, unknown>) => Promise<A>
  readonly kill: () => Promise<void>
}

const startWorker = (script: string, env: Readonly<Record<string, string>>): Worker => {
  const child: ChildProcessWithoutNullStreams = spawn(process.execPath, [script], {
    env: { ...process.env, ...env },
    stdio: ["pipe", "pipe", "pipe"]
  })
  let stderr = ""
  child.stderr.on("data", (d) => (stderr += d))
  const waiting: Array<{ resolve: (value: unknown) => void; reject: (error: Error) => void }> = []
  let markReady: () => void = () => {}
  let failReady: (error: Error) => void = () => {}
  const ready = new Promise<void>((resolve, reject) => {
    markReady = resolve
    failReady = reject
  })
  readline.createInterface({ input: child.stdout }).on("line", (line) => {
    // the worker's log lines (Redis outages) are not answers
    if (!line.startsWith("{")) return
    const message = JSON.parse(line) as { ready?: boolean; ok?: unknown; error?: string }
    if (message.ready === true) return markReady()
    const next = waiting.shift()
    if (next === undefined) return
    if (message.error !== undefined) next.reject(new Error(`worker ${child.pid}: ${message.error}`))
    else next.resolve(message.ok)
  })
  const exited = new Promise<void>((resolve) =>
    child.on("exit", (code, signal) => {
      const error = new Error(`worker ${child.pid} exited (${code ?? signal}): ${stderr}`)
      failReady(error)
      for (const w of waiting.splice(0)) w.reject(error)
      resolve()
    })
  )
  return {
    ready,
    ask: <A>(command: Record<string, unknown>) =>
      new Promise<A>((resolve, reject) => {
        waiting.push({ resolve: resolve as (value: unknown) => void, reject })
        child.stdin.write(JSON.stringify(command) + "\n")
      }),
    kill: () => {
      child.kill("SIGKILL")
      return exited
    }
  }
}

const startFleet = async (env: Readonly<Record<string, string>>) => {
  const script = await bundled(workerFile)
  const workers = [0, 1, 2, 3].map(() => startWorker(script, env))
  await Promise.all(workers.map((w) => w.ready))
  return workers
}

interface Sent {
  readonly sentAt: number
  readonly settledAt: number
  readonly estimate: number
  readonly actual: number
}
interface BudgetRun {
  readonly sent: ReadonlyArray<Sent>
  readonly errors: Readonly<Record<string, number>>
  readonly unretryable: number
}

/** What a parent-side budget on the same store reads: the fleet's. */
const statusOf = (runtime: ManagedRuntime.ManagedRuntime<Budget.BudgetStore, unknown>, name: string, maxTokens: number) =>
  runtime.runPromise(Effect.flatMap(Budget.make({ period: "day", maxTokens, name }), (budget) => budget.status))

/** The checks of the bound, over what the four processes report. */
const checkBudget = (runs: ReadonlyArray<BudgetRun>, status: Budget.Status, budget: number) => {
  const sent = runs.flatMap((r) => r.sent)
  const largestEstimate = Math.max(...sent.map((s) => s.estimate))
  const spent = sent.reduce((n, s) => n + s.actual, 0)
  // the recorded spend is what was sent: no settlement lost, none counted twice
  expect(status.tokens).toBe(spent)
  expect(status.reservedTokens).toBe(0)
  // the bound
  const overspend = status.tokens - budget
  expect(overspend).toBeLessThanOrEqual(largestEstimate)
  // no request was sent once the spend settled before it had reached the budget
  const settled = [...sent].sort((a, b) => a.settledAt - b.settledAt)
  for (const request of sent) {
    let before = 0
    for (const s of settled) {
      if (s.settledAt >= request.sentAt) break
      before += s.actual
    }
    expect(before, `a request sent at ${request.sentAt} after ${before} of ${budget} tokens were spent`).toBeLessThan(budget)
  }
  return { overspend, largestEstimate, requests: sent.length }
}

const fleetSuite = (target: Target) => {
  const prefix = `fleet-${randomUUID()}:`
  const options = { ...target.options, prefix }
  let workers: Array<Worker> = []
  const runtime = ManagedRuntime.make(Layer.mergeAll(Redis.layerBudgetStore(options), Redis.layerUsage(options)))

  beforeAll(async () => {
    workers = await startFleet({ ...target.env, PREFIX: prefix })
  }, 60_000)
  afterAll(async () => {
    await Promise.all(workers.map((w) => w.kill()))
    await runtime.dispose()
  })

  it("one budget: the spend stays within the budget plus one request's largest estimate, no request goes once it is spent, and the record is what was sent", async () => {
    const budget = 3000
    const runs = await Promise.all(workers.map((w) =>
      w.ask<BudgetRun>({
        cmd: "budget",
        name: "bound",
        maxTokens: budget,
        leaseTtlMs: 10_000,
        durationMs: 20_000,
        concurrency: 3,
        refusals: 5,
        minFactor: 0.6,
        maxFactor: 1.1
      })
    ))
    for (const run of runs) expect(run.errors).toEqual({ BudgetExceededError: expect.any(Number) })
    const status = await statusOf(runtime, "bound", budget)
    const measured = checkBudget(runs, status, budget)
    console.log(`[fleet on ${target.name}] budget ${budget} tokens: ${measured.requests} requests from 4 processes, ` +
      `recorded ${status.tokens}, over-spend ${measured.overspend} (bound: the largest estimate, ${measured.largestEstimate})`)
  }, 60_000)

  it("one breaker: failures one process sees open it for the other three at their next call; one half-open probe runs across all four", async () => {
    const polls = workers.slice(1).map((w) => w.ask<{ refusedAt?: number; polls: number }>({ cmd: "breakerPoll", timeoutMs: 10_000 }))
    await new Promise((r) => setTimeout(r, 200))
    const failed = await workers[0]!.ask<{ tags: Array<string>; failedAt: number }>({ cmd: "breakerFail", calls: 3 })
    expect(failed.tags).toEqual(["ServerError", "ServerError", "ServerError"])
    const refused = await Promise.all(polls)
    const reactions = refused.map((r) => {
      expect(r.refusedAt).toBeDefined()
      return r.refusedAt! - failed.failedAt
    })
    console.log(`[fleet on ${target.name}] breaker: opened for the other processes ${reactions.join(", ")} ms after the failure ` +
      `that opened it (polling at ${refused.map((r) => r.polls).join(", ")} calls before)`)
    expect(Math.max(...reactions)).toBeLessThan(1000)

    // the cooldown is 1.5 s: then twelve calls at once, three from each process
    await new Promise((r) => setTimeout(r, Math.max(0, failed.failedAt + 1600 - Date.now())))
    const probes = await Promise.all(workers.map((w) => w.ask<{ reached: number; tags: Array<string> }>({ cmd: "breakerProbe", calls: 3 })))
    expect(probes.reduce((n, p) => n + p.reached, 0)).toBe(1)
    const tags = probes.flatMap((p) => p.tags)
    expect(tags.filter((t) => t === "ok")).toHaveLength(1)
    expect(tags.filter((t) => t === "CircuitOpenError")).toHaveLength(11)
    // the probe succeeded: closed for everyone
    const after = await Promise.all(workers.map((w) => w.ask<{ reached: number; tags: Array<string> }>({ cmd: "breakerProbe", calls: 1 })))
    expect(after.flatMap((p) => p.tags)).toEqual(["ok", "ok", "ok", "ok"])
  }, 60_000)

  it("one usage mirror: the fleet's totals are the sum of what each process recorded", async () => {
    const sums = await Promise.all(workers.map((w, i) => w.ask<Usage.Totals>({ cmd: "usage", count: 100 + 25 * i })))
    const snapshot = await runtime.runPromise(Usage.snapshot)
    for (const field of Usage.totalsFields) {
      const sum = sums.reduce((n, s) => n + s[field], 0)
      if (field === "cost") expect(snapshot.total.cost).toBeCloseTo(sum, 9)
      else expect(snapshot.total[field], field).toBe(sum)
    }
    expect(snapshot.total.requests).toBe(4 * 100 + 25 * 6)
    expect(snapshot.entries.map((e) => `${e.provider}/${e.model}`).sort()).toEqual([
      "anthropic/claude-sonnet-4",
      "fleet/unpriced",
      "openai/gpt-4o-mini"
    ])
  }, 60_000)

  it("a process killed while holding reservations: they end with their lease and the budget gets them back", async () => {
    // three requests of 100 tokens each (8 + 92) held in flight, then the process dies
    // a lease long enough that a busy machine's late renewal cannot end it while its holder lives
    const lease = 3000
    await workers[3]!.ask({ cmd: "hold", name: "held", maxTokens: 500, leaseTtlMs: lease, count: 3 })
    expect(await statusOf(runtime, "held", 500)).toMatchObject({ reservedTokens: 300 })
    await workers[3]!.kill()
    const killedAt = Date.now()
    // renewed every third of the lease while it lived: gone at most one lease after the kill
    let status = await statusOf(runtime, "held", 500)
    while (status.reservedTokens > 0 && Date.now() - killedAt < 3 * lease) {
      await new Promise((r) => setTimeout(r, 50))
      status = await statusOf(runtime, "held", 500)
    }
    expect(status.reservedTokens).toBe(0)
    expect(Date.now() - killedAt).toBeLessThan(lease + 500)
    console.log(`[fleet on ${target.name}] a killed process's reservations came back ${Date.now() - killedAt} ms after the kill (lease ${lease} ms)`)
    const run = await workers[0]!.ask<BudgetRun>({
      cmd: "budget",
      name: "held",
      maxTokens: 500,
      leaseTtlMs: 1000,
      durationMs: 5000,
      concurrency: 1,
      refusals: 3,
      minFactor: 1,
      maxFactor: 1
    })
    expect(run.sent.reduce((n, s) => n + s.actual, 0)).toBeGreaterThan(400)
  }, 60_000)
}

for (const target of targets) describe.skipIf(!target.available)(`a fleet of four processes on ${target.name}`, () => fleetSuite(target))

describe.skipIf(!single.available)("a fleet of four processes on one budget through a frozen and a killed Redis", () => {
  it.scopedLive("typed, retryable errors while Redis cannot answer, no over-spend, nothing counted twice or lost, and recovery with no restart", () =>
    Effect.gen(function* () {
      const redis = yield* redisServerPersisted
      const prefix = "outage:"
      const workers = yield* Effect.acquireRelease(
        Effect.promise(() => startFleet({ REDIS_TARGET: JSON.stringify({ url: redis.url }), PREFIX: prefix })),
        (ws) => Effect.promise(() => Promise.all(ws.map((w) => w.kill())))
      )
      const budget = 12_000
      const started = Date.now()
      const runs = Promise.all(workers.map((w) =>
        w.ask<BudgetRun>({
          cmd: "budget",
          name: "outage",
          maxTokens: budget,
          leaseTtlMs: 5000,
          durationMs: 25_000,
          concurrency: 1,
          refusals: 3,
          minFactor: 0.8,
          maxFactor: 1.05
        })
      ))
      // the outage starts once the fleet is spending (its processes may start slowly on a busy machine)
      const probe = ManagedRuntime.make(Redis.layerBudgetStore({ url: redis.url, prefix }))
      const spending = Date.now()
      while ((yield* Effect.promise(() => statusOf(probe, "outage", budget))).tokens === 0 && Date.now() - spending < 20_000) {
        yield* Effect.sleep(50)
      }
      yield* Effect.promise(() => probe.dispose())
      yield* Effect.sleep(300)
      yield* redis.freeze
      yield* Effect.sleep(1500)
      yield* redis.thaw
      yield* Effect.sleep(1000)
      yield* redis.kill
      yield* Effect.sleep(1000)
      yield* redis.start
      const restartedAt = Date.now()
      const done = yield* Effect.promise(() => runs)
      const runtime = yield* Effect.acquireRelease(
        Effect.sync(() => ManagedRuntime.make(Redis.layerBudgetStore({ url: redis.url, prefix }))),
        (rt) => Effect.promise(() => rt.dispose())
      )
      const status = yield* Effect.promise(() => statusOf(runtime, "outage", budget))
      const measured = checkBudget(done, status, budget)
      const unavailable = done.reduce((n, r) => n + (r.errors.StoreUnavailableError ?? 0), 0)
      expect(unavailable).toBeGreaterThan(0)
      expect(done.reduce((n, r) => n + r.unretryable, 0)).toBe(0)
      for (const run of done) expect(Object.keys(run.errors).sort()).toEqual(["BudgetExceededError", "StoreUnavailableError"])
      // the same processes sent again after the restart, and spent the budget
      expect(done.flatMap((r) => r.sent).filter((s) => s.sentAt > restartedAt).length).toBeGreaterThan(0)
      expect(status.tokens).toBeGreaterThan(budget - 100)
      console.log(`[fleet through an outage] ${measured.requests} requests in ${Date.now() - started} ms, ${unavailable} StoreUnavailableErrors, ` +
        `recorded ${status.tokens} of ${budget}, over-spend ${measured.overspend} (bound ${measured.largestEstimate})`)
    }).pipe(Effect.provide(Logger.remove(Logger.defaultLogger))), 90_000)
})
