/**
 * A worker script bundled once into one ES module, so that each worker process starts in
 * well under a second (tsx would compile the library in every process, seconds each on a
 * busy machine). The bundle is the same source, built by esbuild as tsx would.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { basename, join } from "node:path"
import { build } from "esbuild"

const built = new Map<string, Promise<string>>()

export const bundled = (entry: string): Promise<string> => {
  let out = built.get(entry)
  if (out === undefined) {
    const dir = mkdtempSync(join(tmpdir(), "effect-llm-worker-"))
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
      banner: { js: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);" }
    }).then(() => file)
    built.set(entry, out)
  }
  return out
}
