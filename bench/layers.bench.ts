/**
 * A standalone suite (run by `npm run bench` after the HTTP suite): what each layer of the
 * latest wave costs per call, in one run, each against the same call without it. CPU time of
 * this process (user + system) per call, median of interleaved rounds. It runs under tsx, which
 * wraps every function of ours in a `__name` call: the added costs read slightly high, never low.
 *
 * - idle decorators (configured, never firing): each over an in-memory model that answers at
 *   once; the goal is under 5 µs per call;
 * - the tool loop (`generateText`, one tool round, over the same two `chat` calls), structured
 *   output (`generateObject` over the one `chat`), the model catalog's price lookup, content
 *   parts (a user message with an image and a file, mapped to the Chat Completions wire and
 *   answered by a canned transport, over a text-only one);
 * - a budget and a circuit breaker shared over Redis, per request (a private `redis-server`,
 *   skipped without one), over the same decorators in memory: the CPU of the client process,
 *   and the wall time a round trip adds.
 *
 * - `Hedge` configured but idle, over a model that answers at once and one that answers on the
 *   next turn of the event loop (with its floor, the call on a fiber of its own), and the
 *   latency-aware choice of a key (a provider over four keys, scored against least-loaded).
 *
 *   npx tsx bench/layers.bench.ts [--calls 20000] [--rounds 5]
 */
import { execFileSync, spawn } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import * as net from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { parseArgs } from "node:util"
import { Effect, Layer, ManagedRuntime, Runtime, Schema } from "effect"
import {
  Budget,
  CircuitBreaker,
  ContextWindow,
  Hedge,
  KeyPool,
  LanguageModel,
  type LlmError,
  Message,
  OpenAiCompatible,
  RateLimiter,
  Retry,
  Tokenizer,
  Tool,
  Toolkit,
  Transport,
  Usage
} from "../src/index.js"
import * as Redis from "../src/Redis.js"

const { values } = parseArgs({
  options: { calls: { type: "string", default: "20000" }, rounds: { type: "string", default: "5" } },
  strict: true
})
const CALLS = Number(values.calls)
const ROUNDS = Number(values.rounds)

const usage: Message.Usage = { inputTokens: 20, outputTokens: 10, totalTokens: 30, estimated: false }
const toolCall: Message.ChatResponse = {
  id: "1", model: "gpt-4o-mini", provider: "openai", text: "", finishReason: "tool_calls", usage,
  toolCalls: [{ id: "c1", name: "get_weather", arguments: "{\"city\":\"Paris\",\"unit\":null}" }]
}
const answer: Message.ChatResponse = {
  id: "2", model: "gpt-4o-mini", provider: "openai", text: "{\"name\":\"Ada\",\"age\":36}", toolCalls: [], finishReason: "stop", usage
}

/** An in-memory model: a tool call for a one-message request, else the answer. */
const model = LanguageModel.layer({
  provider: "openai",
  model: "gpt-4o-mini",
  chat: (request) => Effect.succeed(request.messages.length === 1 && request.tools !== undefined ? toolCall : answer),
  stream: () => Effect.dieMessage("unused") as never
})

type Runtime = ManagedRuntime.ManagedRuntime<any, any>
interface Case {
  readonly name: string
  /** What the cost is measured against: another case's name. */
  readonly over?: string
  readonly runtime: Runtime
  readonly call: Effect.Effect<unknown, unknown, any>
  /** Calls per round (fewer for calls that wait on Redis). */
  readonly calls?: number
}

const perCall = async (c: Case): Promise<{ cpu: number; wall: number }> => {
  const calls = c.calls ?? CALLS
  const runtime = c.runtime as ManagedRuntime.ManagedRuntime<any, any>
  const batch = (n: number) => runtime.runPromise(Effect.forEach(Array.from({ length: n }), () => c.call, { discard: true }))
  await batch(Math.min(2000, calls))
  const start = process.cpuUsage()
  const wall = performance.now()
  await batch(calls)
  const cpu = process.cpuUsage(start)
  return { cpu: (cpu.user + cpu.system) / calls, wall: ((performance.now() - wall) * 1000) / calls }
}

const median = (xs: ReadonlyArray<number>) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!

const GetWeather = Tool.make("get_weather", {
  parameters: Schema.Struct({ city: Schema.String, unit: Schema.optional(Schema.Literal("C", "F")) }),
  success: Schema.Struct({ tempC: Schema.Number })
})
const Weather = Toolkit.make(GetWeather)
const Person = Schema.Struct({ name: Schema.String, age: Schema.Number })

const request = Message.request("Weather in Paris?")
const second = Message.request([request.messages[0]!, Message.fromResponse(toolCall), Message.tool("c1", "{\"tempC\":21}", "get_weather")])
const withTools: Message.ChatRequest = { ...request, tools: [] }

const bare = ManagedRuntime.make(Layer.merge(model, Weather.toLayer({ get_weather: () => Effect.succeed({ tempC: 21 }) })))
const decorated = (layer: Layer.Layer<LanguageModel.LanguageModel, any, LanguageModel.LanguageModel>): Runtime => ManagedRuntime.make(layer.pipe(Layer.provide(model)))

const cases: Array<Case> = [
  { name: "chat, in-memory model", runtime: bare, call: LanguageModel.chat(request) },
  { name: "two chats (a tool round's calls)", runtime: bare, call: Effect.zipRight(LanguageModel.chat(withTools), LanguageModel.chat(second)) },
  {
    name: "tool loop: generateText, one tool round",
    over: "two chats (a tool round's calls)",
    runtime: bare,
    call: LanguageModel.generateText({ request, toolkit: Weather })
  },
  {
    name: "structured output: generateObject",
    over: "chat, in-memory model",
    runtime: bare,
    call: LanguageModel.generateObject({ request: Message.request("Who?"), schema: Person, name: "person" })
  },
  { name: "idle Retry.layer(Retry.schedule())", over: "chat, in-memory model", runtime: decorated(Retry.layer(Retry.schedule())), call: LanguageModel.chat(request) },
  { name: "idle CircuitBreaker.layer() (memory)", over: "chat, in-memory model", runtime: decorated(CircuitBreaker.layer()), call: LanguageModel.chat(request) },
  {
    name: "idle Budget.layer (memory, far from its limit)",
    over: "chat, in-memory model",
    runtime: decorated(Budget.layer({ period: "day", maxTokens: 1e15 })),
    call: LanguageModel.chat(request)
  },
  { name: "idle ContextWindow.layer() (fits)", over: "chat, in-memory model", runtime: decorated(ContextWindow.layer()), call: LanguageModel.chat(request) }
]

// Hedge configured but never firing, over the same model; and over a model that answers on the
// next turn of the event loop, as a real one answers later: then the delay's timer is set and
// cleared, and the attempt's fiber waited for. Its floor: the call on a fiber of its own, awaited.
cases.push({ name: "idle Hedge.layer (never fires)", over: "chat, in-memory model", runtime: decorated(Hedge.layer({ after: "10 seconds" })), call: LanguageModel.chat(request) })
const modelLater = LanguageModel.layer({
  provider: "openai",
  model: "gpt-4o-mini",
  chat: () => Effect.async<Message.ChatResponse>((resume) => void setImmediate(() => resume(Effect.succeed(answer)))),
  stream: () => Effect.dieMessage("unused") as never
})
const onFiber = LanguageModel.decorate((inner) =>
  Effect.succeed(LanguageModel.wrap(inner, {
    chat: (r) =>
      Effect.flatMap(Effect.runtime<never>(), (runtime) => {
        const fiber = Runtime.runFork(runtime)(inner.chat(r))
        return Effect.async<Message.ChatResponse, LlmError.LlmError>((resume) => fiber.addObserver(resume))
      })
  })))
cases.push(
  { name: "chat, in-memory model answering later", runtime: ManagedRuntime.make(modelLater), call: LanguageModel.chat(request) },
  {
    name: "idle Hedge.layer (never fires), answered later",
    over: "chat, in-memory model answering later",
    runtime: ManagedRuntime.make(Hedge.layer({ after: "10 seconds" }).pipe(Layer.provide(modelLater))),
    call: LanguageModel.chat(request)
  },
  {
    name: "Hedge's floor: the call on a fiber of its own, answered later",
    over: "chat, in-memory model answering later",
    runtime: ManagedRuntime.make(onFiber.pipe(Layer.provide(modelLater))),
    call: LanguageModel.chat(request)
  }
)

// Budget's floor in memory: what it cannot skip per request, each alone: the prompt's estimate,
// the store's reserve and settle (a settled id is kept for the idempotency window), and the
// uninterruptible region that makes a reservation always settle
const budgetStore = await Effect.runPromise(Budget.makeStoreMemory({
  name: "floor", maxTokens: 1e15, maxCost: undefined, warnAt: 0.8, leaseTtlMillis: 60_000, onWarning: () => Effect.void
}))
let claims = 0
const day = { start: 0, end: 86_400_000 }
const plain = ManagedRuntime.make(Layer.empty) as unknown as Runtime
cases.push(
  { name: "nothing (Effect.void)", runtime: plain, call: Effect.void },
  {
    name: "Budget's floor: the prompt's estimate",
    over: "nothing (Effect.void)",
    runtime: plain,
    call: Effect.sync(() => Tokenizer.estimate(request.messages, { tools: request.tools }).tokens)
  },
  {
    name: "Budget's floor: the memory store's reserve and settle",
    over: "nothing (Effect.void)",
    runtime: plain,
    call: Effect.suspend(() => {
      const id = `floor-${claims++}`
      return Effect.zipRight(
        budgetStore.reserve({ id, period: day, tokens: 10, cost: undefined, now: 1 }),
        budgetStore.settle({ id, period: day, tokens: 10, cost: 0, now: 2 })
      )
    })
  },
  {
    name: "Budget's floor: an uninterruptible region around the call",
    over: "chat, in-memory model",
    runtime: bare,
    call: Effect.uninterruptibleMask((restore) => Effect.onExit(restore(LanguageModel.chat(request)), () => Effect.void))
  }
)

// the model catalog: one price lookup through Usage.pricing (the catalog loaded once)
const lookup = await Effect.runPromise(Usage.pricing({}))
const noCatalog = await Effect.runPromise(Usage.pricing({}, { catalog: false }))
const pricing = ManagedRuntime.make(Layer.empty) as unknown as Runtime
cases.push(
  { name: "price lookup, no catalog", runtime: pricing, call: Effect.sync(() => noCatalog("openai", "gpt-4o-mini")) },
  { name: "model catalog: price lookup", over: "price lookup, no catalog", runtime: pricing, call: Effect.sync(() => lookup("openai", "gpt-4o-mini")) }
)

// content parts: the provider's own mapping and a canned reply, text only against parts
const jsonReply = JSON.stringify({
  id: "c", object: "chat.completion", created: 1, model: "gpt-4o-mini",
  choices: [{ index: 0, message: { role: "assistant", content: "ok" }, finish_reason: "stop" }],
  usage: { prompt_tokens: 10, completion_tokens: 1, total_tokens: 11 }
})
const canned = Layer.succeed(Transport.Transport, {
  timeouts: true,
  text: () => Effect.succeed({ status: 200, headers: { "content-type": "application/json" }, body: jsonReply }),
  stream: () => Effect.dieMessage("unused")
})
const provider = ManagedRuntime.make(
  OpenAiCompatible.layer({ model: "gpt-4o-mini", baseUrl: "http://127.0.0.1:1/v1" }).pipe(
    Layer.provide(KeyPool.layer({ providerId: "openai", keys: ["sk-bench"] })),
    Layer.provide(RateLimiter.unlimited),
    Layer.provide(canned),
    Layer.provide(Transport.layerUndici)
  )
)
const png = new Uint8Array(2048).fill(7)
const withParts = Message.request([
  Message.user([{ type: "text", text: "What is in these?" }, Message.image(png, { mediaType: "image/png" }), Message.file(new Uint8Array(4096).fill(1), { mediaType: "application/pdf", filename: "a.pdf" })])
])
// latency-aware choice: the same provider over a pool of four keys, least-loaded against scored
const providerOver = (pool: Layer.Layer<KeyPool.KeyPool, any>) =>
  ManagedRuntime.make(
    OpenAiCompatible.layer({ model: "gpt-4o-mini", baseUrl: "http://127.0.0.1:1/v1" }).pipe(
      Layer.provide(pool),
      Layer.provide(RateLimiter.unlimited),
      Layer.provide(canned),
      Layer.provide(Transport.layerUndici)
    )
  )
const fourKeys = ["sk-bench-1", "sk-bench-2", "sk-bench-3", "sk-bench-4"]
cases.push(
  { name: "provider chat, four keys, least-loaded", runtime: providerOver(KeyPool.layer({ providerId: "openai", keys: fourKeys })), call: LanguageModel.chat(request) },
  {
    name: "latency-aware choice (KeyPool latency: true)",
    over: "provider chat, four keys, least-loaded",
    runtime: providerOver(KeyPool.layer({ providerId: "openai", keys: fourKeys, latency: true })),
    call: LanguageModel.chat(request)
  }
)
cases.push(
  { name: "provider chat, text (canned transport)", runtime: provider, call: LanguageModel.chat(Message.request("What is in these?")) },
  { name: "content parts: an image and a file", over: "provider chat, text (canned transport)", runtime: provider, call: LanguageModel.chat(withParts) }
)

// Redis-shared budget and breaker, against the same decorators in memory
const redisBinary = (() => {
  try {
    return execFileSync("sh", ["-c", "command -v redis-server"]).toString().trim() || undefined
  } catch {
    return undefined
  }
})()
let stopRedis = () => {}
if (redisBinary !== undefined) {
  const port = await new Promise<number>((resolve) => {
    const server = net.createServer()
    server.listen(0, "127.0.0.1", () => {
      const p = (server.address() as net.AddressInfo).port
      server.close(() => resolve(p))
    })
  })
  const dir = mkdtempSync(join(tmpdir(), "effect-llm-layers-bench-"))
  const server = spawn(redisBinary, ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir], { stdio: "ignore" })
  stopRedis = () => {
    server.kill("SIGKILL")
    rmSync(dir, { recursive: true, force: true })
  }
  process.on("exit", stopRedis)
  await new Promise((r) => setTimeout(r, 300))
  const url = `redis://127.0.0.1:${port}/0`
  const redisCalls = Math.max(500, Math.floor(CALLS / 10))
  cases.push(
    {
      name: "budget over Redis, per request",
      over: "idle Budget.layer (memory, far from its limit)",
      runtime: decorated(Redis.layerBudget({ url, prefix: "bench:", period: "day", maxTokens: 1e15 })),
      call: LanguageModel.chat(request),
      calls: redisCalls
    },
    {
      name: "breaker over Redis, per request",
      over: "idle CircuitBreaker.layer() (memory)",
      runtime: decorated(Redis.layerCircuitBreaker({ url, prefix: "bench:" })),
      call: LanguageModel.chat(request),
      calls: redisCalls
    }
  )
} else {
  console.log("layers.bench: redis-server is not installed; the Redis rows are skipped")
}

const results = new Map<string, { cpu: Array<number>; wall: Array<number> }>()
for (let round = 0; round < ROUNDS; round++) {
  for (const c of cases) {
    const m = await perCall(c)
    const r = results.get(c.name) ?? { cpu: [], wall: [] }
    r.cpu.push(m.cpu)
    r.wall.push(m.wall)
    results.set(c.name, r)
  }
}
const cpuOf = (name: string) => median(results.get(name)!.cpu)
const wallOf = (name: string) => median(results.get(name)!.wall)

console.log(`The layers of this wave, CPU µs per call (median of ${ROUNDS} interleaved rounds of ${CALLS} calls; Redis rows ${Math.max(500, Math.floor(CALLS / 10))}), node ${process.version}\n`)
const rows = [["case", "µs CPU/call", "over", "added µs CPU", "added µs wall", "idle < 5 µs"]]
for (const c of cases) {
  const cpu = cpuOf(c.name)
  const added = c.over === undefined ? undefined : cpu - cpuOf(c.over)
  const addedWall = c.over === undefined ? undefined : wallOf(c.name) - wallOf(c.over)
  rows.push([
    c.name,
    cpu.toFixed(1),
    c.over ?? "",
    added === undefined ? "" : added.toFixed(1),
    addedWall === undefined ? "" : addedWall.toFixed(1),
    c.name.startsWith("idle") && added !== undefined ? (added < 5 ? "met" : "MISSED") : ""
  ])
}
const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)))
for (const [i, row] of rows.entries()) {
  console.log("| " + row.map((cell, j) => (j === 0 || j === 2 ? cell.padEnd(widths[j]!) : cell.padStart(widths[j]!))).join(" | ") + " |")
  if (i === 0) console.log("|" + widths.map((w, j) => (j === 0 || j === 2 ? "-".repeat(w + 2) : "-".repeat(w + 1) + ":")).join("|") + "|")
}
for (const c of cases) await c.runtime.dispose()
stopRedis()
process.exit(0)
