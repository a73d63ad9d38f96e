/**
 * One client, one mode, in its own process (so no client inherits another's JIT or GC
 * state): warms up, collects garbage, then measures process CPU over a fixed number of
 * requests. Prints one `Measurement` as a JSON line.
 *
 *   node --expose-gc --import tsx bench/client.ts --client effect-llm --mode stream --url http://127.0.0.1:PORT
 *
 * `--profile FILE.cpuprofile` writes a V8 CPU profile of the measured requests only (unlike
 * `node --cpu-prof`, which also profiles start-up and the TypeScript loader). `--allocations
 * FILE.heapprofile` writes a sampling profile of what the measured requests allocate, collected
 * or not (what the garbage collector works through), to read with `bench/allocsum.mjs`.
 */
import { writeFileSync } from "node:fs"
import { Session } from "node:inspector/promises"
import { parseArgs } from "node:util"
import { makeClient } from "./clients.js"
import { type ClientName, CLIENTS, type Measurement, type Mode, MODES } from "./workload.js"

const { values } = parseArgs({
  options: {
    client: { type: "string" },
    mode: { type: "string" },
    url: { type: "string" },
    warmup: { type: "string", default: "200" },
    requests: { type: "string", default: "1000" },
    concurrency: { type: "string", default: "32" },
    profile: { type: "string" },
    allocations: { type: "string" }
  },
  strict: true
})

const client = values.client as ClientName
const mode = values.mode as Mode
if (!CLIENTS.includes(client)) throw new Error(`--client must be one of ${CLIENTS.join(", ")}`)
if (!MODES.includes(mode)) throw new Error(`--mode must be one of ${MODES.join(", ")}`)
if (values.url === undefined) throw new Error("--url is required")
const positive = (name: string, text: string) => {
  const n = Number(text)
  if (!Number.isInteger(n) || n <= 0) throw new Error(`--${name} must be a positive integer, got ${text}`)
  return n
}
const warmup = positive("warmup", values.warmup)
const requests = positive("requests", values.requests)
const concurrency = positive("concurrency", values.concurrency)

const bench = await makeClient[client](values.url, mode)
await bench.runBatch(warmup, concurrency)
;(globalThis as { gc?: () => void }).gc?.()
const profiler = values.profile === undefined ? undefined : new Session()
if (profiler !== undefined) {
  profiler.connect()
  await profiler.post("Profiler.enable")
  await profiler.post("Profiler.start")
}
const allocations = values.allocations === undefined ? undefined : new Session()
if (allocations !== undefined) {
  allocations.connect()
  await allocations.post("HeapProfiler.enable")
  await allocations.post("HeapProfiler.startSampling", { samplingInterval: 1024, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true })
}
const startCpu = process.cpuUsage()
const startWall = performance.now()
await bench.runBatch(requests, concurrency)
const cpu = process.cpuUsage(startCpu)
const wallMillis = performance.now() - startWall
if (profiler !== undefined) {
  const { profile } = await profiler.post("Profiler.stop")
  writeFileSync(values.profile!, JSON.stringify(profile))
  profiler.disconnect()
}
if (allocations !== undefined) {
  const { profile } = await allocations.post("HeapProfiler.stopSampling")
  writeFileSync(values.allocations!, JSON.stringify(profile))
  allocations.disconnect()
}
await bench.close()

const measurement: Measurement = {
  client,
  mode,
  requests,
  concurrency,
  cpuMicrosPerRequest: (cpu.user + cpu.system) / requests,
  userMicrosPerRequest: cpu.user / requests,
  systemMicrosPerRequest: cpu.system / requests,
  wallMillis
}
process.stdout.write(JSON.stringify(measurement) + "\n")
