/**
 * A profiling harness for one idle decorator: `chat` through the layer, over an in-memory
 * model that answers at once, many times. Run compiled under `node --cpu-prof`, then
 * summarise the profile with `bench/profsum.mjs`:
 *
 *   npx esbuild bench/idle-profile.ts --bundle --platform=node --format=esm --packages=external --outfile=bench/.build/idle-profile.mjs
 *   node --cpu-prof --cpu-prof-dir=/tmp/prof bench/.build/idle-profile.mjs hedge 20000
 *   node bench/profsum.mjs /tmp/prof/<file>.cpuprofile 40
 *
 * The first argument is the layer: none, hedge, budget; the second the number of calls.
 */
import { Effect, Layer, ManagedRuntime } from "effect"
import { Budget, Hedge, LanguageModel, Message } from "../src/index.js"

const which = process.argv[2] ?? "hedge"
const calls = Number(process.argv[3] ?? 20000)

const usage: Message.Usage = { inputTokens: 20, outputTokens: 10, totalTokens: 30, estimated: false }
const answer: Message.ChatResponse = { id: "2", model: "gpt-4o-mini", provider: "openai", text: "ok", toolCalls: [], finishReason: "stop", usage }
const model = LanguageModel.layer({
  provider: "openai",
  model: "gpt-4o-mini",
  chat: () => Effect.succeed(answer),
  stream: () => Effect.dieMessage("unused") as never
})
const layers: Record<string, Layer.Layer<LanguageModel.LanguageModel, unknown, LanguageModel.LanguageModel> | undefined> = {
  none: undefined,
  hedge: Hedge.layer({ after: "10 seconds" }),
  budget: Budget.layer({ period: "day", maxTokens: 1e15 })
}
if (!(which in layers)) throw new Error(`unknown layer ${which}: one of ${Object.keys(layers).join(", ")}`)
const layer = layers[which]
const runtime = ManagedRuntime.make(layer === undefined ? model : layer.pipe(Layer.provide(model)))
const request = Message.request("Weather in Paris?")
const batch = (n: number) => runtime.runPromise(Effect.forEach(Array.from({ length: n }), () => LanguageModel.chat(request), { discard: true }))

await batch(2000)
const start = process.cpuUsage()
await batch(calls)
const cpu = process.cpuUsage(start)
console.log(`${which}: ${((cpu.user + cpu.system) / calls).toFixed(2)} µs CPU per call`)
await runtime.dispose()
// a budget's renewal fiber sleeps a third of its lease before it sees nothing in flight
process.exit(0)
