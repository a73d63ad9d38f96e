/**
 * Cold import of the built package: `npm run bench:import` (also part of `npm run bench`).
 *
 * Builds `dist/` (skip with `--no-build`), then times fresh `node -e 'import(…)'` processes,
 * interleaved round by round so that the machine's load hits every case alike:
 * - `baseline`: `effect` plus `@effect/platform-node/NodeHttpClient`, what any Effect app
 *   that calls HTTP loads anyway;
 * - `effect-llm`: resolved by name through the package's own `exports` (a package may
 *   import itself by name from inside its folder), so it loads `dist/esm/index.js`;
 * - `effect-llm without Testing`: `dist/esm/index.js` minus its `Testing` line, i.e. the index
 *   once the fake server has left it (the same as `effect-llm` when it already has);
 * - `effect-llm/Redis`, `effect-llm/Testing`, `effect-llm/Mcp`: what the subpaths add, for
 *   information; and `effect-llm/Mcp` with the MCP SDK's client, which its first `connect` imports.
 * For each: the median wall time of the process, the median time of the `import()` inside
 * it, the median CPU time (user + system) of the process, and the median max RSS; then the
 * ratios to the baseline (goal: at most 1.1 in wall time and RSS), and which packages from
 * node_modules each one loads. On a busy machine the CPU time is the steadier measure.
 *
 *   npm run bench:import -- --rounds 15 [--no-build] [--compare bench/.build/dist-old]
 *
 * `--compare DIR` also measures another build's `index.js` (say, `dist/esm/` of an earlier commit
 * copied into the repository so that it resolves the same node_modules), for a before and
 * after in one run.
 */
import { spawn, spawnSync } from "node:child_process"
import { mkdirSync, readFileSync, writeFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"
import { parseArgs } from "node:util"

const root = join(dirname(fileURLToPath(import.meta.url)), "..")
const { values } = parseArgs({
  options: {
    rounds: { type: "string", default: "15" },
    "no-build": { type: "boolean", default: false },
    compare: { type: "string" }
  },
  strict: true
})
const rounds = Number(values.rounds)

if (!values["no-build"]) {
  const build = spawnSync("npm", ["run", "build"], { cwd: root, stdio: ["ignore", "ignore", "inherit"] })
  if (build.status !== 0) throw new Error("npm run build failed")
}

// the index without Testing, as a file beside the build that imports dist/ by absolute URL
const work = join(root, "bench", ".build", "import")
mkdirSync(work, { recursive: true })
const dist = pathToFileURL(join(root, "dist", "esm") + "/").href
const withoutTesting = join(work, "index-without-testing.mjs")
writeFileSync(
  withoutTesting,
  readFileSync(join(root, "dist", "esm", "index.js"), "utf8")
    .split("\n")
    .filter((line) => !/\bas Testing\b/.test(line) && !line.startsWith("//# sourceMappingURL"))
    .map((line) => line.replace(/from "\.\/([^"]+)"/, (_, file: string) => `from "${dist}${file}"`))
    .join("\n")
)

interface Case {
  readonly name: string
  readonly specifiers: ReadonlyArray<string>
  /** Counted in the ratios. */
  readonly compared: boolean
}
const exported = Object.keys((JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { exports: object }).exports)
const cases: ReadonlyArray<Case> = ([
  { name: "baseline: effect + NodeHttpClient", specifiers: ["effect", "@effect/platform-node/NodeHttpClient"], compared: false },
  { name: "effect-llm", specifiers: ["effect-llm"], compared: true },
  { name: "effect-llm without Testing", specifiers: [pathToFileURL(withoutTesting).href], compared: true },
  { name: "effect-llm/Redis", specifiers: ["effect-llm/Redis"], compared: false },
  { name: "effect-llm/Testing", specifiers: ["effect-llm/Testing"], compared: false },
  { name: "effect-llm/Mcp", specifiers: ["effect-llm/Mcp"], compared: false },
  // what the first Mcp.connect adds: the SDK's client side, imported then
  {
    name: "effect-llm/Mcp + the MCP SDK client",
    specifiers: ["effect-llm/Mcp", ...["index", "stdio", "streamableHttp"].map((m) => `@modelcontextprotocol/sdk/client/${m}.js`)],
    compared: false
  },
  ...(values.compare === undefined
    ? []
    : [{ name: `compare: ${values.compare}`, specifiers: [pathToFileURL(join(root, values.compare, "index.js")).href], compared: false }])
] satisfies ReadonlyArray<Case>).filter((c) => !c.specifiers[0]!.startsWith("effect-llm/") || exported.includes("." + c.specifiers[0]!.slice(10)))

interface Sample {
  readonly wallMs: number
  readonly importMs: number
  readonly cpuMs: number
  readonly rssMb: number
}

// CommonJS `-e`, as `node -e 'import("effect-llm")'` is; reports after the imports settle
const script = (specifiers: ReadonlyArray<string>) =>
  `const t0 = performance.now();` +
  `Promise.all(${JSON.stringify(specifiers)}.map((s) => import(s))).then(() => {` +
  `const u = process.resourceUsage();` +
  `process.stdout.write(JSON.stringify({ importMs: performance.now() - t0, cpuUs: u.userCPUTime + u.systemCPUTime, rssKb: u.maxRSS }))` +
  `})`

const once = (c: Case, extra: ReadonlyArray<string> = []) =>
  new Promise<{ readonly wallMs: number; readonly stdout: string; readonly stderr: string }>((resolve, reject) => {
    const start = performance.now()
    // cwd is the package, so that "effect-llm" resolves to itself through `exports`
    const child = spawn(process.execPath, [...extra, "-e", script(c.specifiers)], { cwd: root, stdio: ["ignore", "pipe", "pipe"] })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (d) => (stdout += d))
    child.stderr.on("data", (d) => (stderr += d))
    child.on("error", reject)
    child.on("close", (code) => {
      const wallMs = performance.now() - start
      if (code !== 0) reject(new Error(`${c.name} exited with ${code}: ${stderr}`))
      else resolve({ wallMs, stdout, stderr })
    })
  })

const sample = async (c: Case): Promise<Sample> => {
  const { stdout, wallMs } = await once(c)
  const { importMs, cpuUs, rssKb } = JSON.parse(stdout) as { importMs: number; cpuUs: number; rssKb: number }
  return { wallMs, importMs, cpuMs: cpuUs / 1000, rssMb: rssKb / 1024 }
}

// Which packages a case loads: a resolve hook that prints each node_modules package it meets.
const hook = join(work, "packages-hook.mjs")
writeFileSync(
  hook,
  `export async function resolve(specifier, context, next) {
  const r = await next(specifier, context)
  const m = /node_modules\\/((?:@[^/]+\\/)?[^/]+)\\//.exec(r.url)
  if (m) process.stderr.write("PKG " + m[1] + "\\n")
  return r
}\n`
)
const register = join(work, "packages-register.mjs")
writeFileSync(register, `import { register } from "node:module"\nregister(${JSON.stringify(pathToFileURL(hook).href)})\n`)
const packagesOf = async (c: Case) => {
  const { stderr } = await once(c, ["--import", pathToFileURL(register).href])
  const found = new Set(stderr.split("\n").filter((l) => l.startsWith("PKG ")).map((l) => l.slice(4)))
  return [...found].sort()
}

const median = (xs: ReadonlyArray<number>) => {
  const s = [...xs].sort((a, b) => a - b)
  const mid = s.length >> 1
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
}

const samples = new Map<string, Array<Sample>>(cases.map((c) => [c.name, []]))
// one warm-up round (disk cache), not counted
for (const c of cases) await sample(c)
for (let round = 0; round < rounds; round++) {
  for (const c of cases) samples.get(c.name)!.push(await sample(c))
}

const medians = new Map(cases.map((c) => {
  const s = samples.get(c.name)!
  return [c.name, {
    wallMs: median(s.map((x) => x.wallMs)),
    importMs: median(s.map((x) => x.importMs)),
    cpuMs: median(s.map((x) => x.cpuMs)),
    rssMb: median(s.map((x) => x.rssMb))
  }]
}))
const base = medians.get(cases[0]!.name)!

console.log(`cold import, node ${process.version}, median of ${rounds} fresh processes each (interleaved)`)
console.log(
  `${"".padEnd(36)} ${"wall ms".padStart(8)} ${"import ms".padStart(10)} ${"CPU ms".padStart(7)} ${"max RSS MB".padStart(11)}` +
    ` ${"wall ×".padStart(7)} ${"CPU ×".padStart(6)} ${"RSS ×".padStart(6)}`
)
let ok = true
for (const c of cases) {
  const m = medians.get(c.name)!
  const wall = m.wallMs / base.wallMs
  const rss = m.rssMb / base.rssMb
  if (c.compared) ok &&= wall <= 1.1 && rss <= 1.1
  console.log(
    `${c.name.padEnd(36)} ${m.wallMs.toFixed(0).padStart(8)} ${m.importMs.toFixed(0).padStart(10)} ${m.cpuMs.toFixed(0).padStart(7)}` +
      ` ${m.rssMb.toFixed(1).padStart(11)} ${wall.toFixed(2).padStart(7)} ${(m.cpuMs / base.cpuMs).toFixed(2).padStart(6)} ${rss.toFixed(2).padStart(6)}`
  )
}
console.log(`goal: effect-llm at most 1.1× the baseline in wall time and max RSS: ${ok ? "ok" : "FAIL"}`)

console.log("\npackages loaded (beyond effect and @effect/platform):")
const common = new Set(["effect", "@effect/platform"])
for (const c of cases) {
  const pkgs = (await packagesOf(c)).filter((p) => !common.has(p))
  console.log(`  ${c.name.padEnd(34)} ${pkgs.join(", ") || "(none)"}`)
}
