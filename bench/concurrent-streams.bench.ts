/**
 * 1000 streams open at once, one process per client: the peak RSS of the client process
 * while they are open, next to raw undici and the SDKs doing the same (the target: the full
 * stack adds at most half what the openai SDK adds). The fake spaces its 64 chunks 20 ms
 * apart, so every stream is open for over a second and they all overlap. Then
 * `bench/stream-heap.ts`: the heap one open stream of the full stack retains (target ≤ 15 KB).
 *
 *   npx tsx bench/concurrent-streams.bench.ts [--streams 1000] [--clients undici,effect-llm-full]
 */
import { spawn } from "node:child_process"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { parseArgs } from "node:util"
import { compile } from "./build.js"
import { type ClientName, CLIENTS } from "./workload.js"

const root = join(dirname(fileURLToPath(import.meta.url)), "..")
const { values } = parseArgs({
  options: {
    streams: { type: "string", default: "1000" },
    clients: { type: "string", default: "undici,effect-llm-full,effect-llm-full-httpclient,openai-sdk,ai-sdk" },
    "chunk-delay-ms": { type: "string", default: "20" }
  },
  strict: true
})
const clients = CLIENTS.filter((c) => values.clients.split(",").includes(c))

const run = (args: ReadonlyArray<string>, onLine?: (line: string) => void): Promise<string> =>
  new Promise((resolve, reject) => {
    const loader = args[0]!.endsWith(".mjs") ? [] : ["--import", "tsx"]
    const child = spawn(process.execPath, ["--expose-gc", ...loader, ...args], { cwd: root, stdio: ["ignore", "pipe", "inherit"] })
    let out = ""
    child.stdout.on("data", (piece: Buffer) => {
      out += piece.toString("utf8")
      if (onLine !== undefined && out.includes("\n")) onLine(out.slice(0, out.indexOf("\n")))
    })
    child.once("error", reject)
    child.once("exit", (code) => (code === 0 || onLine !== undefined ? resolve(out) : reject(new Error(`${args.join(" ")} exited with ${code}`))))
    if (onLine !== undefined) process.once("exit", () => child.kill("SIGTERM"))
  })

const url = await new Promise<string>((resolve) => {
  void run(["bench/fake-server.ts", "--chunk-delay-ms", values["chunk-delay-ms"]], (line) => resolve((JSON.parse(line) as { url: string }).url))
})

const memoryFile = await compile("streams-memory")
const mb = (bytes: number) => (bytes / 1024 / 1024).toFixed(1)
console.log(`${values.streams} concurrent 64-chunk streams (chunks ${values["chunk-delay-ms"]} ms apart), one process per client\n`)
const rows: Array<Array<string>> = [["client", "RSS before (MB)", "peak RSS (MB)", "peak − before (MB)", "peak heap used (MB)", "wall (ms)"]]
const measured = new Map<ClientName, { baselineRss: number; peakRss: number }>()
for (const client of clients) {
  const out = await run([memoryFile, "--client", client, "--url", url, "--streams", values.streams])
  const m = JSON.parse(out.trim().split("\n").pop()!) as { baselineRss: number; peakRss: number; peakHeapUsed: number; wallMillis: number }
  measured.set(client, m)
  rows.push([client, mb(m.baselineRss), mb(m.peakRss), mb(m.peakRss - m.baselineRss), mb(m.peakHeapUsed), m.wallMillis.toFixed(0)])
}
const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)))
for (const [i, row] of rows.entries()) {
  console.log("| " + row.map((cell, j) => (j === 0 ? cell.padEnd(widths[j]!) : cell.padStart(widths[j]!))).join(" | ") + " |")
  if (i === 0) console.log("|" + widths.map((w, j) => (j === 0 ? "-".repeat(w + 2) : "-".repeat(w + 1) + ":")).join("|") + "|")
}
const added = (client: ClientName) => {
  const m = measured.get(client)
  return m === undefined ? undefined : m.peakRss - m.baselineRss
}
const sdk = added("openai-sdk")
for (const client of ["effect-llm-full", "effect-llm-full-httpclient"] as const) {
  const ours = added(client)
  if (ours === undefined || sdk === undefined) continue
  console.log(
    `\ntarget: ${client} adds at most half the openai SDK's memory: ${ours <= sdk / 2 ? "met" : "MISSED"} ` +
      `(+${mb(ours)} MB against +${mb(sdk)} MB, ${(ours / sdk).toFixed(2)}×)`
  )
}

// what one open stream retains, measured on the heap (no RSS noise)
// compiled, as the clients run: under tsx every closure of ours carries a `__name` property
const heapFile = await compile("stream-heap")
const heap = await run([heapFile, "--streams", values.streams])
// Effect's floor in the same harness: a stream that holds a scope and waits in one Effect.async, drained by Stream.runDrain
const floor = await run([heapFile, "--streams", values.streams, "--stack", "floor"])
const perStream = /([\d.]+) KB each/.exec(heap)
const floorPerStream = /([\d.]+) KB each/.exec(floor)
console.log(`\n${heap.trim()}\n${floor.trim()} (Effect's floor: Stream.runDrain of a stream that only waits)`)
if (perStream !== null) {
  console.log(
    `target: ≤ 15 KB retained per open stream: ${Number(perStream[1]) <= 15 ? "met" : "MISSED"} (${perStream[1]} KB` +
      (floorPerStream === null ? ")" : `; Effect's floor alone ${floorPerStream[1]} KB)`)
  )
}
process.exit(0)
