import { NodeHttpClient } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Cause, Effect, Exit, Layer, Logger, LogLevel, Metric, Option, Stream, Tracer } from "effect"
import type * as Context from "effect/Context"
import {
  Anthropic,
  Gemini,
  KeyPool,
  LanguageModel,
  Message,
  OpenAiCompatible,
  RateLimiter,
  Telemetry,
  Testing,
  Transport
} from "../src/index.js"

// every case runs over both transports: the undici one writes no HTTP span of its own, the
// HttpClient one does, and neither may show a key
const transports = [
  { id: "undici", layer: Transport.layerUndici },
  { id: "httpclient", layer: NodeHttpClient.layerUndici }
] as const

interface RecordedSpan {
  readonly name: string
  readonly attributes: Map<string, unknown>
  readonly events: Array<{ name: string; attributes?: Record<string, unknown> }>
  exit?: Exit.Exit<unknown, unknown>
}

/** A tracer that keeps every span, so tests can read names, attributes and events. */
const recordingTracer = () => {
  const spans: Array<RecordedSpan> = []
  let counter = 0
  const tracer = Tracer.make({
    span: (name, parent, context: Context.Context<never>, links, startTime, kind) => {
      const recorded: RecordedSpan = { name, attributes: new Map(), events: [] }
      spans.push(recorded)
      const id = String(++counter)
      const span: Tracer.Span = {
        _tag: "Span",
        name,
        spanId: id,
        traceId: "trace",
        parent,
        context,
        status: { _tag: "Started", startTime },
        attributes: recorded.attributes,
        links,
        sampled: true,
        kind,
        end: (_endTime, exit) => void (recorded.exit = exit),
        attribute: (key, value) => void recorded.attributes.set(key, value),
        event: (eventName, _time, attributes) => void recorded.events.push({ name: eventName, ...(attributes ? { attributes } : {}) }),
        addLinks: () => undefined
      }
      return span
    },
    context: (f) => f()
  })
  return { tracer, spans }
}

const counterValue = (metric: Metric.Metric.Counter<number>) => Effect.map(Metric.value(metric), (s) => s.count)
const tagged = <T, I, O>(metric: Metric.Metric<T, I, O>, tags: Record<string, string>) =>
  Object.entries(tags).reduce((m, [k, v]) => m.pipe(Metric.tagged(k, v)), metric)

describe.each(transports)("Telemetry over $id", ({ id, layer: transport }) => {
  it.scoped("chat and stream spans carry the GenAI attributes; metrics count calls, tokens, errors and latency", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({ reply: { text: "traced reply", chunks: 3 } })
      const { tracer, spans } = recordingTracer()
      const provider = `telemetry-test-${id}`
      const model = "gpt-telemetry"
      const stack = OpenAiCompatible.layer({ model, baseUrl: fake.baseUrl, provider }).pipe(
        Layer.provide(KeyPool.layer({ providerId: provider, keys: ["k1"] })),
        Layer.provide(RateLimiter.layer({ capacity: 10, refillPerSecond: 10 })),
        Layer.provide(transport)
      )
      const tags = { provider, model }
      const chats = tagged(Telemetry.requests, { ...tags, operation: "chat" })
      const streams = tagged(Telemetry.requests, { ...tags, operation: "stream" })
      const input = tagged(Telemetry.tokens, { ...tags, type: "input" })
      const output = tagged(Telemetry.tokens, { ...tags, type: "output" })
      const errors = tagged(Telemetry.errors, { ...tags, error: "ServerError" })
      const ttft = tagged(Telemetry.timeToFirstToken, tags)
      const latency = tagged(Telemetry.latency, tags)

      const response = yield* Effect.gen(function* () {
        const r = yield* LanguageModel.chat(Message.request("hi"))
        yield* Stream.runDrain(LanguageModel.stream(Message.request("hi")))
        yield* fake.inject({ _tag: "Status", status: 500 })
        yield* Effect.exit(LanguageModel.chat(Message.request("hi")))
        return r
      }).pipe(Effect.provide(stack), Effect.withTracer(tracer))

      expect(yield* counterValue(chats)).toBe(2)
      expect(yield* counterValue(streams)).toBe(1)
      expect(yield* counterValue(errors)).toBe(1)
      expect(yield* counterValue(input)).toBe(2 * response.usage.inputTokens)
      expect(yield* counterValue(output)).toBe(2 * response.usage.outputTokens)
      expect((yield* Metric.value(ttft)).count).toBe(1)
      expect((yield* Metric.value(latency)).count).toBe(3)
      expect((yield* Metric.value(Telemetry.limiterWait)).count).toBeGreaterThanOrEqual(3)
      expect((yield* Metric.value(tagged(Telemetry.poolInFlight, { provider }))).value).toBe(0)

      const chatSpan = spans.find((s) => s.name === "LanguageModel.chat")!
      expect(Object.fromEntries(chatSpan.attributes)).toMatchObject({
        "gen_ai.system": provider,
        "gen_ai.request.model": model,
        "gen_ai.usage.input_tokens": response.usage.inputTokens,
        "gen_ai.usage.output_tokens": response.usage.outputTokens,
        "gen_ai.response.finish_reasons": ["stop"]
      })
      const streamSpan = spans.find((s) => s.name === "LanguageModel.stream")!
      expect(Object.fromEntries(streamSpan.attributes)).toMatchObject({
        "gen_ai.system": provider,
        "gen_ai.usage.output_tokens": response.usage.outputTokens,
        "gen_ai.response.finish_reasons": ["stop"]
      })
      // the HTTP client's own span is a child of ours; the undici transport writes none
      expect(spans.some((s) => s.name.startsWith("http.client"))).toBe(id === "httpclient")
    }))

  it.scopedLive("no key appears in any span, log line, error or metric, whatever the provider and outcome", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({ reply: { text: "ok", chunks: 2 } })
      const keys = ["sk-LEAKCHECK-openai-0001", "sk-ant-LEAKCHECK-0002", "AIza-LEAKCHECK-gemini-0003"]
      const { tracer, spans } = recordingTracer()
      const logs: Array<string> = []
      const logger = Logger.make(({ message, annotations, cause }) => {
        logs.push(JSON.stringify({ message, annotations: [...annotations], cause: Cause.pretty(cause) }))
      })
      const stacks = [
        OpenAiCompatible.layer({ model: "gpt-x", baseUrl: fake.baseUrl }).pipe(
          Layer.provideMerge(KeyPool.layer({ providerId: "openai", keys: [keys[0]!] }))
        ),
        Anthropic.layer({ model: "claude-x", baseUrl: fake.url }).pipe(
          Layer.provideMerge(KeyPool.layer({ providerId: "anthropic", keys: [keys[1]!] }))
        ),
        Gemini.layer({ model: "gemini-x", baseUrl: `${fake.url}/v1beta` }).pipe(
          Layer.provideMerge(KeyPool.layer({ providerId: "gemini", keys: [keys[2]!] }))
        )
      ].map((layer) => layer.pipe(Layer.provide(RateLimiter.unlimited), Layer.provide(transport)))
      // servers that echo the key back in their error bodies are the hard case
      const echoKey = (status: number, key: string): Testing.Fault => ({
        _tag: "Status",
        status,
        body: JSON.stringify({ error: { message: `Incorrect API key provided: ${key}`, type: "invalid_request_error" } })
      })
      const outcomes: Array<unknown> = []
      const sentHeaders: Array<unknown> = []
      for (const [index, stack] of stacks.entries()) {
        const key = keys[index]!
        const run = Effect.gen(function* () {
          yield* fake.clear
          outcomes.push(yield* Effect.exit(LanguageModel.chat(Message.request("hi"))))
          outcomes.push(yield* Effect.exit(Stream.runCollect(LanguageModel.stream(Message.request("hi")))))
          for (const fault of [echoKey(500, key), echoKey(400, key), { _tag: "RateLimit", retryAfterMs: 1 } as const, echoKey(401, key)]) {
            yield* fake.inject(fault)
            outcomes.push(yield* Effect.exit(LanguageModel.chat(Message.request("hi"))))
            // let a 429's cooldown pass so the next fault reaches the server
            yield* Effect.sleep("20 millis")
          }
          yield* fake.inject({ _tag: "StreamErrorEvent", afterChunks: 1 })
          outcomes.push(yield* Effect.exit(Stream.runCollect(LanguageModel.stream(Message.request("hi")))))
          yield* Effect.logDebug("status", yield* KeyPool.status)
          sentHeaders.push(...(yield* fake.requests).map((r) => r.headers))
        })
        yield* run.pipe(
          Effect.provide(stack),
          Effect.withTracer(tracer),
          Effect.provide(Logger.replace(Logger.defaultLogger, logger)),
          Logger.withMinimumLogLevel(LogLevel.All)
        )
      }
      const errors = outcomes.filter(Exit.isExit).filter(Exit.isFailure)
      expect(errors.length).toBeGreaterThanOrEqual(12)
      const captured = JSON.stringify({
        // what exporters record of a span: attributes, events, and the cause of a failure
        spans: spans.map((s) => ({
          name: s.name,
          attributes: [...s.attributes].map(([k, v]) => [k, String(v)]),
          events: s.events,
          failure: s.exit !== undefined && Exit.isFailure(s.exit) ? Cause.pretty(s.exit.cause) : undefined
        })),
        logs,
        errors: errors.map((exit) => [JSON.stringify(exit), Cause.pretty(exit.cause), String(Option.getOrUndefined(Exit.causeOption(exit)))]),
        metrics: (yield* Metric.snapshot).map((pair) => String(pair.metricKey) + JSON.stringify(pair.metricState))
      })
      // the check must be able to fail: the keys did reach the server
      const sent = JSON.stringify(sentHeaders)
      for (const key of keys) expect(sent).toContain(key)
      for (const key of keys) {
        expect(captured).not.toContain(key)
        expect(captured).not.toContain(key.slice(-12))
      }
    }))
})
