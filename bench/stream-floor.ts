/**
 * The floor under `bench/stream-heap.ts`: what the Effect primitives a suspended stream is
 * made of retain alone, 1000 of each held open at once, measured as `stream-heap.ts` measures
 * (forked with `Effect.forkDaemon` from `runPromise`, retained heap after a GC). Each waits
 * in an `Effect.async` that never resumes and holds a plain timer, as a read of the body
 * waits with its deadline.
 *
 *   node --expose-gc --import tsx bench/stream-floor.ts [--streams 1000] [--case NAME] [--snapshot FILE]
 *
 * (`--snapshot` with `--case`: a heap snapshot of that case, for `bench/heap-diff.mjs`.)
 */
import { parseArgs } from "node:util"
import { writeHeapSnapshot } from "node:v8"
import { Channel, Chunk, Effect, Exit, Fiber, Scope, Stream } from "effect"

const { values } = parseArgs({
  options: { streams: { type: "string", default: "1000" }, case: { type: "string" }, snapshot: { type: "string" } },
  strict: true
})
const gc = (globalThis as { gc?: () => void }).gc
if (gc === undefined) throw new Error("run with node --expose-gc")
const count = Number(values.streams)

/** A read that never ends, bounded by a plain timer far in the future. */
const waitWithTimer = Effect.async<number>(() => {
  const handle = setTimeout(() => {}, 3_600_000)
  return Effect.sync(() => clearTimeout(handle))
})

const cases: Record<string, () => Effect.Effect<unknown>> = {
  "one fiber waiting in Effect.async": () => waitWithTimer,
  "one fiber + a Scope with one finalizer": () =>
    Effect.flatMap(Scope.make(), (scope) =>
      Effect.zipRight(Scope.addFinalizer(scope, Effect.void), Effect.ensuring(waitWithTimer, Scope.close(scope, Exit.void)))),
  "Stream.runDrain(Stream.fromEffect(async))": () => Stream.runDrain(Stream.fromEffect(waitWithTimer)),
  "Stream.runDrain(Stream.repeatEffectChunkOption(async))": () =>
    Stream.runDrain(Stream.repeatEffectChunkOption(Effect.map(waitWithTimer, Chunk.of))),
  "Stream.runDrain(Stream.fromChannel(Channel.acquireUseRelease(Scope, fromEffect(async))))": () =>
    Stream.runDrain(Stream.fromChannel(Channel.acquireUseRelease(
      Scope.make(),
      () => Channel.flatMap(Channel.fromEffect(waitWithTimer), () => Channel.void),
      (scope, exit) => Scope.close(scope, exit)
    ))),
  "Stream.runDrain(Stream.asyncPush)": () =>
    Stream.runDrain(Stream.asyncPush<number>(() =>
      Effect.acquireRelease(Effect.sync(() => setTimeout(() => {}, 3_600_000)), (handle) => Effect.sync(() => clearTimeout(handle)))))
}

for (const [name, make] of Object.entries(cases)) {
  if (values.case !== undefined && !name.includes(values.case)) continue
  await Effect.runPromise(Effect.void)
  gc()
  gc()
  const before = process.memoryUsage().heapUsed
  const fibers = await Effect.runPromise(Effect.forEach(Array.from({ length: count }), () => Effect.forkDaemon(make())))
  await new Promise((resolve) => setTimeout(resolve, 200))
  gc()
  gc()
  const retained = process.memoryUsage().heapUsed - before
  console.log(`${(retained / count / 1024).toFixed(1).padStart(5)} KB each: ${name}`)
  if (values.snapshot !== undefined) writeHeapSnapshot(values.snapshot)
  await Effect.runPromise(Effect.forEach(fibers, Fiber.interrupt, { discard: true }))
}
