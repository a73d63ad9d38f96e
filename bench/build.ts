/**
 * The clients run as JavaScript compiled from the sources, as a user's build would run the
 * library, not through tsx: tsx's on-the-fly transform wraps every function of ours in a
 * `__name` call, which costs ~10–20% per request and touches no other client. esbuild
 * bundles only this repository's files; every package stays an import from node_modules.
 */
import { build } from "esbuild"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

const root = join(dirname(fileURLToPath(import.meta.url)), "..")
export const buildDir = join(root, "bench", ".build")

/** Compiles `bench/NAME.ts` to `bench/.build/NAME.mjs`; resolves to the output's path. */
export const compile = async (name: string): Promise<string> => {
  const outfile = join(buildDir, `${name}.mjs`)
  await build({
    entryPoints: [join(root, "bench", `${name}.ts`)],
    outfile,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    packages: "external",
    logLevel: "error"
  })
  return outfile
}
