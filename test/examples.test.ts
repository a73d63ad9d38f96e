/**
 * Every examples/*.ts runs as written, in its own process, against the built-in fake
 * provider (no key in the environment), and prints what it promises. The README's own blocks
 * are typechecked and run by test/readme.test.ts.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { execFile } from "node:child_process"
import { readdirSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { LanguageModel, LlmError, Message } from "../src/index.js"
import * as Testing from "../src/Testing.js"

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

/** The text of a demo section: from its `=== title` line to the next section. */
const section = (out: string, title: string): string => {
  const start = out.indexOf(`=== ${title}`)
  expect(start, `section "${title}"`).toBeGreaterThanOrEqual(0)
  const next = out.indexOf("\n=== ", start + 1)
  return out.slice(start, next < 0 ? undefined : next)
}

/** What each example must print. A new example without an entry here fails the suite. */
const expectations: Record<string, (stdout: string, stderr: string) => void> = {
  "demo.ts": (out, err) => {
    expect(out).toContain("No OPENAI_API_KEY: running against Testing.FakeProvider")
    // 1. the whole reply reached the terminal, streamed in many deltas, not printed at once
    expect(out).toContain("A pool spreads the load and moves on when a key is rate limited or revoked.")
    const streamed = /\[streamed\] openai\/gpt-4o-mini: 278 chars in (\d+) deltas, \d+ tokens/.exec(out)
    expect(streamed).not.toBeNull()
    expect(Number(streamed![1])).toBeGreaterThan(1)
    // 3. a dead primary: Retry tried it three times (two backoffs), then Fallback answered with the secondary
    const dead = section(out, "A dead primary")
    expect(dead.match(/Retry: gpt-4o-mini failed, trying again in \d+ ms/g)).toHaveLength(2)
    expect(dead).toContain("Retry: gpt-4o-mini failed, giving up on it")
    expect(dead).toContain("primary   gpt-4o-mini: 3 attempts -> 503, 503, 503")
    expect(dead).toContain("secondary gpt-4.1-nano: 1 attempt -> 200")
    expect(dead).toContain(`answered by openai/gpt-4.1-nano: "The fallback model here`)
    expect(dead).not.toContain("Retry: gpt-4.1-nano")
    // 2. the 429 hit one key and the call succeeded at once on the other
    const rateLimited = section(out, "A 429 on one key")
    expect(rateLimited).toContain("one chat call, 2 HTTP attempts:")
    const first = /attempt 1 with (key_[0-9a-f]{10}) -> 429/.exec(rateLimited)
    const second = /attempt 2 with (key_[0-9a-f]{10}) -> 200/.exec(rateLimited)
    expect(first).not.toBeNull()
    expect(second).not.toBeNull()
    expect(second![1]).not.toBe(first![1])
    expect(rateLimited).toMatch(/survived on another key: "Providers limit/)
    // 4. the pool shows it: the 429'd key cools down, the other serves; every HTTP answer is counted
    const poolLines = section(out, "Key pool").split("\n").filter((line) => /^\s+key_[0-9a-f]{10}\s/.test(line))
    expect(poolLines).toHaveLength(2)
    expect(poolLines.find((line) => line.includes(first![1]!))).toMatch(/cooling down for (29|30)s/)
    expect(poolLines.find((line) => line.includes(second![1]!))).toMatch(/healthy$/)
    const sum = (field: string) => poolLines.reduce((n, line) => n + Number(new RegExp(`${field}=(\\d+)`).exec(line)![1]), 0)
    expect(sum("successes")).toBe(3) // the stream, the fallback's answer, the 429's re-try
    expect(sum("failures")).toBe(4) // three 503s and the 429
    // the limiter shows its buckets; the 429 cooled one key, so with the other healthy it did not pause
    const limiter = section(out, "Rate limiter")
    expect(limiter).toMatch(/requests\s+\d+\.\d of 60 available, refilling 1\.00\/s/)
    expect(limiter).toMatch(/tokens\s+\d+\.\d of 40000 available/)
    expect(limiter).toMatch(/not paused: the 429 cooled only its own key/)
    // usage per provider/model, priced, adding up to the total
    const usage = section(out, "Usage")
    const row = (name: string) => {
      const m = new RegExp(`${name.replace(/[./]/g, "\\$&")}\\s+(\\d+) requests?\\s+(\\d+) tokens \\((\\d+) in, (\\d+) out\\)\\s+\\$(\\d+\\.\\d+)`).exec(usage)
      expect(m, `usage row ${name}`).not.toBeNull()
      const [requests, tokens, input, output, cost] = m!.slice(1).map(Number) as [number, number, number, number, number]
      expect(tokens).toBe(input + output)
      return { requests, tokens, cost }
    }
    const primary = row("openai/gpt-4o-mini")
    const secondary = row("openai/gpt-4.1-nano")
    const total = row("total")
    expect([primary.requests, secondary.requests, total.requests]).toEqual([2, 1, 3])
    expect(total.tokens).toBe(primary.tokens + secondary.tokens)
    expect(primary.cost).toBeGreaterThan(0)
    expect(secondary.cost).toBeGreaterThan(0)
    expect(total.cost).toBeCloseTo(primary.cost + secondary.cost, 5)
    // the sections come in order
    const order = ["Streaming a reply", "A dead primary", "A 429 on one key", "Key pool", "Rate limiter", "Usage"]
    expect(order.map((title) => out.indexOf(`=== ${title}`))).toEqual(order.map((title) => out.indexOf(`=== ${title}`)).sort((a, b) => a - b))
    // keys are never printed, on either stream: only fingerprints
    for (const key of ["sk-demo-first-key", "sk-demo-second-key"]) {
      expect(out).not.toContain(key)
      expect(err).not.toContain(key)
    }
    expect(out + err).not.toContain("sk-demo")
  },
  "quickstart.ts": (out) => {
    expect(out).toContain("openai/gpt-4o-mini: Hello from the fake provider!")
    expect(out).toMatch(/usage: \d+ in, \d+ out/)
  },
  "tools.ts": (out) => {
    // two tools called in parallel in one reply; the bad argument goes back as an error and is repaired
    expect(out).toContain("step 1: 2 tool call(s)")
    expect(out).toContain("get_weather({\"city\":\"Paris\",\"unit\":null}) -> {\"tempC\":21,\"sky\":\"clear\"}")
    expect(out).toMatch(/convert_currency\(\{"amount":"twenty".*\) -> error .*at amount: Expected number, actual \\"twenty\\"/)
    expect(out).toContain("step 2: 1 tool call(s)")
    expect(out).toContain("convert_currency({\"amount\":20,\"from\":\"EUR\",\"to\":\"USD\"}) -> {\"amount\":21.6,\"currency\":\"USD\"}")
    expect(out).toContain("step 3: 0 tool call(s)")
    expect(out).toContain("answer: Paris is 21°C and clear; 20 EUR is 21.6 USD.")
    expect(out).toMatch(/3 model calls, 7 messages, \d+ tokens/)
  },
  "mcp.ts": (out) => {
    // the notebook server's tools next to the program's own; an error result goes back to the model
    expect(out).toMatch(/connected to notebook 1\.0\.0 \(pid \d+\); tools: today, search_notes, read_note, word_count/)
    expect(out).toContain("step 1: search_notes({\"query\":\"trip\"}) -> trip: Lisbon from March 3 to March 9")
    expect(out).toContain("step 1: read_note({\"title\":\"plans\"}) -> error: no note named plans; the notes are groceries, trip")
    expect(out).toContain("step 1: today({}) -> \"2027-02-25\"")
    expect(out).toContain("step 2: word_count({\"title\":\"trip\"}) -> {\"title\":\"trip\",\"words\":15}")
    expect(out).toContain("answer: Your trip note has 15 words; Lisbon starts March 3, 6 days from 2027-02-25.")
    expect(out).toContain("scope closed; the server process has exited")
  },
  "structured.ts": (out) => {
    expect(out).toMatch(/trip after 2 attempts \(\d+ tokens\):/)
    expect(out).toContain("3 days in Lisbon, Portugal")
    expect(out).toContain("- Alfama: 3 h")
    expect(out).toContain("- Belém: 4 h")
    expect(out).toContain("budget: none given")
    expect(out).toContain("at days: Expected number, actual \"three\"")
    expect(out).toContain("at stops[0].hours: is missing")
    const streamed = /streamed: (\d+) partial values in all, then 2 stops in Lisbon/.exec(out)
    expect(streamed).not.toBeNull()
    expect(Number(streamed![1])).toBeGreaterThan(4)
  },
  "provider.ts": (out) => {
    expect(out).toContain("chat (after a retried 503): echo: hello there")
    expect(out).toContain("stream: one two three")
    expect(out).toContain("an Echo error body, read by readError: ContextLengthError: echo 400: the prompt is too long")
    expect(out).toContain("embeddings (2 calls): [[3,0],[9,1],[17,2]], 3 tokens")
  },
  "chat.ts": (out) => {
    expect(out).toMatch(/saved \d+ characters of JSON/)
    expect(out).toContain("restored, asked again: Your name is Ada.")
    expect(out).toContain("history: system, user, assistant, user, assistant")
    expect(out).toContain("last: Your name is Ada.")
    // deltas that arrive in one network read are one event
    expect(out).toMatch(/served as Server-Sent Events: (TextDelta )+StepFinish Finish/)
  },
  "caching.ts": (out) => {
    // the first call writes the cached system prompt, the next two read it
    const calls = [...out.matchAll(/call (\d): (\d+) input tokens, (\d+) written to the cache, (\d+) read from it: \$(\d+\.\d+)/g)]
    expect(calls.map((m) => m[1])).toEqual(["1", "2", "3"])
    const [first, second, third] = calls.map((m) => ({ input: Number(m[2]), written: Number(m[3]), read: Number(m[4]), cost: Number(m[5]) }))
    expect(first!.written).toBeGreaterThan(1_024)
    expect(first!.read).toBe(0)
    for (const later of [second!, third!]) {
      expect(later.written).toBe(0)
      expect(later.read).toBe(first!.written)
      expect(later.cost).toBeLessThan(first!.cost / 4)
    }
    const saved = /without caching \$(\d+\.\d+), with it \$(\d+\.\d+): saved \$(\d+\.\d+) \((\d+)%\)/.exec(out)
    expect(saved).not.toBeNull()
    const [without, withCache, difference] = saved!.slice(1, 4).map(Number) as [number, number, number]
    expect(withCache).toBeCloseTo(first!.cost + second!.cost + third!.cost, 5)
    expect(difference).toBeCloseTo(without - withCache, 5)
    expect(Number(saved![4])).toBeGreaterThan(30)
  },
  "documents.ts": (out) => {
    for (const api of ["Chat Completions", "Responses", "Anthropic"]) {
      expect(out).toMatch(new RegExp(`${api}: Received 1 image \\(image/png, \\d+ bytes\\) and 1 file \\(report\\.pdf, application/pdf, \\d+ bytes\\)\\.`))
    }
    // Gemini's wire carries no file name
    expect(out).toMatch(/Gemini: Received 1 image \(image\/png, \d+ bytes\) and 1 file \(application\/pdf, \d+ bytes\)\./)
    expect(out).toContain("Ollama: refused before sending: ollama: messages[0].content[1]: Ollama takes images only")
    expect(out).toContain("requests the fake received: 4")
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
      expectations[file]?.(result.stdout, result.stderr)
    }, 60_000)
  }
})

// A mock model in a vitest test, as the README describes it.
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
