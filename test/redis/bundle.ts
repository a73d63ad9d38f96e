/**
 * A worker script bundled once into one ES module, so that each worker process starts in
 * well under a second (tsx would compile the library in every process, seconds each on a
 * busy machine). The bundle is the same source, built by esbuild as tsx would.
 */
import { mkdirSync, mkdtempSync, rmSync } from "node:fs"
import { basename, dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { build } from "esbuild"

// inside the project, so that what the bundle requires at run time (ioredis, an optional peer
// loaded by require) resolves from its node_modules
const cache = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "node_modules", ".cache", "effect-llm-workers")

const built = new Map<string, Promise<string>>()

export const bundled = (entry: string): Promise<string> => {
  let out = built.get(entry)
  if (out === undefined) {
    mkdirSync(cache, { recursive: true })
    const dir = mkdtempSync(join(cache, "worker-"))
    process.on("exit", () => rmSync(dir, { recursive: true, force: true }))
    const file = join(dir, basename(entry).replace(/\.ts$/, ".mjs"))
    out = build({
      entryPoints: [entry],
      bundle: true,
      platform: "node",
      format: "esm",
      outfile: file,
      logLevel: "warning",
      // ioredis and friends are CommonJS: give the bundle a require
      banner: { js: "import { createRequire as __bundleCreateRequire } from 'node:module'; const require = __bundleCreateRequire(import.meta.url);" }
    }).then(() => file)
    built.set(entry, out)
  }
  return out
}
