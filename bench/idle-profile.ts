/**
 * A profiling harness for one idle decorator: `chat` through the layer, over an in-memory
 * model that answers at once, many times. Run compiled under `node --cpu-prof`, then
 * summarise the profile with `bench/profsum.mjs`:
 *
 *   npx esbuild bench/idle-profile.ts --bundle --platform=node --format=esm --packages=external --outfile=bench/.build/idle-profile.mjs
 *   node --cpu-prof --cpu-prof-dir=/tmp/prof bench/.build/idle-profile.mjs hedge 20000
 *   node bench/profsum.mjs /tmp/prof/<file>.cpuprofile 40
 *
 * The first argument is the layer: none, hedge, budget, or fiber (the floor of an idle hedge:
 * the call on a fiber of its own, awaited); the second the number of calls; a
 * third, `async`, makes the model answer on the next turn of the event loop (as a real one
 * answers later), not at once; a fourth, the number of calls in flight at once (default 1).
 */
import { Effect, Layer, ManagedRuntime, Runtime } from "effect"
import { PerformanceObserver } from "node:perf_hooks"
import { Budget, Hedge, LanguageModel, type LlmError, Message } from "../src/index.js"

const which = process.argv[2] ?? "hedge"
const calls = Number(process.argv[3] ?? 20000)
const later = process.argv[4] === "async"
const concurrency = Number(process.argv[5] ?? 1)

const usage: Message.Usage = { inputTokens: 20, outputTokens: 10, totalTokens: 30, estimated: false }
const answer: Message.ChatResponse = { id: "2", model: "gpt-4o-mini", provider: "openai", text: "ok", toolCalls: [], finishReason: "stop", usage }
const model = LanguageModel.layer({
  provider: "openai",
  model: "gpt-4o-mini",
  chat: () => (later ? Effect.async<Message.ChatResponse>((resume) => void setImmediate(() => resume(Effect.succeed(answer)))) : Effect.succeed(answer)),
  stream: () => Effect.dieMessage("unused") as never
})
const layers: Record<string, Layer.Layer<LanguageModel.LanguageModel, unknown, LanguageModel.LanguageModel> | undefined> = {
  none: undefined,
  hedge: Hedge.layer({ after: "10 seconds" }),
  budget: Budget.layer({ period: "day", maxTokens: 1e15 }),
  fiber: LanguageModel.decorate((inner) =>
    Effect.succeed(LanguageModel.wrap(inner, {
      chat: (request) =>
        Effect.flatMap(Effect.runtime<never>(), (runtime) => {
          const fiber = Runtime.runFork(runtime)(inner.chat(request))
          return Effect.async<Message.ChatResponse, LlmError.LlmError>((resume) => fiber.addObserver(resume))
        })
    })))
}
if (!(which in layers)) throw new Error(`unknown layer ${which}: one of ${Object.keys(layers).join(", ")}`)
const layer = layers[which]
const runtime = ManagedRuntime.make(layer === undefined ? model : layer.pipe(Layer.provide(model)))
const request = Message.request("Weather in Paris?")
const batch = (n: number) => runtime.runPromise(Effect.forEach(Array.from({ length: n }), () => LanguageModel.chat(request), { discard: true, concurrency }))

await batch(2000)
if (process.env.ALLOC) {
  // bytes allocated per call (exact where CPU is noisy): no scavenge may run while it measures
  //   ALLOC=1 node --expose-gc --min-semi-space-size=256 --max-semi-space-size=256 bench/.build/idle-profile.mjs hedge 20000
  const gc = (globalThis as { gc?: () => void }).gc
  if (gc === undefined) throw new Error("ALLOC=1 needs node --expose-gc")
  let collections = 0
  const observer = new PerformanceObserver((list) => void (collections += list.getEntries().length))
  gc()
  observer.observe({ entryTypes: ["gc"] })
  const before = process.memoryUsage().heapUsed
  await batch(calls)
  const allocated = process.memoryUsage().heapUsed - before
  await new Promise((resolve) => setTimeout(resolve, 100))
  observer.disconnect()
  console.log(`${which}${later ? " (async)" : ""}: ${(allocated / calls).toFixed(0)} bytes allocated per call${collections > 0 ? " (a GC ran: undercounted)" : ""}`)
  process.exit(0)
}
const start = process.cpuUsage()
await batch(calls)
const cpu = process.cpuUsage(start)
// with --expose-gc: the heap that the calls left behind (a retained object per call shows here)
const gc = (globalThis as { gc?: () => void }).gc
if (gc !== undefined) gc()
const heap = gc === undefined ? "" : `, heap after a full GC ${(process.memoryUsage().heapUsed / 1e6).toFixed(1)} MB`
console.log(`${which}${later ? " (async)" : ""}: ${((cpu.user + cpu.system) / calls).toFixed(2)} µs CPU per call${heap}`)
await runtime.dispose()
// a budget's renewal fiber sleeps a third of its lease before it sees nothing in flight
process.exit(0)
