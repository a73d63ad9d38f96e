/**
 * `npm run bench`: the HTTP suite, then every bench/*.bench.ts.
 *
 * The HTTP suite starts `Testing.FakeProvider` in its own process (bench/fake-server.ts),
 * then measures client CPU per request for four clients, on JSON replies and on 64-chunk
 * streams, at concurrency 32. Each (client, mode) runs in a fresh process (bench/client.ts),
 * and the rounds are interleaved — round 1 of every client, then round 2, … — so that a
 * change in the machine's load hits every client alike; the table shows each one's median.
 *
 * The defaults are the performance issue's method: 4000 measured requests after a
 * 2000-request warm-up, two interleaved rounds, concurrency 32.
 *
 *   npm run bench -- --rounds 2 --requests 4000 --warmup 2000 --concurrency 32
 */
import { type ChildProcess, spawn } from "node:child_process"
import { readdirSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { parseArgs } from "node:util"
import { compile } from "./build.js"
import { CHUNKS, type ClientName, CLIENTS, type Measurement, type Mode, MODES } from "./workload.js"

const root = join(dirname(fileURLToPath(import.meta.url)), "..")

const { values } = parseArgs({
  options: {
    rounds: { type: "string", default: "2" },
    requests: { type: "string", default: "4000" },
    /** Enough for the JIT to settle: with 400, raw undici still measures ~2× its steady cost. */
    warmup: { type: "string", default: "2000" },
    /** While iterating on one client: e.g. `--clients undici,effect-llm --modes stream`. */
    clients: { type: "string", default: CLIENTS.join(",") },
    modes: { type: "string", default: MODES.join(",") },
    concurrency: { type: "string", default: "32" },
    /** Skip the standalone bench/*.bench.ts suites. */
    "http-only": { type: "boolean", default: false }
  },
  strict: true
})
const rounds = Number(values.rounds)
const clients = CLIENTS.filter((c) => values.clients.split(",").includes(c))
const modes = MODES.filter((m) => values.modes.split(",").includes(m))
if (!clients.includes("undici")) throw new Error("--clients must include undici: every ratio is to it")

/** Runs a TypeScript file in a fresh node with tsx (or a compiled `.mjs` without); resolves to its stdout. */
const runTs = (file: string, args: ReadonlyArray<string>, inherit = false): Promise<string> =>
  new Promise((resolve, reject) => {
    const loader = file.endsWith(".mjs") ? [] : ["--import", "tsx"]
    const child = spawn(process.execPath, ["--expose-gc", ...loader, file, ...args], {
      cwd: root,
      stdio: ["ignore", inherit ? "inherit" : "pipe", "inherit"]
    })
    let out = ""
    child.stdout?.on("data", (piece: Buffer) => (out += piece.toString("utf8")))
    child.once("error", reject)
    child.once("exit", (code) => (code === 0 ? resolve(out) : reject(new Error(`${file} ${args.join(" ")} exited with ${code}`))))
  })

const startFakeServer = (): Promise<{ url: string; child: ChildProcess }> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", "bench/fake-server.ts"], { cwd: root, stdio: ["ignore", "pipe", "inherit"] })
    let out = ""
    child.stdout!.on("data", (piece: Buffer) => {
      out += piece.toString("utf8")
      const newline = out.indexOf("\n")
      if (newline >= 0) resolve({ url: (JSON.parse(out.slice(0, newline)) as { url: string }).url, child })
    })
    child.once("error", reject)
    child.once("exit", (code) => reject(new Error(`the fake server exited with ${code}`)))
  })

const median = (xs: ReadonlyArray<number>) => {
  const sorted = [...xs].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

const httpSuite = async () => {
  const clientFile = await compile("client")
  const { url, child: server } = await startFakeServer()
  const results = new Map<string, Array<Measurement>>()
  try {
    console.log(
      `HTTP suite: ${CHUNKS}-chunk streams and JSON, concurrency ${values.concurrency}, ` +
        `${values.requests} measured requests after ${values.warmup} warm-up, ${rounds} interleaved rounds, ` +
        `node ${process.version}, fake server in its own process at ${url}\n`
    )
    for (let round = 1; round <= rounds; round++) {
      for (const mode of modes) {
        for (const client of clients) {
          const out = await runTs(clientFile, [
            "--client", client, "--mode", mode, "--url", url,
            "--warmup", values.warmup, "--requests", values.requests, "--concurrency", values.concurrency
          ])
          const measurement = JSON.parse(out.trim().split("\n").pop()!) as Measurement
          const key = `${mode}/${client}`
          results.set(key, [...(results.get(key) ?? []), measurement])
          console.log(`  round ${round}  ${mode.padEnd(6)} ${client.padEnd(15)} ${measurement.cpuMicrosPerRequest.toFixed(0).padStart(6)} µs CPU/request`)
        }
      }
    }
  } finally {
    server.kill("SIGTERM")
  }

  const cpu = (mode: Mode, client: ClientName) => median(results.get(`${mode}/${client}`)!.map((m) => m.cpuMicrosPerRequest))
  const ratio = (us: number, mode: Mode, to: ClientName) => (clients.includes(to) ? (us / cpu(mode, to)).toFixed(2) : "-")
  const rows = [["mode", "client", "µs CPU/request", "× undici", "× openai-sdk", "× ai-sdk", "× effect-platform", "requests/s"]]
  for (const mode of modes) {
    for (const client of clients) {
      const us = cpu(mode, client)
      const wall = median(results.get(`${mode}/${client}`)!.map((m) => m.requests / (m.wallMillis / 1000)))
      rows.push([
        mode,
        client,
        us.toFixed(0),
        ratio(us, mode, "undici"),
        ratio(us, mode, "openai-sdk"),
        ratio(us, mode, "ai-sdk"),
        ratio(us, mode, "effect-platform"),
        wall.toFixed(0)
      ])
    }
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)))
  console.log("\nmedian of the rounds; CPU is user + system of the client process (process.cpuUsage)\n")
  for (const [i, row] of rows.entries()) {
    console.log("| " + row.map((cell, j) => (j < 2 ? cell.padEnd(widths[j]!) : cell.padStart(widths[j]!))).join(" | ") + " |")
    if (i === 0) console.log("|" + widths.map((w, j) => (j < 2 ? "-".repeat(w + 2) : "-".repeat(w + 1) + ":")).join("|") + "|")
  }

  // the targets (issue: performance): the full stack on Transport.layerUndici against raw undici
  // and the openai SDK, and the full stack on the HttpClient path against Effect's own floor
  const verdict = (ok: boolean) => (ok ? "met" : "MISSED")
  const have = (...names: ReadonlyArray<ClientName>) => names.every((name) => clients.includes(name))
  console.log("\ntargets (the full stack: pool + limiter + retry + usage, default deadlines on):")
  for (const mode of modes) {
    if (have("effect-llm-full")) {
      const ours = cpu(mode, "effect-llm-full")
      const toRaw = ours / cpu(mode, "undici")
      const rawLimit = mode === "json" ? 3 : 4
      let line = `  ${mode.padEnd(6)} Transport.layerUndici: ≤ ${rawLimit}× raw undici ${verdict(toRaw <= rawLimit)} (${toRaw.toFixed(2)}×)`
      if (mode === "stream" && have("openai-sdk")) {
        const toSdk = ours / cpu(mode, "openai-sdk")
        line += `; ≤ 0.5× the openai SDK ${verdict(toSdk <= 0.5)} (${toSdk.toFixed(2)}×)`
      }
      if (have("effect-undici")) line += `; the floor of any Effect client (raw undici in one Effect.promise, a fiber per request) is ${(cpu(mode, "effect-undici") / cpu(mode, "undici")).toFixed(2)}× raw undici`
      if (have("effect-platform")) line += `; Effect's HttpClient with hand parsing is ${(cpu(mode, "effect-platform") / cpu(mode, "undici")).toFixed(2)}× raw undici`
      console.log(line)
    }
    if (have("effect-llm-full-httpclient", "effect-platform")) {
      const toFloor = cpu(mode, "effect-llm-full-httpclient") / cpu(mode, "effect-platform")
      console.log(`  ${mode.padEnd(6)} NodeHttpClient.layerUndici: ≤ 1.5× Effect's floor ${verdict(toFloor <= 1.5)} (${toFloor.toFixed(2)}×)`)
    }
  }
}

await httpSuite()

// Every bench/*.bench.ts is a standalone suite; each runs in turn, its output passed through.
if (!values["http-only"]) {
  for (const file of readdirSync(join(root, "bench")).filter((f) => f.endsWith(".bench.ts")).sort()) {
    console.log(`\n== bench/${file}\n`)
    await runTs(join("bench", file), [], true)
  }
}
