/**
 * The garbage one stream read makes: `--streams` streams of the full stack (or `--stack
 * provider`) over a canned `Transport` that hands over one SSE event per read, `--events` each,
 * drained at once, with a young generation large enough that no collection runs: the heap's
 * growth is what the reads allocated. Garbage is what a thousand open streams add to the RSS
 * beyond what they retain (`stream-heap.ts`): the more per read, the more often the collector
 * runs and the more it promotes.
 *
 * The floor in the same run: a stream that is nothing but Effect's own machinery, drained the
 * same way: a channel loop that reads one number per `Effect.async` and writes it as a chunk.
 *
 *   node --expose-gc --max-semi-space-size=1024 --min-semi-space-size=1024 --import tsx bench/stream-garbage.ts [--stack full|provider] [--streams 200] [--events 64]
 */
import { parseArgs } from "node:util"
import { Channel, Chunk, Effect, Layer, ManagedRuntime, Redacted, Stream } from "effect"
import { KeyPool, LanguageModel, Message, OpenAiCompatible, RateLimiter, Retry, Transport, Usage } from "../src/index.js"

const { values } = parseArgs({
  options: {
    stack: { type: "string", default: "full" },
    streams: { type: "string", default: "200" },
    events: { type: "string", default: "64" }
  },
  strict: true
})
const gc = (globalThis as { gc?: () => void }).gc
if (gc === undefined) throw new Error("run with node --expose-gc")
const streams = Number(values.streams)
const events = Number(values.events)

const encoder = new TextEncoder()
const frame = (delta: string) =>
  encoder.encode(`data: {"id":"x","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"${delta}"}}]}\n\n`)
const body = [
  ...Array.from({ length: events }, (_, i) => frame(`w${i} `)),
  encoder.encode(`data: {"id":"x","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":${events},"total_tokens":${events + 3}}}\n\ndata: [DONE]\n\n`)
]
const canned = Layer.succeed(Transport.Transport, {
  text: () => Effect.never,
  stream: () =>
    Effect.sync(() => {
      let next = 0
      const pull = Effect.sync(() => (next < body.length ? [body[next++]!] : undefined))
      return { status: 200, headers: { "content-type": "text/event-stream" }, pull, pullWithin: () => pull }
    })
})
const provider = OpenAiCompatible.layer({ model: "m", baseUrl: "http://127.0.0.1:1/v1" })
const stack = values.stack === "provider"
  ? provider.pipe(Layer.provide(KeyPool.layer({ providerId: "openai", keys: [Redacted.make("sk-a")] })), Layer.provide(RateLimiter.unlimited))
  : Retry.layer(Retry.schedule()).pipe(
    Layer.provideMerge(provider),
    Layer.provide(KeyPool.layer({ providerId: "openai", keys: [Redacted.make("sk-a"), Redacted.make("sk-b")] })),
    Layer.provide(RateLimiter.layer({ requestsPerMinute: 1e8, tokensPerMinute: 1e11 })),
    Layer.provide(Usage.layer())
  )
// the canned transport answers; `layerUndici` only stands in for the HttpClient the provider requires
const runtime = ManagedRuntime.make(stack.pipe(Layer.provide(canned), Layer.provide(Transport.layerUndici)))
type Provided = ManagedRuntime.ManagedRuntime.Context<typeof runtime>
const drainAll = <E>(n: number, make: () => Stream.Stream<unknown, E, Provided>) =>
  runtime.runPromise(Effect.forEach(Array.from({ length: n }), () => Stream.runDrain(make()), { concurrency: 50, discard: true }))

/** Bytes allocated per read by `streams` runs of `make`, after a warm-up (no collection runs with the young generation this large). */
const measure = async <E>(make: () => Stream.Stream<unknown, E, Provided>) => {
  await drainAll(50, make)
  gc()
  gc()
  const before = process.memoryUsage().heapUsed
  await drainAll(streams, make)
  return (process.memoryUsage().heapUsed - before) / (streams * (events + 1))
}

/** Effect's floor: one `Effect.async` per read, one chunk written per read, as the request path does. */
const floor = () =>
  Stream.fromChannel(Channel.suspend(() => {
    let read = 0
    const loop: Channel.Channel<Chunk.Chunk<number>> = Channel.flatMap(
      Channel.fromEffect(Effect.async<number>((resume) => resume(Effect.succeed(read++)))),
      (n) => (n <= events ? Channel.zipRight(Channel.write(Chunk.of(n)), loop) : Channel.void)
    )
    return loop
  }))

const ours = await measure(() => LanguageModel.stream(Message.request("hi")))
const effect = await measure(floor)
console.log(`${values.stack}: ${ours.toFixed(0)} B allocated per read (${events} events a stream, one a read)`)
console.log(`Effect's floor (a channel loop, one Effect.async per read, drained by Stream.runDrain): ${effect.toFixed(0)} B per read`)
await runtime.dispose()
