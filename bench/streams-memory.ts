/**
 * One client opening `--streams` streams at once against a slow fake, in its own process:
 * samples `process.memoryUsage().rss` every few milliseconds and prints one JSON line with
 * the RSS before the streams (after a warm-up and a GC) and the peak while they are open.
 *
 *   node --expose-gc --import tsx bench/streams-memory.ts --client effect-llm-full --url http://127.0.0.1:PORT
 */
import { parseArgs } from "node:util"
import { makeClient } from "./clients.js"
import { type ClientName, CLIENTS } from "./workload.js"

const { values } = parseArgs({
  options: {
    client: { type: "string" },
    url: { type: "string" },
    streams: { type: "string", default: "1000" }
  },
  strict: true
})
const client = values.client as ClientName
if (!CLIENTS.includes(client)) throw new Error(`--client must be one of ${CLIENTS.join(", ")}`)
if (values.url === undefined) throw new Error("--url is required")
const streams = Number(values.streams)

const bench = await makeClient[client](values.url, "stream")
// load and JIT the code paths first, so the peak is the streams' and not the modules'
await bench.runBatch(32, 32)
;(globalThis as { gc?: () => void }).gc?.()
const baselineRss = process.memoryUsage().rss
let peakRss = baselineRss
let peakHeapUsed = 0
const sample = () => {
  const usage = process.memoryUsage()
  if (usage.rss > peakRss) peakRss = usage.rss
  if (usage.heapUsed > peakHeapUsed) peakHeapUsed = usage.heapUsed
}
const sampler = setInterval(sample, 5)
const start = performance.now()
await bench.runBatch(streams, streams)
const wallMillis = performance.now() - start
sample()
clearInterval(sampler)
await bench.close()
process.stdout.write(JSON.stringify({ client, streams, baselineRss, peakRss, peakHeapUsed, wallMillis }) + "\n")
