/**
 * The production entry (src/index.ts): what its module graph reaches. Fakes are test code,
 * brought by `effect-llm/Testing` alone: no path from the main entry leads to one, whether by
 * a static import or an `import()`.
 */
import { describe, expect, it } from "@effect/vitest"
import { readFileSync } from "node:fs"
import { dirname, join, relative, resolve } from "node:path"
import { fileURLToPath } from "node:url"

const src = join(dirname(fileURLToPath(import.meta.url)), "..", "src")

/** Static imports and re-exports, side-effect imports, and `import()` of a string literal. */
const specifiers = /(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+)["']([^"']+)["']/gm

/** Every source file reachable from `entry` through relative imports, each with the path that reached it. */
const reachable = (entry: string): Map<string, ReadonlyArray<string>> => {
  const seen = new Map<string, ReadonlyArray<string>>([[entry, [entry]]])
  const queue = [entry]
  while (queue.length > 0) {
    const file = queue.shift()!
    const text = readFileSync(join(src, file), "utf8")
    for (const match of text.matchAll(specifiers)) {
      const specifier = match[1]!
      if (!specifier.startsWith(".")) continue
      const target = relative(src, resolve(dirname(join(src, file)), specifier.replace(/\.js$/, ".ts")))
      if (seen.has(target)) continue
      seen.set(target, [...seen.get(file)!, target])
      queue.push(target)
    }
  }
  return seen
}

const isFake = (file: string) => /(^|\/)fake\.ts$/.test(file) || file.startsWith("internal/testing/") || file === "Testing.ts"

describe("the production entry", () => {
  it("reaches no fake and nothing of the fake server, statically or by import()", () => {
    const graph = reachable("index.ts")
    expect(graph.size).toBeGreaterThan(50)
    expect(graph.has("internal/providers/registry.ts")).toBe(true)
    const fakes = [...graph.entries()].filter(([file]) => isFake(file)).map(([, path]) => path.join(" -> "))
    expect(fakes).toEqual([])
  })

  it("while effect-llm/Testing reaches every API's fake routes (the walk sees what it should)", () => {
    const graph = reachable("Testing.ts")
    for (const api of ["anthropic", "gemini", "ollama", "openaiChat", "openaiResponses"]) {
      expect(graph.has(`internal/providers/${api}/fake.ts`), api).toBe(true)
    }
  })
})
