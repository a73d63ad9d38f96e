/** The TypeScript blocks of the README and the guides, for the tests that compile and run them as written. */

export interface Block {
  /** The Markdown file, relative to the repository (`README.md`, `docs/testing.md`). */
  readonly file: string
  /** The line of the block's first line of code (1-based). */
  readonly line: number
  readonly code: string
  readonly runnable: boolean
}

/** The ```ts (or ```typescript) blocks of a Markdown text; `runnable` after the language marks one to run. */
export const extractBlocks = (markdown: string, file = "README.md"): Array<Block> => {
  const lines = markdown.split("\n")
  const blocks: Array<Block> = []
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\w*)(.*)$/.exec(lines[i]!)
    if (open === null) continue
    const end = lines.findIndex((l, j) => j > i && l.startsWith("```"))
    if (end < 0) throw new Error(`${file}:${i + 1}: a code block that is never closed`)
    if (open[1] === "ts" || open[1] === "typescript") {
      blocks.push({ file, line: i + 2, code: lines.slice(i + 1, end).join("\n"), runnable: /\brunnable\b/.test(open[2]!) })
    }
    i = end
  }
  return blocks
}

/** What a runnable block says it prints: the `// ` lines after its last `// prints:` line. */
export const expectedOutput = (block: Block): Array<string> | undefined => {
  const lines = block.code.trimEnd().split("\n")
  const at = lines.map((l) => l.trim()).lastIndexOf("// prints:")
  return at < 0 ? undefined : lines.slice(at + 1).map((l) => l.replace(/^\s*\/\/ ?/, ""))
}
