/**
 * The CLI as the tests run it: `src/cli/bin.ts` bundled once per test process by esbuild (its
 * dependencies left to node_modules), so that each run starts in about a second instead of
 * compiling the sources through tsx every time. The bundle is the same source, built as tsx
 * would build it.
 */
import { buildSync } from "esbuild"
import { type ChildProcess, spawn } from "node:child_process"
import { mkdirSync, mkdtempSync, rmSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..")
let built: string | undefined

/** The arguments of `node` that run the CLI: `[...cliCommand(), "chat", "hi"]`. */
export const cliCommand = (): ReadonlyArray<string> => {
  if (built === undefined) {
    // inside the project, so that the bundle's imports resolve from its node_modules
    const cache = join(root, "node_modules", ".cache", "effect-llm-cli")
    mkdirSync(cache, { recursive: true })
    const dir = mkdtempSync(join(cache, "bin-"))
    process.on("exit", () => rmSync(dir, { recursive: true, force: true }))
    const file = join(dir, "bin.mjs")
    buildSync({ entryPoints: [join(root, "src", "cli", "bin.ts")], bundle: true, platform: "node", format: "esm", packages: "external", outfile: file, logLevel: "warning" })
    built = file
  }
  return [built]
}

export interface Run {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/**
 * The CLI as a process in the project folder, with `env` over this process's environment (the
 * OpenAI key variables of the machine left out): the child, and its exit code and output.
 */
export const startCli = (args: ReadonlyArray<string>, env: Record<string, string> = {}): { child: ChildProcess; done: Promise<Run> } => {
  const childEnv: Record<string, string | undefined> = { ...process.env }
  delete childEnv.OPENAI_API_KEY
  delete childEnv.OPENAI_API_KEYS
  Object.assign(childEnv, env)
  const child = spawn(process.execPath, [...cliCommand(), ...args], { cwd: root, env: childEnv })
  let stdout = ""
  let stderr = ""
  child.stdout!.on("data", (d) => (stdout += d))
  child.stderr!.on("data", (d) => (stderr += d))
  const done = new Promise<Run>((resolveRun) => child.on("close", (code) => resolveRun({ code, stdout, stderr })))
  return { child, done }
}
