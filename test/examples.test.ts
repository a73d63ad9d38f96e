/**
 * Every examples/*.ts runs as written, in its own process, against the built-in fake
 * provider (no key in the environment), and prints what it promises. The README's code
 * blocks are checked against the files they show, so the README cannot drift from them.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { execFile } from "node:child_process"
import { readdirSync, readFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { LanguageModel, LlmError, Message, Testing } from "../src/index.js"

const root = join(dirname(fileURLToPath(import.meta.url)), "..")

/** Runs one example with tsx; the environment has no provider key, so it must use the fake. */
const runExample = (file: string): Promise<{ code: number | null; stdout: string; stderr: string }> => {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: "1" }
  for (const name of Object.keys(env)) if (name.endsWith("_API_KEY")) delete env[name]
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ["--import", "tsx", join("examples", file)],
      { cwd: root, env, timeout: 45_000, maxBuffer: 4 * 1024 * 1024 },
      (error, stdout, stderr) => resolve({ code: error === null ? 0 : (typeof error.code === "number" ? error.code : null), stdout, stderr })
    )
  })
}

/** What each example must print. A new example without an entry here fails the suite. */
const expectations: Record<string, (stdout: string) => void> = {
  "demo.ts": (out) => {
    expect(out).toContain("No OPENAI_API_KEY: running against Testing.FakeProvider")
    // the whole reply reached the terminal, streamed
    expect(out).toContain("A pool spreads the load and moves on when a key is rate limited or revoked.")
    expect(out).toMatch(/\[streamed\] openai\/gpt-4o-mini: 278 chars, \d+ tokens/)
    // the 429 hit one key and the call succeeded at once on the other
    const first = /attempt 1 with (key_[0-9a-f]{10}) -> 429/.exec(out)
    const second = /attempt 2 with (key_[0-9a-f]{10}) -> 200/.exec(out)
    expect(first).not.toBeNull()
    expect(second).not.toBeNull()
    expect(second![1]).not.toBe(first![1])
    expect(out).toMatch(/survived on another key: "Providers limit/)
    // the pool shows it: the 429'd key cools down, the other is healthy
    const poolLines = out.split("\n").filter((line) => /^\s+key_[0-9a-f]{10}\s/.test(line))
    expect(poolLines).toHaveLength(2)
    const cooling = poolLines.find((line) => line.includes(first![1]!))!
    expect(cooling).toMatch(/failures=1 .*cooling down for (29|30)s/)
    expect(poolLines.find((line) => line.includes(second![1]!))).toMatch(/successes=2 failures=0 .*healthy/)
    expect(out).toMatch(/requests\s+5\d\.\d of 60 available/)
    expect(out).toMatch(/tokens\s+\d+\.\d of 40000 available/)
    // keys are never printed
    expect(out).not.toContain("sk-demo")
  },
  "quickstart.ts": (out) => {
    expect(out).toContain("openai/gpt-4o-mini: Hello from the fake provider!")
    expect(out).toMatch(/usage: \d+ in, \d+ out/)
  },
  "mock.ts": (out) => {
    expect(out).toContain("first call:  Why Keys Need Pools")
    expect(out).toContain("second call: Untitled")
  }
}

const examples = readdirSync(join(root, "examples")).filter((file) => file.endsWith(".ts")).sort()

describe("examples", () => {
  it("every example has an expectation", () => {
    expect(examples.length).toBeGreaterThan(0)
    expect(examples.filter((file) => expectations[file] === undefined)).toEqual([])
  })

  for (const file of examples) {
    it(`examples/${file} runs against the fake and prints what it promises`, async () => {
      const result = await runExample(file)
      if (result.code !== 0) throw new Error(`examples/${file} exited with ${result.code}:\n${result.stderr}\n${result.stdout}`)
      expectations[file]?.(result.stdout)
    }, 60_000)
  }
})

describe("README", () => {
  const readme = readFileSync(join(root, "README.md"), "utf8")
  // `<!-- file: PATH -->` before a code block: the block is that whole file.
  // `<!-- excerpt: PATH -->`: the block appears verbatim in that file.
  const blocks = [...readme.matchAll(/<!-- (file|excerpt): (\S+) -->\s*```\w*\n([\s\S]*?)```/g)]

  it("shows every quickstart example in full", () => {
    const shown = blocks.filter((b) => b[1] === "file").map((b) => b[2])
    expect(shown).toEqual(expect.arrayContaining(["examples/quickstart.ts", "examples/mock.ts"]))
  })

  for (const [, kind, path, code] of blocks) {
    it(`its block of ${path} matches the file`, () => {
      const source = readFileSync(join(root, path!), "utf8")
      if (kind === "file") expect(code).toBe(source)
      else expect(source).toContain(code!.trimEnd())
    })
  }
})

// The README's "in a test" snippet, run for real.
describe("testing with a mock model", () => {
  const titleFor = (text: string) =>
    LanguageModel.chat(Message.request([Message.system("Reply with a title of at most five words."), Message.user(text)])).pipe(
      Effect.map((reply) => reply.text.trim()),
      Effect.catchTag("RateLimitError", () => Effect.succeed("Untitled"))
    )

  it.effect("falls back to a default title while rate limited", () =>
    Effect.gen(function* () {
      expect(yield* titleFor("An essay on key pools.")).toBe("Why Keys Need Pools")
      expect(yield* titleFor("The same essay again.")).toBe("Untitled")
    }).pipe(
      Effect.provide(Testing.mockModel([
        "Why Keys Need Pools",
        new LlmError.RateLimitError({ provider: "mock", model: "mock-model", message: "scripted 429" })
      ]))
    ))
})
