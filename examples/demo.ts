/**
 * `npm start`: a full model stack — two keys, a rate limit, retry, and a fallback to a
 * second model — that streams a reply, survives a 429 and a dead primary, and prints the
 * key pool, the rate limiter and the usage.
 *
 * With no OPENAI_API_KEY it runs against `Testing.FakeProvider`, real HTTP servers on
 * loopback (one per model, so the primary can be killed alone), so no key and no network
 * are needed. With OPENAI_API_KEY set (one key, or a comma-separated list) the same stack
 * calls the real API; OPENAI_MODEL and OPENAI_FALLBACK_MODEL pick the two models.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Config, Console, Duration, Effect, Layer, Option, Redacted, Schedule, ScheduleDecision, Stream } from "effect"
import { Fallback, KeyPool, LanguageModel, LlmError, Message, OpenAiCompatible, RateLimiter, Retry, Transport, Usage } from "../src/index.js"
import * as Testing from "../src/Testing.js"

const prompt = "In three sentences: why do LLM clients need key pools and rate limits?"

const fakeReply =
  "Providers limit every key by requests and tokens per minute, so one key soon becomes the bottleneck. " +
  "A pool spreads the load and moves on when a key is rate limited or revoked. " +
  "A client-side token bucket keeps the whole fleet under the limits instead of learning them from 429s."

const fakeFallbackReply = "The fallback model here: the primary is down, so I am answering instead."

// ---------------------------------------------------------------------------
// The stack, read bottom-up:
//   HTTP client → key pool, rate limiter, usage tracker (shared by both models)
//   → one provider per model, each wrapped in Retry → Fallback over the two.
// ---------------------------------------------------------------------------

interface StackOptions {
  readonly primary: { readonly model: string; readonly baseUrl?: string | undefined }
  readonly secondary: { readonly model: string; readonly baseUrl?: string | undefined }
  readonly keys: KeyPool.Options["keys"] | "from OPENAI_API_KEY"
}

/** Retries a model's transient failures (5xx, resets, 429s no other key can take), and says so. */
const retryPolicy = (model: string) =>
  Retry.schedule({ maxRetries: 2, initialDelay: "200 millis", maxRetryAfter: "10 seconds" }).pipe(
    Schedule.onDecision((delay, decision) =>
      ScheduleDecision.isContinue(decision)
        ? Console.log(`  Retry: ${model} failed, trying again in ${Math.round(Duration.toMillis(delay))} ms`)
        : Console.log(`  Retry: ${model} failed, giving up on it`)
    )
  )

const retried = (endpoint: StackOptions["primary"]) =>
  Retry.layer(retryPolicy(endpoint.model)).pipe(
    Layer.provide(OpenAiCompatible.layer({ model: endpoint.model, baseUrl: endpoint.baseUrl }))
  )

// Merged into the stack's output, so the demo can print their status.
const Infrastructure = (keys: StackOptions["keys"]) =>
  Layer.mergeAll(
    keys === "from OPENAI_API_KEY"
      ? KeyPool.layerConfig({ providerId: "openai", keys: Config.redacted("OPENAI_API_KEY") })
      : KeyPool.layer({ providerId: "openai", keys }),
    RateLimiter.layer({ requestsPerMinute: 60, tokensPerMinute: 40_000 }),
    Usage.layer()
  )

const Stack = (options: StackOptions) =>
  Fallback.layer([{ model: retried(options.primary) }, { model: retried(options.secondary) }]).pipe(
    Layer.provideMerge(Infrastructure(options.keys)),
    Layer.provide(Transport.layerUndici)
  )

// ---------------------------------------------------------------------------
// The steps
// ---------------------------------------------------------------------------

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`

const section = (title: string) => Console.log(`\n=== ${title} ${"=".repeat(Math.max(3, 70 - title.length))}\n`)

const streamReply = Effect.gen(function* () {
  yield* section("Streaming a reply")
  yield* Console.log(`> ${prompt}\n`)
  let deltas = 0
  const response = yield* LanguageModel.collect(
    LanguageModel.stream(Message.request(prompt)).pipe(
      Stream.tap((event) =>
        event._tag === "TextDelta"
          ? Effect.sync(() => {
            deltas++
            process.stdout.write(event.text)
          })
          : Effect.void
      )
    )
  )
  yield* Console.log(
    `\n\n[streamed] ${response.provider}/${response.model}: ${response.text.length} chars in ${deltas} deltas, ` +
      `${response.usage.totalTokens} tokens (${response.usage.inputTokens} in, ${response.usage.outputTokens} out), ` +
      `finish: ${response.finishReason}`
  )
})

/** The fake saw the keys; show them by fingerprint, as everything else does. */
const keyOf = (request: Testing.RecordedRequest) =>
  KeyPool.fingerprint(String(request.headers["authorization"] ?? "").replace(/^Bearer /, ""))

/** One chat call while the primary's fake answers the first attempt with a 429. */
const survive429 = (primary: Testing.FakeProviderService) =>
  Effect.gen(function* () {
    yield* section("A 429 on one key")
    yield* primary.inject({ _tag: "RateLimit", retryAfterSeconds: 30 })
    const before = (yield* primary.requests).length
    const response = yield* LanguageModel.chat(Message.request("Say hello."))
    const attempts = (yield* primary.requests).slice(before)
    yield* Console.log(`one chat call, ${plural(attempts.length, "HTTP attempt")}:`)
    for (const [i, attempt] of attempts.entries()) {
      yield* Console.log(`  attempt ${i + 1} with ${keyOf(attempt)} -> ${i === 0 ? "429, retry-after: 30s (injected)" : "200"}`)
    }
    yield* Console.log(`  survived on another key: "${response.text.slice(0, 50)}…"`)
  })

/** One chat call while the primary's fake answers everything with 503: Retry, then Fallback. */
const surviveDeadPrimary = (fakes: Fakes, models: Models) =>
  Effect.gen(function* () {
    yield* section("A dead primary")
    yield* Console.log(`The primary's server (${models.primary}) now answers every request with 503.`)
    yield* fakes.primary.setResponder(() => ({ _tag: "Status", status: 503 }))
    const before = { primary: (yield* fakes.primary.requests).length, secondary: (yield* fakes.secondary.requests).length }
    const response = yield* LanguageModel.chat(Message.request("Are you there?")).pipe(
      Effect.ensuring(fakes.primary.setResponder(undefined))
    )
    const onPrimary = (yield* fakes.primary.requests).length - before.primary
    const onSecondary = (yield* fakes.secondary.requests).length - before.secondary
    yield* Console.log(`  primary   ${models.primary}: ${plural(onPrimary, "attempt")} -> ${Array(onPrimary).fill("503").join(", ")}`)
    yield* Console.log(`  secondary ${models.secondary}: ${plural(onSecondary, "attempt")} -> 200`)
    yield* Console.log(`  answered by ${response.provider}/${response.model}: "${response.text}"`)
  })

const printPool = Effect.gen(function* () {
  const now = Date.now()
  yield* section("Key pool (keys shown by fingerprint, never in full)")
  for (const key of yield* KeyPool.status) {
    const state = key.state === "disabled"
      ? `disabled: ${key.disabledReason ?? "rejected"}`
      : key.cooldownUntil !== undefined && key.cooldownUntil > now
      ? `cooling down for ${Math.ceil((key.cooldownUntil - now) / 1000)}s`
      : key.state
    yield* Console.log(`  ${key.keyId}  successes=${key.successes} failures=${key.failures} inFlight=${key.inFlight}  ${state}`)
  }
  yield* Console.log("  (a 5xx counts as a failure but leaves the key in service; a 429 cools it down, a 401/403 disables it)")
})

const printLimiter = Effect.gen(function* () {
  const status = yield* RateLimiter.status
  const now = Date.now()
  yield* section("Rate limiter (token bucket)")
  for (const [name, dimension] of [["requests", status.requests], ["tokens", status.tokens]] as const) {
    if (dimension === undefined) continue
    yield* Console.log(
      `  ${name.padEnd(8)} ${dimension.available.toFixed(1)} of ${dimension.capacity} available, ` +
        `refilling ${dimension.refillPerSecond.toFixed(2)}/s`
    )
  }
  if (status.pausedUntil !== undefined && status.pausedUntil > now) {
    yield* Console.log(`  paused for ${Math.ceil((status.pausedUntil - now) / 1000)}s: every key is rate limited`)
  } else {
    yield* Console.log("  not paused: the 429 cooled only its own key, and another key was healthy")
  }
})

const printUsage = Effect.gen(function* () {
  const { entries, total } = yield* Usage.snapshot
  yield* section("Usage (successful calls, priced by the model catalog)")
  const line = (name: string, t: Usage.Totals) =>
    `  ${name.padEnd(22)} ${plural(t.requests, "request").padStart(11)}  ${String(t.totalTokens).padStart(5)} tokens ` +
    `(${t.inputTokens} in, ${t.outputTokens} out)  $${t.cost.toFixed(6)}`
  for (const entry of entries) yield* Console.log(line(`${entry.provider}/${entry.model}`, entry))
  yield* Console.log(line("total", total))
})

interface Models {
  readonly primary: string
  readonly secondary: string
}

interface Fakes {
  readonly primary: Testing.FakeProviderService
  readonly secondary: Testing.FakeProviderService
}

const program = (models: Models, fakes: Option.Option<Fakes>) =>
  Effect.gen(function* () {
    yield* Console.log(`The stack: Fallback(Retry(${models.primary}) -> Retry(${models.secondary})),`)
    yield* Console.log("both on one key pool, one rate limiter and one usage tracker.")
    yield* streamReply
    // faults can only be injected into the fake
    if (Option.isSome(fakes)) {
      yield* surviveDeadPrimary(fakes.value, models)
      // last, because the 429's retry-after also pauses the rate limiter (shown below)
      yield* survive429(fakes.value.primary)
    }
    yield* printPool
    yield* printLimiter
    yield* printUsage
  })

// ---------------------------------------------------------------------------
// Fake or real: the same stack, only the base URLs and keys differ
// ---------------------------------------------------------------------------

const againstFake = Effect.gen(function* () {
  yield* Console.log("No OPENAI_API_KEY: running against Testing.FakeProvider on loopback.\n")
  const models: Models = { primary: "gpt-4o-mini", secondary: "gpt-4.1-nano" }
  const fakes: Fakes = {
    primary: yield* Testing.FakeProvider.make({ reply: { text: fakeReply, chunks: 24, chunkDelayMs: 25 } }),
    secondary: yield* Testing.FakeProvider.make({ reply: { text: fakeFallbackReply, chunks: 8, chunkDelayMs: 25 } })
  }
  const stack = Stack({
    primary: { model: models.primary, baseUrl: fakes.primary.baseUrl },
    secondary: { model: models.secondary, baseUrl: fakes.secondary.baseUrl },
    keys: [Redacted.make("sk-demo-first-key"), Redacted.make("sk-demo-second-key")]
  })
  yield* program(models, Option.some(fakes)).pipe(Effect.provide(stack))
}).pipe(Effect.scoped)

const againstOpenAi = Effect.gen(function* () {
  const models: Models = {
    primary: yield* Config.string("OPENAI_MODEL").pipe(Config.withDefault("gpt-4o-mini")),
    secondary: yield* Config.string("OPENAI_FALLBACK_MODEL").pipe(Config.withDefault("gpt-4.1-nano"))
  }
  yield* Console.log(`OPENAI_API_KEY is set: calling the OpenAI API with ${models.primary}, falling back to ${models.secondary}.\n`)
  const stack = Stack({ primary: { model: models.primary }, secondary: { model: models.secondary }, keys: "from OPENAI_API_KEY" })
  yield* program(models, Option.none()).pipe(Effect.provide(stack))
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
