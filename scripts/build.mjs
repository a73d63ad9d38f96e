// The package build: `dist/esm` (tsc: ES modules, declarations, source maps) and `dist/cjs`
// (esbuild, file by file: CommonJS for `require("effect-llm")` on Node 20, with the same
// declarations read as CommonJS ones beside it). The CLI is ESM only.
import { spawnSync } from "node:child_process"
import { cpSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { createRequire } from "node:module"
import { dirname, join, relative } from "node:path"
import { fileURLToPath } from "node:url"
import * as esbuild from "esbuild"

const root = join(dirname(fileURLToPath(import.meta.url)), "..")
const dist = join(root, "dist")
const isCli = (path) => relative(join(root, "src"), path).split(/[\\/]/)[0] === "cli"
const walk = (dir) => readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)]))

rmSync(dist, { recursive: true, force: true })

const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc")
const typed = spawnSync(process.execPath, [tsc, "-p", join(root, "tsconfig.build.json")], { stdio: "inherit" })
if (typed.status !== 0) process.exit(typed.status ?? 1)

// A module's overview is the `/** … @since … */` comment that opens its file. tsc keeps it only
// when the first statement survives into the declarations: an import used by values alone is
// elided, and the overview with it (the IDE then shows none). Put back each one that was lost.
const overviewOf = (text) => /^\/\*\*[\s\S]*?\*\//.exec(text)?.[0]
for (const file of walk(join(root, "src")).filter((f) => f.endsWith(".ts") && !isCli(f))) {
  const overview = overviewOf(readFileSync(file, "utf8"))
  if (overview === undefined || !overview.includes("@since")) continue
  const declarations = join(dist, "esm", relative(join(root, "src"), file)).replace(/\.ts$/, ".d.ts")
  const text = readFileSync(declarations, "utf8")
  if (!text.startsWith(overview)) writeFileSync(declarations, `${overview}\n${text}`)
}

await esbuild.build({
  entryPoints: walk(join(root, "src")).filter((f) => f.endsWith(".ts") && !isCli(f)),
  outbase: join(root, "src"),
  outdir: join(dist, "cjs"),
  format: "cjs",
  platform: "node",
  target: "node20",
  sourcemap: true,
  logLevel: "warning",
  // internal/redis/ioredis.ts reads import.meta.url only where there is no `require`, which is never in CommonJS
  logOverride: { "empty-import-meta": "silent" }
})
writeFileSync(join(dist, "cjs", "package.json"), JSON.stringify({ type: "commonjs", sideEffects: [] }, null, 2) + "\n")
// the same declarations, read as CommonJS ones under dist/cjs's package.json
const esm = join(dist, "esm")
for (const file of walk(esm)) {
  if (file.endsWith(".d.ts") && !isCli(join(root, "src", relative(esm, file)))) cpSync(file, join(dist, "cjs", relative(esm, file)))
}
