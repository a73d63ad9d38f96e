/**
 * `npm start`: a model stack (two keys, a token bucket) streaming a reply, surviving a 429,
 * and printing the key pool and the rate limiter.
 *
 * With no OPENAI_API_KEY it runs against `Testing.FakeProvider`, a real HTTP server on
 * loopback, so no key and no network are needed. With OPENAI_API_KEY set (one key, or a
 * comma-separated list) it calls the real API; OPENAI_MODEL picks the model.
 */
import { NodeHttpClient, NodeRuntime } from "@effect/platform-node"
import { Config, Console, Effect, Layer, Option, Redacted, Stream } from "effect"
import { KeyPool, LanguageModel, LlmError, Message, OpenAiCompatible, RateLimiter, Testing } from "../src/index.js"

const prompt = "In three sentences: why do LLM clients need key pools and rate limits?"

const fakeReply =
  "Providers limit every key by requests and tokens per minute, so one key soon becomes the bottleneck. " +
  "A pool spreads the load and moves on when a key is rate limited or revoked. " +
  "A client-side token bucket keeps the whole fleet under the limits instead of learning them from 429s."

// ---------------------------------------------------------------------------
// The stack, read bottom-up: provider ← key pool, rate limiter ← HTTP client.
// KeyPool and RateLimiter are merged into the output so the demo can print their status.
// ---------------------------------------------------------------------------

const Infrastructure = (keys: KeyPool.Options["keys"] | "from OPENAI_API_KEY") =>
  Layer.mergeAll(
    keys === "from OPENAI_API_KEY"
      ? KeyPool.layerConfig({ providerId: "openai", keys: Config.redacted("OPENAI_API_KEY") })
      : KeyPool.layer({ providerId: "openai", keys }),
    RateLimiter.layer({ requestsPerMinute: 60, tokensPerMinute: 40_000 })
  )

const Stack = (options: { readonly model: string; readonly baseUrl?: string; readonly keys: Parameters<typeof Infrastructure>[0] }) =>
  OpenAiCompatible.layer({ model: options.model, baseUrl: options.baseUrl }).pipe(
    // Decorators wrap the provider here, outermost first, e.g.
    //   Retry.layer(Retry.schedule()).pipe(Layer.provide(Fallback.layer(...)), Layer.provide(...))
    // Nothing below this line changes when they are added.
    Layer.provideMerge(Infrastructure(options.keys)),
    Layer.provide(NodeHttpClient.layerUndici)
  )

// ---------------------------------------------------------------------------
// The steps
// ---------------------------------------------------------------------------

const streamReply = Effect.gen(function* () {
  yield* Console.log(`> ${prompt}\n`)
  const response = yield* LanguageModel.collect(
    LanguageModel.stream(Message.request(prompt)).pipe(
      Stream.tap((event) => event._tag === "TextDelta" ? Effect.sync(() => process.stdout.write(event.text)) : Effect.void)
    )
  )
  yield* Console.log(
    `\n\n[streamed] ${response.provider}/${response.model}: ${response.text.length} chars, ` +
      `${response.usage.totalTokens} tokens (${response.usage.inputTokens} in, ${response.usage.outputTokens} out), ` +
      `finish: ${response.finishReason}`
  )
})

const printPool = Effect.gen(function* () {
  const now = Date.now()
  yield* Console.log("\nkey pool (keys are shown by fingerprint, never in full):")
  for (const key of yield* KeyPool.status) {
    const state = key.disabledReason !== undefined
      ? `disabled: ${key.disabledReason}`
      : key.cooldownUntil !== undefined && key.cooldownUntil > now
      ? `cooling down for ${Math.ceil((key.cooldownUntil - now) / 1000)}s`
      : "healthy"
    yield* Console.log(`  ${key.keyId}  successes=${key.successes} failures=${key.failures} inFlight=${key.inFlight}  ${state}`)
  }
})

const printLimiter = Effect.gen(function* () {
  const status = yield* RateLimiter.status
  yield* Console.log("\nrate limiter (token bucket):")
  for (const [name, dimension] of [["requests", status.requests], ["tokens", status.tokens]] as const) {
    if (dimension === undefined) continue
    yield* Console.log(
      `  ${name.padEnd(8)} ${dimension.available.toFixed(1)} of ${dimension.capacity} available, ` +
        `refilling ${dimension.refillPerSecond.toFixed(2)}/s`
    )
  }
})

/** One chat call while the fake answers the first attempt with a 429. */
const survive429 = (fake: Testing.FakeProviderService) =>
  Effect.gen(function* () {
    yield* fake.inject({ _tag: "RateLimit", retryAfterSeconds: 30 })
    const before = (yield* fake.requests).length
    const response = yield* LanguageModel.chat(Message.request("Say hello."))
    const attempts = (yield* fake.requests).slice(before)
    // the fake saw the keys; show them by fingerprint, as everything else does
    const keyOf = (request: Testing.RecordedRequest) =>
      KeyPool.fingerprint(String(request.headers["authorization"] ?? "").replace(/^Bearer /, ""))
    yield* Console.log(`\n[429] one chat call, ${attempts.length} HTTP attempts:`)
    for (const [i, attempt] of attempts.entries()) {
      yield* Console.log(`  attempt ${i + 1} with ${keyOf(attempt)} -> ${i === 0 ? "429, retry-after: 30s (injected)" : "200"}`)
    }
    yield* Console.log(`  survived on another key: "${response.text.slice(0, 50)}…"`)
  })

const program = (fake: Option.Option<Testing.FakeProviderService>) =>
  Effect.gen(function* () {
    yield* streamReply
    if (Option.isSome(fake)) yield* survive429(fake.value)
    yield* printPool
    yield* printLimiter
  })

// ---------------------------------------------------------------------------
// Fake or real
// ---------------------------------------------------------------------------

const againstFake = Effect.gen(function* () {
  yield* Console.log("No OPENAI_API_KEY: running against Testing.FakeProvider on loopback.\n")
  const fake = yield* Testing.FakeProvider.make({ reply: { text: fakeReply, chunks: 24, chunkDelayMs: 25 } })
  const stack = Stack({
    model: "gpt-4o-mini",
    baseUrl: fake.baseUrl,
    keys: [Redacted.make("sk-demo-first-key"), Redacted.make("sk-demo-second-key")]
  })
  yield* program(Option.some(fake)).pipe(Effect.provide(stack))
}).pipe(Effect.scoped)

const againstOpenAi = Effect.gen(function* () {
  const model = yield* Config.string("OPENAI_MODEL").pipe(Config.withDefault("gpt-4o-mini"))
  yield* Console.log(`OPENAI_API_KEY is set: calling the OpenAI API with ${model}.\n`)
  yield* program(Option.none()).pipe(Effect.provide(Stack({ model, keys: "from OPENAI_API_KEY" })))
})

const main = Effect.flatMap(
  Config.option(Config.redacted("OPENAI_API_KEY")),
  (key) => Option.isSome(key) && Redacted.value(key.value).trim().length > 0 ? againstOpenAi : againstFake
)

// A failed call ends the demo with its typed error, one line, never a key.
NodeRuntime.runMain(
  main.pipe(Effect.tapError((error) => Console.error(`\n${LlmError.isLlmError(error) ? `${error._tag}: ${error.message}` : String(error)}`))),
  { disableErrorReporting: true }
)
