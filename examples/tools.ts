/**
 * Typed tools and the tool loop: two tools, called in parallel; one call's arguments do not
 * decode, the model gets the problem back and repairs them. Without OPENAI_API_KEY the fake
 * provider plays the model, answering each turn from the request it receives.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Config, ConfigProvider, Console, Effect, Layer, Schema } from "effect"
import { KeyPool, LanguageModel, Message, OpenAiCompatible, RateLimiter, Tool, Toolkit, Transport } from "../src/index.js"
import * as Testing from "../src/Testing.js"

// 1. Tools are Schemas: what the model sends, what the handler returns, how it may fail.
const GetWeather = Tool.make("get_weather", {
  description: "Current weather in a city",
  parameters: Schema.Struct({ city: Schema.String, unit: Schema.optional(Schema.Literal("C", "F")) }),
  success: Schema.Struct({ tempC: Schema.Number, sky: Schema.String })
})
const Convert = Tool.make("convert_currency", {
  description: "Converts an amount between currencies",
  parameters: Schema.Struct({ amount: Schema.Number, from: Schema.String, to: Schema.String }),
  success: Schema.Struct({ amount: Schema.Number, currency: Schema.String }),
  failure: Schema.Struct({ reason: Schema.String })
})
const Travel = Toolkit.make(GetWeather, Convert)

// 2. Handlers, typed from the tools; a failure of the failure schema goes back to the model.
const TravelHandlers = Travel.toLayer({
  get_weather: ({ city }) => Effect.succeed({ tempC: city === "Paris" ? 21 : 14, sky: "clear" }),
  convert_currency: ({ amount, from, to }) =>
    from === "EUR" && to === "USD"
      ? Effect.succeed({ amount: Math.round(amount * 108) / 100, currency: "USD" })
      : Effect.fail({ reason: `no rate for ${from} to ${to}` })
})

// 3. The loop: model -> tools -> model, until a reply without tool calls.
const program = Effect.gen(function* () {
  const result = yield* LanguageModel.generateText({
    request: Message.request("What's the weather in Paris, and what is 20 EUR in USD?"),
    toolkit: Travel,
    maxSteps: 5,
    concurrency: 4
  })
  for (const step of result.steps) {
    yield* Console.log(`step ${step.index}: ${step.toolCalls.length} tool call(s)`)
    for (const [i, call] of step.toolCalls.entries()) {
      const outcome = step.toolResults[i]!
      yield* Console.log(`  ${call.name}(${call.arguments}) -> ${outcome.isError ? "error " : ""}${outcome.content}`)
    }
  }
  yield* Console.log(`answer: ${result.text}`)
  yield* Console.log(`${result.steps.length} model calls, ${result.messages.length} messages, ${result.usage.totalTokens} tokens`)
})

// 4. The fake plays the model: it answers from the transcript it is sent.
const scripted: Testing.Responder = (request) => {
  const body = request.body as { messages: ReadonlyArray<{ role: string; content?: string | null }> }
  const results = body.messages.filter((m) => m.role === "tool").map((m) => m.content ?? "")
  if (results.length === 0) {
    // two calls in one reply, the second with an amount the schema refuses
    return {
      toolCalls: [
        { id: "call_weather", name: "get_weather", arguments: "{\"city\":\"Paris\",\"unit\":null}" },
        { id: "call_convert", name: "convert_currency", arguments: "{\"amount\":\"twenty\",\"from\":\"EUR\",\"to\":\"USD\"}" }
      ]
    }
  }
  if (results.length === 2) {
    return { toolCalls: [{ id: "call_convert_2", name: "convert_currency", arguments: "{\"amount\":20,\"from\":\"EUR\",\"to\":\"USD\"}" }] }
  }
  const weather = JSON.parse(results[0]!) as { tempC: number; sky: string }
  const money = JSON.parse(results[2]!) as { amount: number; currency: string }
  return { text: `Paris is ${weather.tempC}°C and ${weather.sky}; 20 EUR is ${money.amount} ${money.currency}.` }
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

NodeRuntime.runMain(program.pipe(Effect.provide(Layer.merge(process.env.OPENAI_API_KEY ? OpenAi() : FakeOpenAi, TravelHandlers))))
