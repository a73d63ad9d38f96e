/**
 * Which packages from node_modules a fresh process loads, stage by stage: what importing a
 * module costs every user, and what only using a feature costs. The script runs as an ES
 * module under tsx, with a resolve hook that logs every module it resolves; `mark(name)`
 * starts a stage. Hook and script append to one log file synchronously, so that the order
 * is real time (the hooks run on a thread of their own).
 */
import { execFile } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..")

/** `import("<src>/X.ts")` inside a script: the source module, by absolute URL. */
export const src = (module: string): string => pathToFileURL(join(root, "src", module)).href

const hook = `import { appendFileSync } from "node:fs"
export async function resolve(specifier, context, next) {
  const resolved = await next(specifier, context)
  const m = /\\/node_modules\\/((?:@[^/]+\\/)?[^/]+)\\/(.*)$/.exec(resolved.url)
  if (m) appendFileSync(process.env.LOADED_LOG, "PKG " + m[1] + " " + m[2] + "\\n")
  return resolved
}
`

/**
 * Runs `script` (a module body that may `await`, and calls `mark("stage")`); resolves to
 * the packages first loaded in each stage, as `package` or `package/path` entries.
 */
export const loadedPackages = async (script: string): Promise<Map<string, ReadonlyArray<string>>> => {
  const dir = mkdtempSync(join(tmpdir(), "loaded-"))
  try {
    const log = join(dir, "log")
    writeFileSync(log, "")
    writeFileSync(join(dir, "hook.mjs"), hook)
    writeFileSync(
      join(dir, "register.mjs"),
      `import { register } from "node:module"\nregister(${JSON.stringify(pathToFileURL(join(dir, "hook.mjs")).href)})\n`
    )
    // require() does not pass the resolve hook: what it loaded is read from the CommonJS cache at each mark
    const body = `import { appendFileSync } from "node:fs"
import { createRequire } from "node:module"
const required = createRequire(import.meta.url).cache
const logged = new Set()
const flush = () => {
  for (const file of Object.keys(required)) {
    if (logged.has(file)) continue
    logged.add(file)
    const m = /[\\\\/]node_modules[\\\\/]((?:@[^\\\\/]+[\\\\/])?[^\\\\/]+)[\\\\/](.*)$/.exec(file)
    if (m) appendFileSync(process.env.LOADED_LOG, "PKG " + m[1].replace(/\\\\/g, "/") + " " + m[2].replace(/\\\\/g, "/") + "\\n")
  }
}
const mark = (stage) => {
  flush()
  appendFileSync(process.env.LOADED_LOG, "STAGE " + stage + "\\n")
}
${script}
flush()`
    await new Promise<void>((resolve, reject) =>
      execFile(
        process.execPath,
        ["--import", "tsx", "--import", pathToFileURL(join(dir, "register.mjs")).href, "--input-type=module", "-e", body],
        { cwd: root, env: { ...process.env, LOADED_LOG: log }, timeout: 60_000 },
        (error, _stdout, stderr) => (error ? reject(new Error(`${error.message}\n${stderr}`)) : resolve())
      )
    )
    const stages = new Map<string, Array<string>>()
    const seen = new Set<string>()
    let current: Array<string> = []
    stages.set("", current)
    for (const line of readFileSync(log, "utf8").split("\n")) {
      if (line.startsWith("STAGE ")) {
        current = []
        stages.set(line.slice(6), current)
      } else if (line.startsWith("PKG ")) {
        const [name, path] = line.slice(4).split(" ") as [string, string]
        for (const entry of [name, `${name}/${path}`]) {
          if (!seen.has(entry)) {
            seen.add(entry)
            current.push(entry)
          }
        }
      }
    }
    return stages
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
