/**
 * The CLI as the tests run it: `src/cli/bin.ts` bundled once per test process by esbuild (its
 * dependencies left to node_modules), so that each run starts in about a second instead of
 * compiling the sources through tsx every time. The bundle is the same source, built as tsx
 * would build it.
 */
import { buildSync } from "esbuild"
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
