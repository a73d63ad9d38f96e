/**
 * Every TypeScript block in README.md and docs/*.md is a complete program that typechecks
 * against the source, and every block marked ```ts runnable also runs, against the fake
 * provider or a mock model with no key in the environment, exits 0, and prints what its
 * closing `// prints:` comment says. Errors name the block's file and line.
 */
import { describe, expect, it } from "@effect/vitest"
import { execFile } from "node:child_process"
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { dirname, join, relative } from "node:path"
import { fileURLToPath } from "node:url"
import ts from "typescript"
import { type Block, expectedOutput, extractBlocks } from "./support/markdownBlocks.js"

const root = join(dirname(fileURLToPath(import.meta.url)), "..")
const scratch = join(root, "test", ".readme")

/** The package's entries, as a user imports them, and the source each one is. */
const entries: Record<string, string> = {
  "effect-llm": "src/index.ts",
  "effect-llm/Testing": "src/Testing.ts",
  "effect-llm/Redis": "src/Redis.ts",
  "effect-llm/Mcp": "src/Mcp.ts"
}

const where = (block: Block, offset = 0) => `${block.file}:${block.line + offset}`

const fileOf = (block: Block) => join(scratch, `${block.file.replace(/[^\w]+/g, "_")}-L${block.line}.ts`)

/**
 * Typechecks the blocks as one program: each block a module of its own (a virtual file under
 * test/.readme), with the package's entries mapped to the source. Returns one message per error,
 * located in its Markdown file.
 */
export const typecheck = (blocks: ReadonlyArray<Block>): Array<string> => {
  const configFile = ts.readConfigFile(join(root, "tsconfig.json"), ts.sys.readFile)
  const parsed = ts.parseJsonConfigFileContent(configFile.config, ts.sys, root)
  const options: ts.CompilerOptions = {
    ...parsed.options,
    noEmit: true,
    declaration: false,
    sourceMap: false,
    // a README shows a layer or two it does not use; everything else stays as strict as the source
    noUnusedLocals: false,
    noUnusedParameters: false,
    baseUrl: root,
    paths: Object.fromEntries(Object.entries(entries).map(([name, file]) => [name, [file]]))
  }
  const virtual = new Map<string, { block: Block; text: string }>()
  for (const block of blocks) virtual.set(fileOf(block), { block, text: `${block.code}\nexport {}\n` })
  const host = ts.createCompilerHost(options)
  const { fileExists, readFile, getSourceFile } = host
  host.fileExists = (file) => virtual.has(file) || fileExists.call(host, file)
  host.readFile = (file) => virtual.get(file)?.text ?? readFile.call(host, file)
  host.getSourceFile = (file, languageVersion, onError, shouldCreate) => {
    const v = virtual.get(file)
    return v !== undefined
      ? ts.createSourceFile(file, v.text, languageVersion, true)
      : getSourceFile.call(host, file, languageVersion, onError, shouldCreate)
  }
  const program = ts.createProgram([...virtual.keys()], options, host)
  const errors: Array<string> = []
  for (const [file, { block }] of virtual) {
    const source = program.getSourceFile(file)!
    const diagnostics = [...program.getSyntacticDiagnostics(source), ...program.getSemanticDiagnostics(source)]
    for (const d of diagnostics) {
      const at = d.start === undefined ? 0 : source.getLineAndCharacterOfPosition(d.start).line
      errors.push(`${where(block, at)}: TS${d.code} ${ts.flattenDiagnosticMessageText(d.messageText, "\n")}`)
    }
  }
  return errors
}

/** A runnable block as a file whose imports of the package point at the source, for tsx. */
const runnableText = (block: Block): string =>
  block.code.replace(/(from\s+|import\s*\(\s*)(["'])(effect-llm(?:\/\w+)?)\2/g, (whole, lead: string, quote: string, name: string) => {
    const file = entries[name]
    if (file === undefined) return whole
    const target = relative(scratch, join(root, file)).replace(/\.ts$/, ".js")
    return `${lead}${quote}${target}${quote}`
  })

const run = (file: string): Promise<{ code: number | null; stdout: string; stderr: string }> => {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: "1" }
  for (const name of Object.keys(env)) if (/_API_KEYS?$/.test(name)) delete env[name]
  return new Promise((resolve) => {
    execFile(process.execPath, ["--import", "tsx", file], { cwd: root, env, timeout: 45_000, maxBuffer: 4 * 1024 * 1024 }, (error, stdout, stderr) =>
      resolve({ code: error === null ? 0 : typeof error.code === "number" ? error.code : null, stdout, stderr }))
  })
}

const markdownFiles = ["README.md", ...readdirSync(join(root, "docs")).filter((f) => f.endsWith(".md")).sort().map((f) => `docs/${f}`)]
const blocks = markdownFiles.flatMap((file) => extractBlocks(readFileSync(join(root, file), "utf8"), file))

// A block that must fail, checked in the same program so the suite builds only one.
const sentinel: Block = { file: "sentinel.md", line: 100_000, code: `import { Effect } from "effect"\nconst n: number = Effect.succeed(1)`, runnable: false }
let checked: Array<string> | undefined
const errorsOf = () => (checked ??= typecheck([...blocks, sentinel]))

describe("README.md and docs/*.md", () => {
  it("have TypeScript blocks, some of them runnable, in the README and in the guides", () => {
    expect(blocks.filter((b) => b.file === "README.md").length).toBeGreaterThan(5)
    expect(blocks.some((b) => b.file === "README.md" && b.runnable)).toBe(true)
    expect(blocks.some((b) => b.file.startsWith("docs/"))).toBe(true)
  })

  it("every runnable block says what it prints", () => {
    const silent = blocks.filter((b) => b.runnable && (expectedOutput(b) ?? []).length === 0).map((b) => where(b))
    expect(silent).toEqual([])
  })

  it("typechecks every TypeScript block against the source", () => {
    const errors = errorsOf().filter((e) => !e.startsWith(`${sentinel.file}:`))
    if (errors.length > 0) throw new Error(`${errors.length} type error(s) in the Markdown blocks:\n${errors.join("\n")}`)
  }, 120_000)

  it("catches a block that does not compile, at its line", () => {
    expect(errorsOf().filter((e) => e.startsWith(`${where(sentinel, 1)}: TS2322`))).toHaveLength(1)
  }, 120_000)

  it("reads what a block says it prints", () => {
    const block: Block = { file: "x.md", line: 1, code: "console.log(1)\n// prints:\n// one\n//   two\n", runnable: true }
    expect(expectedOutput(block)).toEqual(["one", "  two"])
    expect(expectedOutput({ ...block, code: "console.log(1)" })).toBeUndefined()
  })

  const runnable = blocks.filter((b) => b.runnable)
  for (const block of runnable) {
    it(`runs the block at ${where(block)}: exit 0, and it prints what it says`, async () => {
      mkdirSync(scratch, { recursive: true })
      const file = fileOf(block)
      writeFileSync(file, runnableText(block))
      try {
        const result = await run(file)
        if (result.code !== 0) throw new Error(`${where(block)}: the block exited with ${result.code}:\n${result.stderr}\n${result.stdout}`)
        expect(result.stdout.trimEnd().split("\n"), where(block)).toEqual(expectedOutput(block))
      } finally {
        rmSync(file, { force: true })
      }
    }, 60_000)
  }
})
