/**
 * Hedging against a long tail: `npx tsx bench/hedge.bench.ts` (also run by `npm run bench`).
 *
 * A loopback server speaks the OpenAI Chat Completions API with a latency it draws per request:
 * most replies fast (20–30 ms), 5% slow (1 s), and one of the pool's three keys degraded (its
 * fast replies 40–60 ms, 15% slow). A stream's head comes at once and its first event after
 * the drawn latency. In one run, for chat (time to the reply) and for streams (time to the
 * first event): p50, p99 and the extra requests the server saw, without hedging, with a fixed
 * delay, with a percentile delay, and with the percentile delay over a pool that chooses keys by
 * latency. Set HEDGE_BENCH_REQUESTS (default 2000) and HEDGE_BENCH_CONCURRENCY (default 16).
 */
import * as http from "node:http"
import type * as net from "node:net"
import { Effect, Layer, ManagedRuntime, Stream } from "effect"
import { Hedge, KeyPool, LanguageModel, Message, OpenAiCompatible, RateLimiter, Transport } from "../src/index.js"

const REQUESTS = Number(process.env["HEDGE_BENCH_REQUESTS"] ?? 2000)
const CONCURRENCY = Number(process.env["HEDGE_BENCH_CONCURRENCY"] ?? 16)
const SLOW_MS = 1000

// a seeded generator, so that every configuration meets the same kind of tail
let seed = 42
const random = () => {
  seed = (seed * 1103515245 + 12345) % 2147483648
  return seed / 2147483648
}
const latencyFor = (key: string) => {
  const degraded = key === "k3"
  if (random() < (degraded ? 0.15 : 0.05)) return SLOW_MS
  return degraded ? 40 + 20 * random() : 20 + 10 * random()
}

let received = 0
const usage = { prompt_tokens: 5, completion_tokens: 2, total_tokens: 7 }
const server = http.createServer((req, res) => {
  let body = ""
  req.on("data", (piece: Buffer) => (body += piece.toString("utf8")))
  req.on("end", () => {
    received++
    const key = (req.headers["authorization"] ?? "").replace("Bearer ", "")
    const wait = latencyFor(key)
    const stream = (JSON.parse(body) as { stream?: boolean }).stream === true
    let timer: NodeJS.Timeout | undefined
    res.on("close", () => clearTimeout(timer))
    if (!stream) {
      timer = setTimeout(() => {
        res.writeHead(200, { "content-type": "application/json" })
        res.end(JSON.stringify({ id: "c", model: "m", choices: [{ index: 0, message: { role: "assistant", content: "hello" }, finish_reason: "stop" }], usage }))
      }, wait)
      return
    }
    res.writeHead(200, { "content-type": "text/event-stream" })
    res.flushHeaders()
    timer = setTimeout(() => {
      const chunk = (delta: object, finish: string | null, extra: object = {}) =>
        `data: ${JSON.stringify({ id: "c", model: "m", choices: [{ index: 0, delta, finish_reason: finish }], ...extra })}\n\n`
      res.write(chunk({ role: "assistant", content: "hel" }, null))
      res.end(chunk({ content: "lo" }, null) + chunk({}, "stop", { usage }) + "data: [DONE]\n\n")
    }, wait)
  })
})
await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
const baseUrl = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}/v1`

const stackOf = (hedge: Hedge.Options | undefined, latency: boolean) => {
  const model = OpenAiCompatible.layer({ model: "m", baseUrl }).pipe(
    Layer.provide(KeyPool.layer({ providerId: "openai", keys: ["k1", "k2", "k3"], ...(latency ? { latency: true as const } : {}) })),
    Layer.provide(RateLimiter.unlimited),
    Layer.provide(Transport.layerUndici)
  )
  if (hedge === undefined) return model
  // the controller's own layer, so that its statistics can be read
  return Layer.effect(
    LanguageModel.LanguageModel,
    Effect.flatMap(LanguageModel.LanguageModel, (inner) =>
      Effect.flatMap(Hedge.make(hedge), (controller) => ((current = controller), controller.decorator(inner))))
  ).pipe(Layer.provide(model))
}
let current: Hedge.Controller | undefined

const quantile = (sorted: ReadonlyArray<number>, q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!

interface Row {
  readonly name: string
  readonly mode: "chat" | "stream"
  readonly p50: number
  readonly p99: number
  readonly extra: number
}

const measure = async (name: string, mode: "chat" | "stream", hedge: Hedge.Options | undefined, latency = false): Promise<Row> => {
  const runtime = ManagedRuntime.make(stackOf(hedge, latency))
  const request = Message.request("hi")
  const one = Effect.clockWith((clock) => {
    const start = clock.unsafeCurrentTimeMillis()
    const call = mode === "chat"
      ? LanguageModel.chat(request)
      : Stream.runDrain(Stream.take(LanguageModel.stream(request), 1))
    return Effect.map(call, () => clock.unsafeCurrentTimeMillis() - start)
  })
  // a warm-up: connections, the JIT, and the percentile's window
  await runtime.runPromise(Effect.forEach(Array.from({ length: 200 }), () => one, { concurrency: CONCURRENCY }))
  const before = received
  const times = await runtime.runPromise(Effect.forEach(Array.from({ length: REQUESTS }), () => one, { concurrency: CONCURRENCY }))
  const sent = received - before
  if (current !== undefined) {
    const stats = await Effect.runPromise(current.stats)
    console.error(`${mode} ${name}: ${JSON.stringify(stats)}`)
    current = undefined
  }
  await runtime.dispose()
  const sorted = [...times].sort((a, b) => a - b)
  return { name, mode, p50: quantile(sorted, 0.5), p99: quantile(sorted, 0.99), extra: sent / REQUESTS - 1 }
}

const configs: ReadonlyArray<readonly [string, Hedge.Options | undefined, boolean]> = [
  ["no hedging", undefined, false],
  ["fixed delay (after 100 ms)", { after: "100 millis", budget: 0.1 }, false],
  ["percentile delay (p90, floor 50 ms)", { after: { percentile: 90, floor: "50 millis" }, budget: 0.1 }, false],
  ["percentile delay + latency-aware pool", { after: { percentile: 90, floor: "50 millis" }, budget: 0.1 }, true]
]

const rows: Array<Row> = []
for (const mode of ["chat", "stream"] as const) {
  for (const [name, hedge, latency] of configs) {
    seed = 42
    rows.push(await measure(name, mode, hedge, latency))
  }
}
server.close()

console.log(`\nhedge.bench: ${REQUESTS} requests at concurrency ${CONCURRENCY}; 5% of replies ${SLOW_MS} ms, one key of three degraded`)
console.log("| mode | configuration | p50 | p99 | p99 / unhedged | extra requests |")
console.log("|---|---|---|---|---|---|")
for (const row of rows) {
  const base = rows.find((r) => r.mode === row.mode && r.name === "no hedging")!
  console.log(
    `| ${row.mode === "chat" ? "chat (reply)" : "stream (first event)"} | ${row.name} | ${row.p50.toFixed(0)} ms | ${row.p99.toFixed(0)} ms | ` +
      `${(row.p99 / base.p99).toFixed(2)} | ${(row.extra * 100).toFixed(1)}% |`
  )
}
