/**
 * The library's own cost per request, without a network: providers send through a canned
 * in-memory `Transport` replaying the fake server's real bodies (the stream in one piece per
 * SSE event, as undici delivers it). Next to it, the cost of parsing the same bodies by hand.
 * Run it compiled, as bench/run.ts runs the clients (tsx adds ~10–20% to our code):
 *
 *   npx esbuild bench/overhead.ts --bundle --platform=node --format=esm --packages=external --outfile=bench/.build/overhead.mjs
 *   node bench/.build/overhead.mjs [--requests N]
 *
 * Environment: STACKS=provider,full and MODES=json,stream choose what runs; ASYNC=1 answers
 * JSON on the next macrotask instead of at once; ONE_PER_READ=1 hands a stream over one SSE
 * event per read instead of all at once; REAL=http://127.0.0.1:PORT sends the
 * `provider` stack to a running bench/fake-server.ts instead of the canned transport.
 * ALLOC=1 prints the bytes allocated per request instead of CPU (deterministic where CPU is
 * noisy); give node a young generation that no scavenge fills while it measures:
 *
 *   ALLOC=1 node --expose-gc --min-semi-space-size=256 --max-semi-space-size=256 bench/.build/overhead.mjs
 */
import { type ConfigError, Effect, Layer, ManagedRuntime, Redacted, Stream } from "effect"
import { PerformanceObserver } from "node:perf_hooks"
import { parseArgs } from "node:util"
import { ContextWindow, Fallback, KeyPool, LanguageModel, Message, OpenAiCompatible, RateLimiter, Retry, Transport, Usage } from "../src/index.js"
import * as Testing from "../src/Testing.js"
import { CHUNKS, MODEL, REPLY_TEXT, SYSTEM_PROMPT, USER_PROMPT } from "./workload.js"

const { values } = parseArgs({ options: { requests: { type: "string", default: "20000" } } })
const requests = Number(values.requests)

// the fake server's real bodies, fetched once
const bodies = await Effect.runPromise(Effect.scoped(Effect.gen(function* () {
  const fake = yield* Testing.FakeProvider.make({ record: false, reply: { text: REPLY_TEXT, chunks: CHUNKS } })
  const get = (stream: boolean) => Effect.promise(() => fetch(`${fake.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: "Bearer x" },
    body: JSON.stringify({ model: MODEL, messages: [{ role: "user", content: "hi" }], ...(stream ? { stream: true, stream_options: { include_usage: true } } : {}) })
  }).then(async (r) => ({ headers: Object.fromEntries(r.headers), body: await r.text() })))
  return { json: yield* get(false), sse: yield* get(true) }
})))
const sseBytes = new TextEncoder().encode(bodies.sse.body)
// as the network delivers it: one piece per SSE event (what undici hands over for this body)
const ssePieces = bodies.sse.body.split(/(?<=\n\n)/).map((event) => new TextEncoder().encode(event))

const canned = Layer.succeed(Transport.Transport, {
  text: () =>
    process.env.ASYNC
      ? Effect.async((resume) => void setImmediate(() => resume(Effect.succeed({ status: 200, headers: bodies.json.headers, body: bodies.json.body }))))
      : Effect.succeed({ status: 200, headers: bodies.json.headers, body: bodies.json.body }),
  stream: () => Effect.sync(() => {
    // ONE_PER_READ=1: one event per read, as a slow provider delivers them
    let next = 0
    const pull = Effect.sync(() =>
      next >= ssePieces.length ? undefined : process.env.ONE_PER_READ ? [ssePieces[next++]!] : ((next = ssePieces.length), ssePieces)
    )
    return {
      status: 200,
      headers: bodies.sse.headers,
      pull,
      // the canned body is all there: a deadline can never pass while it is read
      pullWithin: () => pull
    }
  }),
  timeouts: true
})

const provider = OpenAiCompatible.layer({ model: MODEL, baseUrl: `${process.env.REAL ?? "http://127.0.0.1:1"}/v1` })
/** The provider layer over `keys`, a limiter and the canned transport; the stacks below add to it one part at a time. */
const over = (keys: number, limiter: Layer.Layer<RateLimiter.RateLimiter, ConfigError.ConfigError>, usage: boolean) =>
  provider.pipe(
    Layer.provide(KeyPool.layer({ providerId: "openai", keys: Array.from({ length: keys }, (_, i) => Redacted.make(`sk-${i}`)) })),
    Layer.provide(limiter),
    Layer.provide(usage ? Usage.layer() : Layer.empty),
    Layer.provide(canned),
    Layer.provide(Transport.layerUndici)
  )
const bucket = RateLimiter.layer({ requestsPerMinute: 100_000_000, tokensPerMinute: 100_000_000_000 })
const stacks: Record<string, Layer.Layer<LanguageModel.LanguageModel, ConfigError.ConfigError>> = {
  // one part at a time, for finding what each costs: STACKS=provider,+keys,+limiter,+usage,+retry,full
  "+keys": over(2, RateLimiter.unlimited, false),
  "+limiter": over(1, bucket, false),
  "+usage": over(1, RateLimiter.unlimited, true),
  "+retry": Retry.layer(Retry.schedule()).pipe(Layer.provideMerge(over(1, RateLimiter.unlimited, false))),
  "provider": provider.pipe(
    Layer.provide(KeyPool.layer({ providerId: "openai", keys: [Redacted.make("sk-a")] })),
    Layer.provide(RateLimiter.unlimited),
    Layer.provide(process.env.REAL ? Layer.empty : canned), Layer.provide(Transport.layerUndici)),
  // the demo's shape: Retry inside a Fallback step; Fallback must not count the chunks Retry's provider reports
  "fallback": Fallback.layer([
    { model: Retry.layer(Retry.schedule()).pipe(Layer.provide(provider)) },
    { model: provider }
  ]).pipe(
    Layer.provide(KeyPool.layer({ providerId: "openai", keys: [Redacted.make("sk-a"), Redacted.make("sk-b")] })),
    Layer.provide(bucket),
    Layer.provide(Usage.layer()),
    Layer.provide(canned), Layer.provide(Transport.layerUndici)),
  // a decorator whose stream passes events through (one span per stream)
  "+window": ContextWindow.layer().pipe(Layer.provide(over(1, RateLimiter.unlimited, false))),
  "full": Retry.layer(Retry.schedule()).pipe(
    Layer.provideMerge(provider),
    Layer.provide(KeyPool.layer({ providerId: "openai", keys: [Redacted.make("sk-a"), Redacted.make("sk-b")] })),
    Layer.provide(bucket),
    Layer.provide(Usage.layer()),
    Layer.provide(canned), Layer.provide(Transport.layerUndici))
}

const request = () => Message.request([Message.system(SYSTEM_PROMPT), Message.user(USER_PROMPT)])
const check = (text: string) => { if (text !== REPLY_TEXT) throw new Error(`wrong: ${text.slice(0, 80)}`) }
const one = {
  json: Effect.map(Effect.suspend(() => LanguageModel.chat(request())), (r) => check(r.text)),
  stream: Effect.map(Stream.runFold(Stream.suspend(() => LanguageModel.stream(request())), "", (t, e) => (e._tag === "TextDelta" ? t + e.text : t)), check)
}
const rawParse = {
  json: () => check(JSON.parse(bodies.json.body).choices[0].message.content),
  stream: () => {
    let text = ""
    for (const line of new TextDecoder().decode(sseBytes).split("\n")) {
      if (line.startsWith("data: ") && line !== "data: [DONE]") {
        const c = JSON.parse(line.slice(6)).choices?.[0]?.delta?.content
        if (typeof c === "string") text += c
      }
    }
    check(text)
  }
}
for (const mode of (process.env.MODES ?? "json,stream").split(",") as Array<"json" | "stream">) {
  for (let i = 0; i < 2000; i++) rawParse[mode]()
  const c0 = process.cpuUsage()
  for (let i = 0; i < requests; i++) rawParse[mode]()
  const c = process.cpuUsage(c0)
  console.log(`parse only ${mode}: ${((c.user + c.system) / requests).toFixed(1)} µs`)
}
for (const [name, stack] of Object.entries(stacks).filter(([n]) => (process.env.STACKS ?? "provider,full").split(",").includes(n))) {
  const runtime = ManagedRuntime.make(stack)
  for (const mode of (process.env.MODES ?? "json,stream").split(",") as Array<"json" | "stream">) {
    const batch = (n: number) => runtime.runPromise(Effect.forEach(Array.from({ length: n }), () => one[mode], { concurrency: 32, discard: true }))
    await batch(2000)
    if (process.env.ALLOC) {
      const gc = (globalThis as { gc?: () => void }).gc
      if (gc === undefined) throw new Error("ALLOC=1 needs node --expose-gc")
      const measured = Number(process.env.ALLOC_REQUESTS ?? 100)
      let collections = 0
      const observer = new PerformanceObserver((list) => void (collections += list.getEntries().length))
      gc()
      observer.observe({ entryTypes: ["gc"] })
      const before = process.memoryUsage().heapUsed
      await batch(measured)
      const allocated = process.memoryUsage().heapUsed - before
      await new Promise((resolve) => setTimeout(resolve, 100))
      observer.disconnect()
      console.log(`${name} ${mode}: ${(allocated / measured / 1024).toFixed(1)} KB allocated${collections > 0 ? ` (a GC ran: undercounted; raise --max-semi-space-size)` : ""}`)
      continue
    }
    const c0 = process.cpuUsage()
    await batch(requests)
    const c = process.cpuUsage(c0)
    console.log(`${name} ${mode}: ${((c.user + c.system) / requests).toFixed(1)} µs`)
  }
  await runtime.dispose()
}
