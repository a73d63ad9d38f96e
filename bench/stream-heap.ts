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
 * `--transport undici` sends through `Transport.layerUndici` to the benchmark's fake server (in
 * its own process, its chunks ten minutes apart) instead of the canned transport: the heap
 * then holds the sockets and undici's own state too; `--stack undici` is the floor of that,
 * raw undici requests (`Agent.dispatch`, the first piece of the body read) held open the same way.
 * `--stack floor` is Effect's floor in the same runtime: a stream that holds a scope and waits in
 * one `Effect.async` with a timer, drained the same way (`bench/stream-floor.ts` takes it apart).
 *
 *   node --expose-gc --import tsx bench/stream-heap.ts [--stack full|provider|floor|undici] [--transport canned|undici] [--streams 1000] [--prompt-chars 0] [--snapshot FILE]
 */
import { spawn } from "node:child_process"
import { writeHeapSnapshot } from "node:v8"
import { Agent } from "undici"
import { parseArgs } from "node:util"
import { Channel, Chunk, Effect, Fiber, Layer, ManagedRuntime, Redacted, Scope, Stream } from "effect"
import { KeyPool, LanguageModel, Message, OpenAiCompatible, RateLimiter, Retry, Transport, Usage } from "../src/index.js"

const { values } = parseArgs({
  options: {
    stack: { type: "string", default: "full" },
    transport: { type: "string", default: "canned" },
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
const overUndici = values.transport === "undici" || values.stack === "undici"
/** The benchmark's fake server in a child process (its heap is not ours), chunks ten minutes apart. */
const serverUrl = !overUndici ? "http://127.0.0.1:1" : await new Promise<string>((resolve, reject) => {
  // run from the repository's root, as every bench is (this file also runs compiled, from bench/.build)
  const server = spawn(process.execPath, ["--import", "tsx", "bench/fake-server.ts", "--chunk-delay-ms", "600000"], { stdio: ["ignore", "pipe", "inherit"] })
  process.once("exit", () => server.kill("SIGTERM"))
  server.once("error", reject)
  let out = ""
  server.stdout.on("data", (piece: Buffer) => {
    out += piece.toString("utf8")
    if (out.includes("\n")) resolve((JSON.parse(out.slice(0, out.indexOf("\n"))) as { url: string }).url)
  })
})
const provider = OpenAiCompatible.layer({ model: "m", baseUrl: `${serverUrl}/v1` })
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
const runtime = ManagedRuntime.make(
  values.transport === "undici" ? stack.pipe(Layer.provide(Transport.layerUndici)) : stack.pipe(Layer.provide(canned), Layer.provide(Transport.layerUndici))
)

/** The floor over a real socket: an undici request whose first piece of body has arrived, held open. */
const agent = new Agent()
const rawRequest = () =>
  new Promise<void>((resolve, reject) => {
    agent.dispatch({
      origin: serverUrl,
      path: "/v1/chat/completions",
      method: "POST",
      headers: { "content-type": "application/json", accept: "text/event-stream", authorization: "Bearer sk-a" },
      body: JSON.stringify({ model: "m", messages: [{ role: "user", content: prompt }], stream: true })
    }, {
      onRequestStart() {},
      onResponseStart() {},
      onResponseData() {
        resolve()
      },
      onResponseEnd() {},
      onResponseError(_controller: unknown, error: Error) {
        reject(error)
      }
    } as never)
  })

await runtime.runPromise(Effect.void)
gc()
gc()
const { heapUsed: before, arrayBuffers: buffersBefore } = process.memoryUsage()
/**
 * Effect's floor, in the same runtime and forked the same way: a stream that holds a scope and
 * waits in one `Effect.async` with a plain timer, drained by `Stream.runDrain`, and nothing else.
 */
const floorStream = () =>
  Stream.fromChannel(Channel.acquireUseRelease(
    Scope.make(),
    () =>
      Channel.flatMap(
        Channel.fromEffect(Effect.async<Chunk.Chunk<number>>(() => {
          const handle = setTimeout(() => {}, 3_600_000)
          return Effect.sync(() => clearTimeout(handle))
        })),
        Channel.write
      ),
    (scope, exit) => Scope.close(scope, exit)
  ))
const fibers = values.stack === "undici"
  ? (await Promise.all(Array.from({ length: count }, rawRequest)), [])
  : await runtime.runPromise(
    Effect.forEach(Array.from({ length: count }), () =>
      Effect.forkDaemon(Stream.runDrain<unknown, unknown, LanguageModel.LanguageModel>(
        values.stack === "floor" ? floorStream() : LanguageModel.stream(Message.request(prompt))
      )))
  )
// over a socket: until every stream has its first event
await new Promise((resolve) => setTimeout(resolve, overUndici ? 3000 : 500))
gc()
gc()
const retained = process.memoryUsage().heapUsed - before
// Buffers (bodies, socket reads) live outside the heap
const buffers = process.memoryUsage().arrayBuffers - buffersBefore
console.log(`${values.stack}${overUndici ? " over undici" : ""}${prompt.length > 2 ? ` (a ${prompt.length}-character prompt)` : ""}: ${count} open streams retain ${(retained / 1024 / 1024).toFixed(1)} MB, ${(retained / count / 1024).toFixed(1)} KB each` + (buffers > 100 * count ? `, and ${(buffers / count / 1024).toFixed(1)} KB each in Buffers outside the heap` : ""))
if (values.snapshot !== undefined) console.log(`heap snapshot: ${writeHeapSnapshot(values.snapshot)}`)
await runtime.runPromise(Effect.forEach(fibers, Fiber.interrupt, { discard: true }))
await runtime.dispose()
process.exit(0)
