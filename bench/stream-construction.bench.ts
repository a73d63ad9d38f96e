/**
 * A standalone suite (`bench/*.bench.ts` files are run by `npm run bench` after the HTTP
 * suite): what building one Stream costs, for the constructions the request path avoids and
 * the ones it uses instead. No I/O: one tiny stream, run to completion, 32 at a time.
 *
 *   npx tsx bench/stream-construction.bench.ts
 */
import { Channel, Effect, Scope, Stream } from "effect"
import { PerformanceObserver } from "node:perf_hooks"

const element = new Uint8Array(16)
const inner = () => Stream.succeed(element)
const run = <E>(stream: Stream.Stream<Uint8Array, E>) => Stream.runFold(stream, 0, (n) => n + 1)

const pairs: ReadonlyArray<readonly [string, () => Effect.Effect<number>, string, () => Effect.Effect<number>]> = [
  [
    "Stream.unwrap(effect)", () => run(Stream.unwrap(Effect.succeed(inner()))),
    "Channel.unwrap (LanguageModel.stream)", () => run(Stream.fromChannel(Channel.unwrap(Effect.succeed(Stream.toChannel(inner())))))
  ],
  [
    "Stream.unwrapScoped(effect)", () => run(Stream.unwrapScoped(Effect.succeed(inner()))),
    "Channel.acquireUseRelease(Scope.make()) (sendStream)", () =>
      run(Stream.fromChannel(Channel.acquireUseRelease(Scope.make(), () => Stream.toChannel(inner()), (scope, exit) => Scope.close(scope, exit))))
  ],
  [
    "Stream.withSpan(name)", () => run(inner().pipe(Stream.withSpan("bench"))),
    "Stream.withSpan(name, { captureStackTrace: false })", () => run(inner().pipe(Stream.withSpan("bench", { captureStackTrace: false })))
  ]
]

const COUNT = 5000
const perStream = async (make: () => Effect.Effect<number>): Promise<number> => {
  const batch = (n: number) =>
    Effect.runPromise(Effect.forEach(Array.from({ length: n }), () => Effect.suspend(make), { concurrency: 32, discard: true }))
  await batch(1000)
  const start = process.cpuUsage()
  await batch(COUNT)
  const cpu = process.cpuUsage(start)
  return (cpu.user + cpu.system) / COUNT
}

const median = (xs: Array<number>) => xs.sort((x, y) => x - y)[Math.floor(xs.length / 2)]!
const signed = (us: number) => (us >= 0 ? "+" : "-") + Math.abs(us).toFixed(0).padStart(4)
console.log("CPU per stream run to completion, over a plain Stream.succeed run the same way (median of 3 interleaved rounds)\n")
for (const [avoidName, avoid, useName, use] of pairs) {
  const base: Array<number> = []
  const a: Array<number> = []
  const b: Array<number> = []
  for (let round = 0; round < 3; round++) {
    base.push(await perStream(() => run(inner())))
    a.push(await perStream(avoid))
    b.push(await perStream(use))
  }
  const floor = median(base)
  console.log(`  avoided  ${avoidName.padEnd(54)} ${signed(median(a) - floor)} µs`)
  console.log(`  used     ${useName.padEnd(54)} ${signed(median(b) - floor)} µs   (plain run: ${floor.toFixed(0)} µs)\n`)
}

/**
 * The bytes one plain run allocates (the heap's growth over a batch in which no collection
 * ran; a batch that saw one is measured again): Effect's floor for consuming any stream.
 */
const allocatedPerRun = async (make: () => Effect.Effect<number>, runs = 10): Promise<number | undefined> => {
  const gc = (globalThis as { gc?: () => void }).gc
  if (gc === undefined) return undefined
  for (let attempt = 0; attempt < 50; attempt++) {
    let collections = 0
    const observer = new PerformanceObserver((list) => void (collections += list.getEntries().length))
    gc()
    observer.observe({ entryTypes: ["gc"] })
    const before = process.memoryUsage().heapUsed
    for (let i = 0; i < runs; i++) await Effect.runPromise(make())
    const grown = process.memoryUsage().heapUsed - before
    await new Promise((resolve) => setTimeout(resolve, 10))
    observer.disconnect()
    if (collections === 0) return grown / runs
  }
  return undefined
}
const plainBytes = await allocatedPerRun(() => run(inner()))
const effectBytes = await allocatedPerRun(() => Effect.succeed(1))
console.log(
  plainBytes === undefined || effectBytes === undefined
    ? "allocated per plain run: run with node --expose-gc (a collection ran in every batch)"
    : `allocated per plain run (Stream.runFold of Stream.succeed): ${(plainBytes / 1024).toFixed(1)} KB; Effect.runPromise of Effect.succeed: ${(effectBytes / 1024).toFixed(1)} KB`
)
