/**
 * 10,000 items through `effect-llm batch --batch-api` against the fake's batch APIs:
 * `npx tsx bench/provider-batch.bench.ts [openai|anthropic|gemini] [items]`. The fake runs in
 * this process; the CLI in its own (through tsx, as the CLI tests run it), its peak resident
 * memory read from /proc (VmHWM) and its wall time measured from spawn to exit. The fake
 * answers each item through its live route, so its time is in the figure too.
 */
import { spawn } from "node:child_process"
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { Effect, Exit, Scope } from "effect"
import * as Testing from "../src/Testing.js"

const api = (process.argv[2] ?? "openai") as "openai" | "anthropic" | "gemini"
const n = Number(process.argv[3] ?? 10_000)
const root = resolve(import.meta.dirname, "..")
const models = { openai: ["gpt-4o-mini", "OPENAI_API_KEY"], anthropic: ["claude-3-5-haiku-latest", "ANTHROPIC_API_KEY"], gemini: ["gemini-2.0-flash", "GEMINI_API_KEY"] } as const

const peakOf = (pid: number): number => {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8")
    return Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024
  } catch {
    return 0
  }
}

const main = async () => {
  const scope = await Effect.runPromise(Scope.make())
  const fake = await Effect.runPromise(Scope.extend(Testing.FakeProvider.make({ record: false, batch: { pollsToComplete: 2 } }), scope))
  const dir = mkdtempSync(join(tmpdir(), "effect-llm-batch-bench-"))
  const input = join(dir, "in.jsonl")
  const out = join(dir, "out.jsonl")
  writeFileSync(input, Array.from({ length: n }, (_, i) => JSON.stringify({ id: `q${i}`, prompt: `prompt number ${i}: say something short` })).join("\n") + "\n")
  const [model, env] = models[api]
  const base = api === "openai" ? fake.baseUrl : api === "gemini" ? `${fake.url}/v1beta` : fake.url
  const started = performance.now()
  const child = spawn(process.execPath, ["--import", "tsx", join(root, "src/cli/bin.ts"), "batch", input, "--out", out, "--batch-api", "--model", model, "--base-url", base, "--poll-interval", "0.2"], {
    cwd: root,
    env: { ...process.env, [env]: "sk-bench" },
    stdio: ["ignore", "pipe", "ignore"]
  })
  let peak = 0
  const timer = setInterval(() => (peak = Math.max(peak, peakOf(child.pid!))), 50)
  let stdout = ""
  child.stdout.on("data", (d) => (stdout += d))
  const code = await new Promise<number | null>((r) => child.on("exit", (c) => r(c)))
  clearInterval(timer)
  const wall = (performance.now() - started) / 1000
  const lines = readFileSync(out, "utf8").split("\n").filter((l) => l.length > 0)
  const outBytes = Buffer.byteLength(readFileSync(out, "utf8"))
  await Effect.runPromise(Scope.close(scope, Exit.void))
  console.log(JSON.stringify({ api, items: n, exit: code, records: lines.length, peakRssMB: +(peak / 1024 / 1024).toFixed(1), outMB: +(outBytes / 1024 / 1024).toFixed(1), wallSeconds: +wall.toFixed(2) }))
  console.log(stdout)
}

void main()
