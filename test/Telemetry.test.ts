import { NodeSdk } from "@effect/opentelemetry"
import { NodeHttpClient } from "@effect/platform-node"
import { DataPointType, MetricReader } from "@opentelemetry/sdk-metrics"
import { InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base"
import { describe, expect, it } from "@effect/vitest"
import { Cause, Effect, Exit, Layer, Logger, LogLevel, Metric, Option, Stream } from "effect"
import {
  Anthropic,
  Gemini,
  KeyPool,
  LanguageModel,
  Message,
  OpenAiCompatible,
  RateLimiter,
  Telemetry,
  Transport
} from "../src/index.js"
import * as Testing from "../src/Testing.js"
import { recordingTracer } from "./support/recordingTracer.js"

// every case runs over both transports: the undici one writes no HTTP span of its own, the
// HttpClient one does, and neither may show a key
const transports = [
  { id: "undici", layer: Transport.layerUndici },
  { id: "httpclient", layer: NodeHttpClient.layerUndici }
] as const


/** Where `secret` first appears in `text`, with some context; undefined when it does not. */
const leakIn = (text: string, secret: string): string | undefined => {
  const at = text.indexOf(secret)
  return at < 0 ? undefined : text.slice(Math.max(0, at - 80), at + secret.length + 40)
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
      const tags = { "gen_ai.provider.name": provider, "gen_ai.request.model": model }
      const chats = tagged(Telemetry.requests, { ...tags, "effect_llm.stream": "false" })
      const streams = tagged(Telemetry.requests, { ...tags, "effect_llm.stream": "true" })
      const input = tagged(Telemetry.tokens, { ...tags, "gen_ai.token.type": "input" })
      const output = tagged(Telemetry.tokens, { ...tags, "gen_ai.token.type": "output" })
      const errors = tagged(Telemetry.errors, { ...tags, "error.type": "ServerError" })
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
      expect((yield* Metric.value(input)).sum).toBe(2 * response.usage.inputTokens)
      expect((yield* Metric.value(output)).sum).toBe(2 * response.usage.outputTokens)
      expect((yield* Metric.value(ttft)).count).toBe(1)
      expect((yield* Metric.value(latency)).count).toBe(3)
      expect((yield* Metric.value(Telemetry.limiterWait)).count).toBeGreaterThanOrEqual(3)
      expect((yield* Metric.value(tagged(Telemetry.poolInFlight, { "gen_ai.provider.name": provider }))).value).toBe(0)

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

  /** A provider of each auth style, and how its key must appear at the server. */
  const authStyles = [
    {
      name: "OpenAiCompatible",
      header: "authorization",
      key: "sk-LEAKCHECK-openai-0001",
      sent: (key: string) => `Bearer ${key}`,
      layer: (fake: Testing.FakeProviderService) => OpenAiCompatible.layer({ model: "gpt-x", baseUrl: fake.baseUrl }),
      providerId: "openai"
    },
    {
      name: "Anthropic",
      header: "x-api-key",
      key: "sk-ant-LEAKCHECK-0002",
      sent: (key: string) => key,
      layer: (fake: Testing.FakeProviderService) => Anthropic.layer({ model: "claude-x", baseUrl: fake.url }),
      providerId: "anthropic"
    },
    {
      name: "Gemini",
      header: "x-goog-api-key",
      key: "AIza-LEAKCHECK-gemini-0003",
      sent: (key: string) => key,
      layer: (fake: Testing.FakeProviderService) => Gemini.layer({ model: "gemini-x", baseUrl: `${fake.url}/v1beta` }),
      providerId: "gemini"
    }
  ] as const

  describe.each(authStyles)("$name, keyed by $header", (style) => {
    it.scopedLive("no key appears in any span, log line, error or metric, whatever the outcome", () =>
      Effect.gen(function* () {
        const fake = yield* Testing.FakeProvider.make({ reply: { text: "ok", chunks: 2 } })
        const { tracer, spans } = recordingTracer()
        const logs: Array<string> = []
        const logger = Logger.make(({ message, annotations, cause }) => {
          logs.push(JSON.stringify({ message, annotations: [...annotations], cause: Cause.pretty(cause) }))
        })
        const stack = style.layer(fake).pipe(
          Layer.provideMerge(KeyPool.layer({ providerId: style.providerId, keys: [style.key] })),
          Layer.provide(RateLimiter.unlimited),
          Layer.provide(transport)
        )
        // servers that echo the key back in their error bodies are the hard case
        const echoKey = (status: number): Testing.Fault => ({
          _tag: "Status",
          status,
          body: JSON.stringify({ error: { message: `Incorrect API key provided: ${style.key}`, type: "invalid_request_error" } })
        })
        const chat = Effect.exit(LanguageModel.chat(Message.request("hi")))
        const stream = Effect.exit(Stream.runCollect(LanguageModel.stream(Message.request("hi"))))
        // error replies, a rate limit, an error inside a stream, and failures below HTTP (a reset
        // before the reply; a cut in the body before any frame, a NetworkError on every route, and
        // one after some frames, whose partial text rides on a StreamError where text arrived);
        // last, a 401 that disables the only key
        const faulted: ReadonlyArray<readonly [Testing.Fault, typeof chat | typeof stream]> = [
          [echoKey(500), chat],
          [echoKey(400), chat],
          [{ _tag: "RateLimit", retryAfterMs: 30 }, chat],
          [{ _tag: "StreamErrorEvent", afterChunks: 1 }, stream],
          [{ _tag: "Reset" }, chat],
          [{ _tag: "Reset" }, stream],
          [{ _tag: "CutStream", afterChunks: 0 }, stream],
          [{ _tag: "CutStream", afterChunks: 2 }, stream],
          [echoKey(401), chat]
        ]
        const outcomes = yield* Effect.gen(function* () {
          const outcomes: Array<Exit.Exit<unknown, unknown>> = [yield* chat, yield* stream]
          for (const [fault, run] of faulted) {
            yield* fake.inject(fault)
            outcomes.push(yield* run)
            // let a 429's cooldown pass so that the next fault reaches the server
            yield* Effect.sleep("40 millis")
          }
          yield* Effect.logDebug("status", yield* KeyPool.status)
          return outcomes
        }).pipe(
          Effect.provide(stack),
          Effect.withTracer(tracer),
          Effect.provide(Logger.replace(Logger.defaultLogger, logger)),
          Logger.withMinimumLogLevel(LogLevel.All)
        )
        const errors = outcomes.filter(Exit.isFailure)
        // every path ran: the replies, the error replies and the failures below HTTP (the 429
        // may be re-tried on its own key if its cooldown is over first, and then succeed)
        const tags = errors.map((exit) => (exit.cause._tag === "Fail" ? (exit.cause.error as { _tag: string })._tag : exit.cause._tag))
        expect(tags).toEqual(expect.arrayContaining(["ServerError", "InvalidRequestError", "StreamError", "NetworkError", "AuthenticationError"]))
        expect(tags.filter((tag) => tag === "NetworkError").length).toBeGreaterThanOrEqual(3)
        expect(errors.length).toBeGreaterThanOrEqual(faulted.length - 1)
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
          // the key's name and labels, not String(key), which is "[object Object]"
          metrics: (yield* Metric.snapshot).map((pair) => JSON.stringify(pair.metricKey) + JSON.stringify(pair.metricState))
        })
        // the check must be able to fail: the key did reach the server, in this style's header
        const requests = yield* fake.requests
        expect(requests.length).toBeGreaterThanOrEqual(faulted.length + 2)
        for (const request of requests) expect(request.headers[style.header]).toBe(style.sent(style.key))
        expect(leakIn(captured, style.key), `the ${style.header} key leaked over ${id}`).toBeUndefined()
        expect(leakIn(captured, style.key.slice(-12)), `the end of the ${style.header} key leaked over ${id}`).toBeUndefined()
        // the HttpClient's own span recorded this header, redacted (undici's transport writes no span)
        if (id === "httpclient") expect(spans.some((s) => s.attributes.has(`http.request.header.${style.header}`))).toBe(true)
      }))
  })
})

describe("Telemetry, read and exported", () => {
  it.scoped("a metric reads as the sum of its series, plain or by any of its labels", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({ reply: { text: "summed", chunks: 2 } })
      const model = (provider: string) =>
        OpenAiCompatible.layer({ model: "gpt-sum", baseUrl: fake.baseUrl, provider }).pipe(
          Layer.provide(KeyPool.layer({ providerId: provider, keys: ["k1"] })),
          Layer.provide(RateLimiter.unlimited),
          Layer.provide(Transport.layerUndici)
        )
      const before = (yield* Metric.value(Telemetry.requests)).count
      const tokensBefore = (yield* Metric.value(Telemetry.tokens)).sum
      yield* LanguageModel.chat(Message.request("one")).pipe(Effect.provide(model("sum-a")))
      yield* LanguageModel.chat(Message.request("two")).pipe(Effect.provide(model("sum-b")))
      const reply = yield* LanguageModel.collect(LanguageModel.stream(Message.request("three"))).pipe(Effect.provide(model("sum-b")))
      // a plain read: every call, whatever its labels
      expect((yield* Metric.value(Telemetry.requests)).count - before).toBe(3)
      expect((yield* Metric.value(Telemetry.tokens)).sum - tokensBefore).toBe(3 * reply.usage.totalTokens)
      // a read by one label, whatever the others
      expect((yield* Metric.value(Telemetry.requests.pipe(Metric.tagged("gen_ai.provider.name", "sum-b")))).count).toBe(2)
      expect((yield* Metric.value(tagged(Telemetry.requests, { "gen_ai.provider.name": "sum-b", "effect_llm.stream": "true" }))).count).toBe(1)
      expect((yield* Metric.value(tagged(Telemetry.latency, { "gen_ai.provider.name": "sum-a" }))).count).toBe(1)
      // updates go to the labelled series only: no unlabelled series for an exporter to count twice
      const series = (yield* Metric.snapshot).filter((pair) => pair.metricKey.name === "effect_llm.client.requests")
      expect(series.every((pair) => pair.metricKey.tags.some((tag) => tag.key === "gen_ai.provider.name"))).toBe(true)
    }))

  it("through @effect/opentelemetry's NodeSdk: GenAI attributes of OpenTelemetry types, metrics by their conventional names", async () => {
    // keeps its spans when the SDK shuts down with the layer (InMemorySpanExporter's own shutdown drops them)
    const spans = new (class extends InMemorySpanExporter {
      override shutdown() {
        return Promise.resolve()
      }
    })()
    const reader = new (class extends MetricReader {
      protected onForceFlush() {
        return Promise.resolve()
      }
      protected onShutdown() {
        return Promise.resolve()
      }
    })()
    const Otel = NodeSdk.layer(() => ({
      resource: { serviceName: "effect-llm-test" },
      spanProcessor: new SimpleSpanProcessor(spans),
      metricReader: reader
    }))
    const collected = await Effect.runPromise(
      Effect.gen(function* () {
        const fake = yield* Testing.FakeProvider.make({ reply: { text: "exported", chunks: 2 } })
        const stack = OpenAiCompatible.layer({ model: "gpt-otel", baseUrl: fake.baseUrl, provider: "otel-test" }).pipe(
          Layer.provide(KeyPool.layer({ providerId: "otel-test", keys: ["k1"] })),
          Layer.provide(RateLimiter.unlimited),
          Layer.provide(Transport.layerUndici)
        )
        yield* LanguageModel.chat(Message.request("hi")).pipe(Effect.provide(stack))
        yield* Stream.runDrain(LanguageModel.stream(Message.request("hi"))).pipe(Effect.provide(stack))
        return yield* Effect.promise(() => reader.collect())
      }).pipe(Effect.scoped, Effect.provide(Otel))
    )
    const finished = spans.getFinishedSpans()
    for (const name of ["LanguageModel.chat", "LanguageModel.stream"]) {
      const span = finished.find((s) => s.name === name)
      expect(span, name).toBeDefined()
      expect(span!.attributes).toMatchObject({
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "otel-test",
        "gen_ai.request.model": "gpt-otel",
        "gen_ai.response.finish_reasons": ["stop"]
      })
      expect(typeof span!.attributes["gen_ai.usage.input_tokens"]).toBe("number")
      expect(typeof span!.attributes["gen_ai.usage.output_tokens"]).toBe("number")
    }
    const metrics = collected.resourceMetrics.scopeMetrics.flatMap((scope) => scope.metrics)
    const byName = (name: string) => metrics.find((m) => m.descriptor.name === name)
    const tokenUsage = byName("gen_ai.client.token.usage")
    expect(tokenUsage?.dataPointType).toBe(DataPointType.HISTOGRAM)
    expect(tokenUsage?.descriptor.unit).toBe("{token}")
    expect(tokenUsage?.dataPoints.some((p) => p.attributes["gen_ai.token.type"] === "input" && p.attributes["gen_ai.provider.name"] === "otel-test")).toBe(true)
    const duration = byName("gen_ai.client.operation.duration")
    expect(duration?.dataPointType).toBe(DataPointType.HISTOGRAM)
    expect(duration?.descriptor.unit).toBe("s")
    expect(byName("gen_ai.client.operation.time_to_first_chunk")?.dataPointType).toBe(DataPointType.HISTOGRAM)
    expect(byName("effect_llm.client.requests")?.dataPointType).toBe(DataPointType.SUM)
    expect(byName("effect_llm.client.errors") ?? byName("effect_llm.key_pool.in_flight")).toBeDefined()
    const old = ["effect_llm_requests_total", "effect_llm_tokens_total", "effect_llm_request_duration_ms", "effect_llm_time_to_first_token_ms"]
    expect(metrics.filter((m) => old.includes(m.descriptor.name))).toEqual([])
  }, 30_000)
})
