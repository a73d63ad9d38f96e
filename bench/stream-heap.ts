/**
 * What one open stream holds: 1000 streams of the full stack (or `--stack provider`) suspended
 * mid-body over a canned `Transport` (one event, then a body that never ends, each wait bounded
 * by a plain timer as both real transports bound it), measured as retained heap after a GC,
 * the consumer's `Stream.runDrain` fiber included. `--snapshot FILE` also writes a heap snapshot to read in DevTools.
 *
 * `--prompt-chars N` makes each request's message N characters long (one string, shared by
 * every request, as a long system prompt is): what a stream keeps of its request past the send
 * shows as growth per stream.
 *
 *   node --expose-gc --import tsx bench/stream-heap.ts [--stack full|provider] [--streams 1000] [--prompt-chars 0] [--snapshot FILE]
 */
import { writeHeapSnapshot } from "node:v8"
import { parseArgs } from "node:util"
import { Effect, Fiber, Layer, ManagedRuntime, Redacted, Stream } from "effect"
import { KeyPool, LanguageModel, Message, OpenAiCompatible, RateLimiter, Retry, Transport, Usage } from "../src/index.js"

const { values } = parseArgs({
  options: {
    stack: { type: "string", default: "full" },
    streams: { type: "string", default: "1000" },
    "prompt-chars": { type: "string", default: "0" },
    snapshot: { type: "string" }
  },
  strict: true
})
const gc = (globalThis as { gc?: () => void }).gc
if (gc === undefined) throw new Error("run with node --expose-gc --import tsx bench/stream-heap.ts")
const count = Number(values.streams)
const prompt = "hi" + " lorem".repeat(Math.ceil(Number(values["prompt-chars"]) / 6))

const firstEvent = new TextEncoder().encode(
  `data: {"id":"x","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"hello "}}]}\n\n`
)
const canned = Layer.succeed(Transport.Transport, {
  text: () => Effect.never,
  stream: () =>
    Effect.sync(() => {
      let sent = false
      const pull = Effect.suspend(() => (sent ? Effect.never : ((sent = true), Effect.succeed([firstEvent]))))
      return {
        status: 200,
        headers: { "content-type": "text/event-stream" },
        pull,
        // as both real transports bound a read: one plain timer per wait, cleared when it ends
        pullWithin: (ms: number) =>
          sent
            ? Effect.async<never, Transport.TransportFailure>((resume) => {
              const handle = setTimeout(() => resume(Effect.fail(new Transport.TransportFailure({ description: "timed out", reason: "timeout" }))), ms)
              return Effect.sync(() => clearTimeout(handle))
            })
            : pull
      }
    })
})
const provider = OpenAiCompatible.layer({ model: "m", baseUrl: "http://127.0.0.1:1/v1" })
const stack = values.stack === "provider"
  ? provider.pipe(
    Layer.provide(KeyPool.layer({ providerId: "openai", keys: [Redacted.make("sk-a")] })),
    Layer.provide(RateLimiter.unlimited)
  )
  : Retry.layer(Retry.schedule()).pipe(
    Layer.provideMerge(provider),
    Layer.provide(KeyPool.layer({ providerId: "openai", keys: [Redacted.make("sk-a"), Redacted.make("sk-b")] })),
    Layer.provide(RateLimiter.layer({ requestsPerMinute: 1e8, tokensPerMinute: 1e11 })),
    Layer.provide(Usage.layer())
  )
const runtime = ManagedRuntime.make(stack.pipe(Layer.provide(canned), Layer.provide(Transport.layerUndici)))

await runtime.runPromise(Effect.void)
gc()
gc()
const before = process.memoryUsage().heapUsed
const fibers = await runtime.runPromise(
  Effect.forEach(Array.from({ length: count }), () =>
    Effect.forkDaemon(Stream.runDrain(LanguageModel.stream(Message.request(prompt)))))
)
await new Promise((resolve) => setTimeout(resolve, 500))
gc()
gc()
const retained = process.memoryUsage().heapUsed - before
console.log(`${values.stack}${prompt.length > 2 ? ` (a ${prompt.length}-character prompt)` : ""}: ${count} open streams retain ${(retained / 1024 / 1024).toFixed(1)} MB, ${(retained / count / 1024).toFixed(1)} KB each`)
if (values.snapshot !== undefined) console.log(`heap snapshot: ${writeHeapSnapshot(values.snapshot)}`)
await runtime.runPromise(Effect.forEach(fibers, Fiber.interrupt, { discard: true }))
await runtime.dispose()
