/**
 * Structured output: a value of a Schema from the model, with nested fields. The first reply
 * does not decode; the model gets the issues back and repairs it. Then the same as a stream of
 * partial values. Without OPENAI_API_KEY the fake provider plays the model.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Config, ConfigProvider, Console, Effect, Layer, Schema, Stream } from "effect"
import { KeyPool, LanguageModel, Message, OpenAiCompatible, RateLimiter, Transport } from "../src/index.js"
import * as Testing from "../src/Testing.js"

const Trip = Schema.Struct({
  destination: Schema.Struct({ city: Schema.String, country: Schema.String }),
  days: Schema.Number.pipe(Schema.int(), Schema.positive()),
  stops: Schema.Array(Schema.Struct({ name: Schema.String, hours: Schema.Number })),
  budget: Schema.optional(Schema.Struct({ amount: Schema.Number, currency: Schema.String }))
})

const program = Effect.gen(function* () {
  const request = Message.request("Plan a short trip to Lisbon as JSON.")
  const { value, attempts, usage } = yield* LanguageModel.generateObject({ request, schema: Trip, name: "trip" })
  yield* Console.log(`trip after ${attempts} attempts (${usage.totalTokens} tokens):`)
  yield* Console.log(`  ${value.days} days in ${value.destination.city}, ${value.destination.country}`)
  for (const stop of value.stops) yield* Console.log(`  - ${stop.name}: ${stop.hours} h`)
  yield* Console.log(`  budget: ${value.budget === undefined ? "none given" : `${value.budget.amount} ${value.budget.currency}`}`)

  // the same, streamed: partial values while the JSON arrives, then the decoded value
  let partials = 0
  yield* LanguageModel.streamObject({ request, schema: Trip, name: "trip" }).pipe(
    Stream.runForEach((event) => {
      switch (event._tag) {
        case "Partial":
          return Effect.sync(() => void partials++)
        case "Repair":
          return Console.log(`streamed: ${partials} partial values, then a repair:\n    ${event.issues.join("\n    ")}`)
        case "Object":
          return Console.log(`streamed: ${partials} partial values in all, then ${event.value.stops.length} stops in ${event.value.destination.city}`)
      }
    })
  )
})

// The fake plays the model: its first answer has days as text and a stop without hours; after
// the repair message it sends a valid trip (with `budget: null`, as strict mode does for an absent field).
const scripted: Testing.Responder = (request) => {
  const body = request.body as { messages: ReadonlyArray<{ role: string; content?: string | null }> }
  const repaired = body.messages.some((m) => m.role === "user" && (m.content ?? "").includes("does not match"))
  const trip = repaired
    ? { destination: { city: "Lisbon", country: "Portugal" }, days: 3, stops: [{ name: "Alfama", hours: 3 }, { name: "Belém", hours: 4 }], budget: null }
    : { destination: { city: "Lisbon", country: "Portugal" }, days: "three", stops: [{ name: "Alfama" }] }
  return { text: JSON.stringify(trip), chunks: 12, chunkDelayMs: 2 }
}

const OpenAi = (baseUrl?: string) =>
  OpenAiCompatible.layer({ model: "gpt-4o-mini", baseUrl }).pipe(
    Layer.provide(KeyPool.layerConfig({ providerId: "openai", keys: Config.redacted("OPENAI_API_KEY") })),
    Layer.provide(RateLimiter.layer({ requestsPerMinute: 500, tokensPerMinute: 200_000 })),
    Layer.provide(Transport.layerUndici)
  )
const FakeOpenAi = Layer.unwrapScoped(
  Effect.map(Testing.FakeProvider.make({ respond: scripted }), (fake) => OpenAi(fake.baseUrl))
).pipe(Layer.provide(Layer.setConfigProvider(ConfigProvider.fromJson({ OPENAI_API_KEY: "sk-fake" }))))

NodeRuntime.runMain(program.pipe(Effect.provide(process.env.OPENAI_API_KEY ? OpenAi() : FakeOpenAi)))
