/**
 * A standalone suite (run by `npm run bench` after the HTTP suite): what the tool loop adds.
 * `generateText` with one tool round (a reply with one call, the tool, a final reply) against
 * the same two replies fetched with two `chat` calls, on an in-memory model that answers at
 * once, so the difference is the loop's own work: decoding the arguments with the tool's
 * Schema, the handler, encoding its result, the transcript, the spans and summed usage.
 *
 *   npx tsx bench/generate.bench.ts
 */
import { Effect, Layer, ManagedRuntime, Schema } from "effect"
import { LanguageModel, Message, Tool, Toolkit } from "../src/index.js"

const usage: Message.Usage = { inputTokens: 20, outputTokens: 10, totalTokens: 30, estimated: false }
const call: Message.ChatResponse = {
  id: "1", model: "m", provider: "p", text: "", finishReason: "tool_calls", usage,
  toolCalls: [{ id: "c1", name: "get_weather", arguments: "{\"city\":\"Paris\",\"unit\":null}" }]
}
const answer: Message.ChatResponse = { id: "2", model: "m", provider: "p", text: "It is 21°C in Paris.", toolCalls: [], finishReason: "stop", usage }

const model = LanguageModel.layer({
  provider: "p",
  model: "m",
  chat: (request) => Effect.succeed(request.messages.length === 1 ? call : answer),
  stream: () => Effect.dieMessage("unused") as never
})

const GetWeather = Tool.make("get_weather", {
  parameters: Schema.Struct({ city: Schema.String, unit: Schema.optional(Schema.Literal("C", "F")) }),
  success: Schema.Struct({ tempC: Schema.Number })
})
const Weather = Toolkit.make(GetWeather)
const runtime = ManagedRuntime.make(Layer.merge(model, Weather.toLayer({ get_weather: () => Effect.succeed({ tempC: 21 }) })))

const request = Message.request("Weather in Paris?")
const second = Message.request([request.messages[0]!, Message.fromResponse(call), Message.tool("c1", "{\"tempC\":21}", "get_weather")])
const loop = LanguageModel.generateText({ request, toolkit: Weather })
const twoChats = Effect.zipRight(LanguageModel.chat(request), LanguageModel.chat(second))

const COUNT = 20_000
const perLoop = async (effect: Effect.Effect<unknown, unknown, LanguageModel.LanguageModel | Tool.Handler<"get_weather">>): Promise<number> => {
  const batch = (n: number) => runtime.runPromise(Effect.forEach(Array.from({ length: n }), () => effect, { discard: true }))
  await batch(2_000)
  const start = process.cpuUsage()
  await batch(COUNT)
  const cpu = process.cpuUsage(start)
  return (cpu.user + cpu.system) / COUNT
}

const median = (xs: Array<number>) => xs.sort((x, y) => x - y)[Math.floor(xs.length / 2)]!
const loops: Array<number> = []
const untraced: Array<number> = []
const chats: Array<number> = []
for (let round = 0; round < 5; round++) {
  chats.push(await perLoop(twoChats))
  loops.push(await perLoop(loop))
  untraced.push(await perLoop(Effect.withTracerEnabled(loop, false)))
}
const [l, u, c] = [median(loops), median(untraced), median(chats)]
console.log("generateText with one tool round, over the same two chat calls (CPU per loop, median of 5 interleaved rounds)\n")
console.log(`  two chat calls                          ${c.toFixed(1).padStart(7)} µs`)
console.log(`  generateText, one round                 ${l.toFixed(1).padStart(7)} µs   overhead ${(l - c).toFixed(1).padStart(6)} µs per loop`)
console.log(`  the same, Effect.withTracerEnabled(false) ${u.toFixed(1).padStart(5)} µs   overhead ${(u - c).toFixed(1).padStart(6)} µs per loop\n`)
await runtime.dispose()
