import { readFileSync } from "node:fs"
import { createRequire } from "node:module"
import { dirname, join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { functionCallingTestCases } from "gpt-tokenizer/fixtures/functionCallingTestCases"
import { Message, Tokenizer } from "../src/index.js"
import { loadedPackages, src } from "./support/loadedPackages.js"

// gpt-tokenizer's own reference vectors: text samples with their token ids per encoding
// (data/TestPlans.txt) and chat requests with the token counts OpenAI's API reported.
const packageDir = dirname(createRequire(import.meta.url).resolve("gpt-tokenizer/package.json"))
const plans = readFileSync(join(packageDir, "data", "TestPlans.txt"), "utf8")
  .split(/\n\s*\n/)
  .map((block) => /^EncodingName: (\S+)\nSample: ([\s\S]*)\nEncoded: (\[.*\])$/.exec(block.trim()))
  .filter((m): m is RegExpExecArray => m !== null)
  .map(([, encoding, sample, encoded]) => ({ encoding: encoding!, sample: sample!, tokens: (JSON.parse(encoded!) as Array<number>).length }))

const modelOf = { o200k_base: "gpt-4o", cl100k_base: "gpt-4" } as const

describe("Tokenizer", () => {
  it("chooses the encoding by model family", () => {
    expect(Tokenizer.encodingFor("gpt-4o-mini")).toBe("o200k_base")
    expect(Tokenizer.encodingFor("gpt-4.1-nano")).toBe("o200k_base")
    expect(Tokenizer.encodingFor("o3-mini")).toBe("o200k_base")
    expect(Tokenizer.encodingFor("gpt-5")).toBe("o200k_base")
    expect(Tokenizer.encodingFor("openai/gpt-4o")).toBe("o200k_base")
    expect(Tokenizer.encodingFor("ft:gpt-4o-mini:acme::abc")).toBe("o200k_base")
    expect(Tokenizer.encodingFor("gpt-4-turbo")).toBe("cl100k_base")
    expect(Tokenizer.encodingFor("gpt-3.5-turbo")).toBe("cl100k_base")
    expect(Tokenizer.encodingFor("claude-sonnet-4")).toBeUndefined()
    expect(Tokenizer.encodingFor("gemini-2.5-flash")).toBeUndefined()
  })

  for (const encoding of ["o200k_base", "cl100k_base"] as const) {
    it.effect(`text counts match the reference vectors of ${encoding}`, () =>
      Effect.gen(function* () {
        const cases = plans.filter((p) => p.encoding === encoding)
        expect(cases.length).toBeGreaterThan(40)
        for (const c of cases) {
          const counted = yield* Tokenizer.count(c.sample, modelOf[encoding])
          expect({ sample: c.sample, tokens: counted.tokens }).toEqual({ sample: c.sample, tokens: c.tokens })
          expect(counted.exact).toBe(true)
        }
      }))
  }

  it.effect("a few o200k values, spelled out", () =>
    Effect.gen(function* () {
      expect(yield* Tokenizer.count("hello", "gpt-4o")).toEqual({ tokens: 1, exact: true })
      // [13225, 11, 5922, 0, 3253, 553, 481, 4044, 30, 130321, 235]
      expect((yield* Tokenizer.count("Hello, World! How are you today? 🌍", "gpt-4o")).tokens).toBe(11)
      // special-token text is counted as text, not refused
      expect((yield* Tokenizer.count("<|endoftext|>", "gpt-4o")).tokens).toBeGreaterThan(1)
    }))

  it.effect("chat counts, with per-message overhead and tool definitions, match the API's reported counts", () =>
    Effect.gen(function* () {
      const usable = functionCallingTestCases.filter((t) =>
        t.function_call === undefined &&
        t.messages.every((m) => m.name === undefined && m.function_call === undefined && ["system", "user", "assistant"].includes(m.role ?? ""))
      )
      expect(usable.length).toBeGreaterThan(15)
      let withTools = 0
      for (const t of usable) {
        const messages = t.messages.map((m): Message.Message =>
          m.role === "system" ? Message.system(m.content) : m.role === "user" ? Message.user(m.content) : Message.assistant(m.content)
        )
        const tools = t.functions?.map((f): Message.ToolDefinition => ({
          name: f.name,
          ...(f.description === undefined ? {} : { description: f.description }),
          parameters: (f.parameters ?? {}) as Record<string, unknown>
        }))
        if (tools !== undefined) withTools++
        const counted = yield* Tokenizer.count(messages, "gpt-4o", { tools })
        expect({ messages: t.messages, tokens: counted.tokens }).toEqual({ messages: t.messages, tokens: t.tokens })
      }
      expect(withTools).toBeGreaterThan(3)
      // spelled out: a lone "hello" from the user is 8 tokens with its overhead
      expect(yield* Tokenizer.count([Message.user("hello")], "gpt-4o")).toEqual({ tokens: 8, exact: true })
    }))

  it.effect("countEach adds up to count", () =>
    Effect.gen(function* () {
      const messages = [Message.system("You are terse."), Message.user("What is 2+2?"), Message.assistant("4")]
      const each = yield* Effect.flatMap(Tokenizer.current, (t) => t.countEach(messages, "gpt-4o-mini"))
      const whole = yield* Tokenizer.count(messages, "gpt-4o-mini")
      expect(each.perMessage.reduce((a, b) => a + b, 0) + each.overhead).toBe(whole.tokens)
      expect(each.exact).toBe(true)
    }))

  it.effect("other families get the estimate, and say so", () =>
    Effect.gen(function* () {
      expect(yield* Tokenizer.count("x".repeat(40), "claude-sonnet-4")).toEqual({ tokens: 10, exact: false })
      const messages = yield* Tokenizer.count([Message.user("x".repeat(40))], "claude-sonnet-4")
      expect(messages).toEqual({ tokens: 10 + 4 + 3, exact: false })
      // the estimate-only layer never uses the BPE
      const viaLayer = yield* Tokenizer.count("hello", "gpt-4o").pipe(Effect.provide(Tokenizer.layerEstimate))
      expect(viaLayer).toEqual({ tokens: 2, exact: false })
    }))

  it.effect("images add their tile cost", () =>
    Effect.gen(function* () {
      const text = yield* Tokenizer.count([Message.user([Message.text("describe")])], "gpt-4o")
      const withImage = yield* Tokenizer.count(
        [Message.user([Message.text("describe"), Message.image("https://example.com/a.png", { detail: "low" })])],
        "gpt-4o"
      )
      expect(withImage.tokens - text.tokens).toBe(85)
    }))
})

describe("Tokenizer loading", () => {
  it("the BPE tables load on the first exact count, not when the package is imported nor for an estimate", async () => {
    const stages = await loadedPackages(`
mark("import")
const { Tokenizer } = await import(${JSON.stringify(src("index.ts"))})
const { Effect } = await import("effect")
mark("estimate")
await Effect.runPromise(Tokenizer.count("hello", "claude-sonnet-4"))
mark("exact")
const counted = await Effect.runPromise(Tokenizer.count("hello", "gpt-4o"))
if (!counted.exact) throw new Error("expected an exact count")
`)
    const gpt = (stage: string) => (stages.get(stage) ?? []).filter((p) => p.startsWith("gpt-tokenizer"))
    expect(gpt("import")).toEqual([])
    expect(gpt("estimate")).toEqual([])
    expect(gpt("exact").some((p) => p.includes("bpeRanks/o200k_base"))).toBe(true)
    expect(gpt("exact").some((p) => p.includes("cl100k_base") && p.includes("bpeRanks"))).toBe(false)
  }, 60_000)
})
