import { spawn, spawnSync } from "node:child_process"
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { Effect, Exit, Scope } from "effect"
import { describe, expect, it } from "vitest"
import { parseInputLine, readPrevious } from "../src/cli/batch.js"
import { colorEnabled } from "../src/cli/console.js"
import { splitModel } from "../src/cli/model.js"
import { fingerprint } from "../src/KeyPool.js"
import * as Testing from "../src/Testing.js"
import { cliCommand, type Run, startCli } from "./support/cliBin.js"

const root = resolve(__dirname, "..")

const start = startCli

const records = (path: string) =>
  readFileSync(path, "utf8").split("\n").filter((l) => l.trim().length > 0).flatMap((l) => {
    try {
      return [JSON.parse(l) as { id: string; ok: boolean; text?: string; error?: { _tag: string } }]
    } catch {
      return []
    }
  })

const tempDir = () => mkdtempSync(join(tmpdir(), "effect-llm-cli-"))

/** Sends `signal` to a running batch once `out` holds `count` records; fails if the run ends first. */
const signalOnceWritten = (run: ReturnType<typeof start>, out: string, count: number, signal: NodeJS.Signals) =>
  new Promise<void>((resolveWait, reject) => {
    const timer = setInterval(() => {
      if (existsSync(out) && records(out).length >= count) {
        clearInterval(timer)
        run.child.kill(signal)
        resolveWait()
      }
    }, 20)
    run.done.then(() => {
      clearInterval(timer)
      reject(new Error(`the run finished before ${signal}`))
    })
  })

describe("effect-llm CLI (subprocess)", () => {
  it("batch --fake processes every line, reports bad lines with their number, and summarises", async () => {
    const dir = tempDir()
    const input = join(dir, "prompts.jsonl")
    const out = join(dir, "results.jsonl")
    writeFileSync(
      input,
      ['"first prompt"', '{"id":"b","messages":[{"role":"user","content":"second"}]}', "{oops", '{"id":"d","prompt":"fourth"}', ""].join("\n")
    )
    const run = await start(["batch", input, "--out", out, "--fake", "--concurrency", "2"]).done
    // a run with an invalid line is a failed run, though every valid line succeeded
    expect(run.code).toBe(1)
    expect(run.stderr).toContain(`${input}:3: malformed JSON`)
    expect(run.stderr).toContain("1 input line(s) invalid (line 3)")
    expect(run.stdout).toMatch(/succeeded\s+3/)
    expect(run.stdout).toMatch(/invalid input lines\s+1/)
    expect(run.stdout).toMatch(/wall time/)
    // the fake model has no price: the summary says so rather than claiming $0
    expect(run.stdout).toMatch(/cost\s+\$0\.0000 \(3 request\(s\) of unpriced models\)/)
    const byId = new Map(records(out).map((r) => [r.id, r]))
    expect(byId.get("line-1")?.text).toBe("echo: first prompt")
    expect(byId.get("b")?.text).toBe("echo: second")
    expect(byId.get("d")?.text).toBe("echo: fourth")
    expect(byId.get("line-3")?.error?._tag).toBe("InvalidInput")
  }, 60_000)

  it("a killed batch resumes with nothing redone and nothing lost", async () => {
    const dir = tempDir()
    const input = join(dir, "prompts.jsonl")
    const out = join(dir, "results.jsonl")
    const n = 60
    writeFileSync(input, Array.from({ length: n }, (_, i) => JSON.stringify({ id: `q${i}`, prompt: `prompt ${i}` })).join("\n") + "\n")
    const first = start(["batch", input, "--out", out, "--fake", "--concurrency", "2"], { EFFECT_LLM_FAKE_DELAY_MS: "60" })
    // kill it once some, but not all, results are written
    await signalOnceWritten(first, out, 6, "SIGKILL")
    await first.done
    const partial = records(out).length
    expect(partial).toBeGreaterThanOrEqual(6)
    expect(partial).toBeLessThan(n)

    const second = await start(["batch", input, "--out", out, "--fake", "--concurrency", "8"]).done
    expect(second.code).toBe(0)
    expect(second.stderr).toContain(`resuming: ${partial} line(s) already in`)
    const all = records(out)
    const ids = all.map((r) => r.id)
    expect(new Set(ids).size).toBe(ids.length) // nothing redone
    expect(new Set(ids)).toEqual(new Set(Array.from({ length: n }, (_, i) => `q${i}`))) // nothing lost
    expect(all.every((r) => r.ok && r.text === `echo: prompt ${r.id.slice(1)}`)).toBe(true)
  }, 90_000)

  it("chat --fake streams the reply", async () => {
    const run = await start(["chat", "hello there", "--fake"]).done
    expect(run.code).toBe(0)
    expect(run.stdout.trim()).toBe("echo: hello there")
    expect(run.stderr).toContain("[fake:fake-model] stop")
  }, 60_000)

  it("chat names the known providers, and where their keys come from, when a model's is unknown", async () => {
    const run = await start(["chat", "hi", "--model", "my-local-model"]).done
    // a command line that cannot run: a usage error
    expect(run.code).toBe(2)
    expect(run.stderr).toContain(`cannot tell the provider of model "my-local-model": pass --provider`)
    expect(run.stderr).toContain("write --model provider:my-local-model")
    expect(run.stderr).toContain("anthropic (ANTHROPIC_API_KEY)")
    expect(run.stdout).toBe("")
  }, 60_000)

  it("chat exits non-zero, with a message, when its stream fails", async () => {
    const scope = Effect.runSync(Scope.make())
    try {
      const fake = await Effect.runPromise(Scope.extend(Testing.FakeProvider.make({ reply: { text: "one two three four five six", chunks: 6 } }), scope))
      const config = join(tempDir(), "provider.json")
      // no retries: each fault reaches the command as it is
      writeFileSync(config, JSON.stringify({ local: [{ model_name: "m", api: "chat", base_url: fake.baseUrl, max_retries: 0 }] }))
      const faults: ReadonlyArray<Testing.Fault> = [
        { _tag: "CutStream", afterChunks: 2 },
        { _tag: "MalformedJson", afterChunks: 2 },
        { _tag: "Status", status: 500 }
      ]
      for (const fault of faults) {
        await Effect.runPromise(fake.inject(fault))
        const run = await start(["chat", "hi", "--config", config, "--model", "m"]).done
        expect({ fault: fault._tag, code: run.code }).toEqual({ fault: fault._tag, code: 1 })
        expect(run.stderr).toMatch(/^effect-llm: /m)
        expect(run.stderr).not.toContain("    at ")
        // stdout holds the reply (a part of it, at most), never the error report
        expect(run.stdout).not.toMatch(/Error/)
      }
      // and a healthy stream still exits 0
      const ok = await start(["chat", "hi", "--config", config, "--model", "m"]).done
      expect(ok.code).toBe(0)
      expect(ok.stdout.trim()).toBe("one two three four five six")
    } finally {
      await Effect.runPromise(Scope.close(scope, Exit.void))
    }
  }, 120_000)

  it("every input line ends with exactly one result line, an id clash included, and a resume adds none", async () => {
    const dir = tempDir()
    const input = join(dir, "prompts.jsonl")
    const out = join(dir, "results.jsonl")
    writeFileSync(
      input,
      [
        '"first"', // automatic id line-1
        '{"id":"line-1","prompt":"second"}', // an explicit id equal to line 1's automatic one
        '{"id":"x","prompt":"third"}',
        '{"id":"x","prompt":"fourth"}',
        '{"id":"line-6","prompt":"fifth"}', // claims line 6's automatic id first
        '"sixth"'
      ].join("\n") + "\n"
    )
    const run = await start(["batch", input, "--out", out, "--fake"]).done
    // the clashes are invalid lines
    expect(run.code).toBe(1)
    expect(run.stderr).toContain("3 input line(s) invalid (lines 2, 4, 6)")
    const all = records(out) as Array<{ id: string; line: number; ok: boolean; text?: string; error?: { _tag: string; message: string } }>
    expect(all.map((r) => r.line).sort()).toEqual([1, 2, 3, 4, 5, 6])
    const byLine = new Map(all.map((r) => [r.line, r]))
    expect(byLine.get(1)).toMatchObject({ id: "line-1", ok: true, text: "echo: first" })
    expect(byLine.get(2)).toMatchObject({ ok: false, error: { _tag: "DuplicateId" } })
    expect(byLine.get(2)?.error?.message).toContain("line 1")
    expect(byLine.get(3)).toMatchObject({ id: "x", ok: true, text: "echo: third" })
    expect(byLine.get(4)).toMatchObject({ ok: false, error: { _tag: "DuplicateId" } })
    expect(byLine.get(4)?.error?.message).toContain("line 3")
    expect(byLine.get(5)).toMatchObject({ id: "line-6", ok: true, text: "echo: fifth" })
    expect(byLine.get(6)).toMatchObject({ ok: false, error: { _tag: "DuplicateId" } })
    expect(run.stderr).toContain(`${input}:2: `)
    // the clashes' records do not mark the owners done, and a resume writes nothing new
    const again = await start(["batch", input, "--out", out, "--fake"]).done
    expect(again.code).toBe(0)
    expect(records(out)).toHaveLength(6)
  }, 60_000)

  it("a torn last line in --out is removed on resume, and the run says so", async () => {
    const dir = tempDir()
    const input = join(dir, "prompts.jsonl")
    const out = join(dir, "results.jsonl")
    writeFileSync(input, ['{"id":"a","prompt":"A"}', '{"id":"b","prompt":"B"}', '{"id":"c","prompt":"C"}'].join("\n") + "\n")
    writeFileSync(out, '{"id":"a","line":1,"ok":true,"text":"echo: A"}\n{"id":"c","li')
    const run = await start(["batch", input, "--out", out, "--fake"]).done
    expect(run.code).toBe(0)
    expect(run.stderr).toMatch(/torn last line/)
    const lines = readFileSync(out, "utf8").split("\n").filter((l) => l.length > 0)
    // every line is whole JSON: the fragment is gone, not left behind a newline
    expect(lines.map((l) => (JSON.parse(l) as { id: string }).id).sort()).toEqual(["a", "b", "c"])
  }, 60_000)

  it("a batch line whose request is invalid is an error result, not ok", async () => {
    const dir = tempDir()
    const input = join(dir, "prompts.jsonl")
    const out = join(dir, "results.jsonl")
    writeFileSync(
      input,
      [
        '{"id":"empty","messages":[]}',
        '{"id":"huge","prompt":"p","temperature":1e999}',
        '{"id":"zero","prompt":"p","maxTokens":0}',
        '{"id":"frac","prompt":"p","maxTokens":1.5}',
        '{"id":"topp","prompt":"p","topP":3}',
        '{"id":"orphan","messages":[{"role":"user","content":"q"},{"role":"tool","toolCallId":"call_9","content":"42"}]}',
        '{"id":"fine","messages":[{"role":"user","content":"q"},{"role":"assistant","content":"","toolCalls":[{"id":"call_1","name":"f","arguments":"{}"}]},{"role":"tool","toolCallId":"call_1","content":"42"}]}'
      ].join("\n") + "\n"
    )
    const run = await start(["batch", input, "--out", out, "--fake"]).done
    expect(run.code).toBe(1)
    const byId = new Map((records(out) as Array<{ id: string; ok: boolean; error?: { _tag: string; message: string } }>).map((r) => [r.id, r]))
    for (const [id, field] of [["empty", "messages"], ["huge", "temperature"], ["zero", "maxTokens"], ["frac", "maxTokens"], ["topp", "topP"], ["orphan", "messages[1].toolCallId"]]) {
      expect({ id, ok: byId.get(id!)?.ok, tag: byId.get(id!)?.error?._tag }).toEqual({ id, ok: false, tag: "InvalidInput" })
      expect(byId.get(id!)?.error?.message).toContain(field)
    }
    expect(byId.get("fine")?.ok).toBe(true)
    expect(run.stdout).toMatch(/invalid input lines\s+6/)
  }, 60_000)

  it("a missing input file is a clear message and exit code 1", async () => {
    const dir = tempDir()
    const run = await start(["batch", join(dir, "missing.jsonl"), "--out", join(dir, "o.jsonl"), "--fake"]).done
    expect(run.code).toBe(1)
    expect(run.stderr).toContain("effect-llm: cannot read")
    expect(run.stderr).toContain("missing.jsonl")
    expect(run.stderr).not.toContain("    at ")
  }, 60_000)
})

describe("effect-llm batch exit codes (subprocess)", () => {
  /** Runs `f` with a fake that gives every request `answer`, and a provider.json serving model "m" from it. */
  const withFake = async (answer: Testing.Fault, f: (config: string) => Promise<void>) => {
    const scope = Effect.runSync(Scope.make())
    try {
      const fake = await Effect.runPromise(Scope.extend(Testing.FakeProvider.make({ respond: () => answer }), scope))
      const config = join(tempDir(), "provider.json")
      writeFileSync(config, JSON.stringify({ local: [{ model_name: "m", api: "chat", base_url: fake.baseUrl, api_keys: ["sk-exit-code-test"], max_retries: 0 }] }))
      await f(config)
    } finally {
      await Effect.runPromise(Scope.close(scope, Exit.void))
    }
  }
  const prompts = (dir: string, n: number) => {
    const input = join(dir, "prompts.jsonl")
    writeFileSync(input, Array.from({ length: n }, (_, i) => JSON.stringify({ id: `q${i}`, prompt: `prompt ${i}` })).join("\n") + "\n")
    return input
  }
  const failureLine = (run: Run) => run.stderr.split("\n").filter((l) => l.startsWith("effect-llm: "))

  it("every item rejected with a 401: exit 1, and the summary says the items failed", async () => {
    await withFake({ _tag: "Status", status: 401, body: JSON.stringify({ error: { message: "Incorrect API key provided" } }) }, async (config) => {
      const dir = tempDir()
      const out = join(dir, "results.jsonl")
      const run = await start(["batch", prompts(dir, 3), "--out", out, "--config", config, "--model", "m", "--retries", "0"]).done
      expect(run.code).toBe(1)
      expect(records(out).map((r) => r.ok)).toEqual([false, false, false])
      expect(run.stdout).toMatch(/failed\s+3/)
      expect(failureLine(run)).toHaveLength(1)
      expect(failureLine(run)[0]).toContain("3 of 3 items failed")
      expect(run.stderr + run.stdout).not.toContain("sk-exit-code-test")
    })
  }, 60_000)

  it("every 200 body malformed: exit 1", async () => {
    await withFake({ _tag: "MalformedJson" }, async (config) => {
      const dir = tempDir()
      const out = join(dir, "results.jsonl")
      const run = await start(["batch", prompts(dir, 3), "--out", out, "--config", config, "--model", "m", "--retries", "0"]).done
      expect(run.code).toBe(1)
      expect(records(out).map((r) => r.error?._tag)).toEqual(["MalformedResponseError", "MalformedResponseError", "MalformedResponseError"])
      expect(failureLine(run)[0]).toContain("3 of 3 items failed")
    })
  }, 60_000)

  it("every input line invalid: exit 1, and the summary names the lines", async () => {
    const dir = tempDir()
    const input = join(dir, "prompts.jsonl")
    const out = join(dir, "results.jsonl")
    writeFileSync(input, ["{oops", '{"id":"x"}', '{"messages":[]}'].join("\n") + "\n")
    const run = await start(["batch", input, "--out", out, "--fake"]).done
    expect(run.code).toBe(1)
    expect(run.stdout).toMatch(/invalid input lines\s+3/)
    expect(failureLine(run)).toHaveLength(1)
    expect(failureLine(run)[0]).toContain("3 input line(s) invalid (lines 1, 2, 3)")
    // the rerun has nothing left to do: every line already has its result
    const again = await start(["batch", input, "--out", out, "--fake"]).done
    expect(again.code).toBe(0)
    expect(records(out)).toHaveLength(3)
  }, 60_000)

  for (const [signal, code] of [["SIGINT", 130], ["SIGTERM", 143]] as const) {
    it(`${signal} mid-run: exit ${code}, only whole lines in --out, and a rerun resumes and finishes`, async () => {
      const dir = tempDir()
      const n = 200
      const input = prompts(dir, n)
      const out = join(dir, "results.jsonl")
      const first = start(["batch", input, "--out", out, "--fake", "--concurrency", "2"], { EFFECT_LLM_FAKE_DELAY_MS: "40" })
      await signalOnceWritten(first, out, 10, signal)
      const stopped = await first.done
      expect(stopped.code).toBe(code)
      expect(stopped.stderr).toContain("interrupted")
      const text = readFileSync(out, "utf8")
      // whole records only: every line parses, and the last ends with its newline
      expect(text.endsWith("\n")).toBe(true)
      const lines = text.split("\n").filter((l) => l.length > 0)
      expect(lines.every((l) => typeof (JSON.parse(l) as { id?: unknown }).id === "string")).toBe(true)
      expect(lines.length).toBeGreaterThanOrEqual(10)
      expect(lines.length).toBeLessThan(n)

      const second = await start(["batch", input, "--out", out, "--fake", "--concurrency", "16"]).done
      expect(second.code).toBe(0)
      expect(second.stderr).toContain(`resuming: ${lines.length} line(s) already in`)
      const ids = records(out).map((r) => r.id)
      expect(new Set(ids).size).toBe(ids.length)
      expect(new Set(ids)).toEqual(new Set(Array.from({ length: n }, (_, i) => `q${i}`)))
    }, 90_000)
  }
})

describe("effect-llm CLI speaks in one line per problem (subprocess)", () => {
  const oneLine = (run: Run) => run.stderr.split("\n").filter((l) => l.trim().length > 0)

  it("a usage error is one line pointing to --help, exit code 2, no parser internals", async () => {
    const dir = tempDir()
    const input = join(dir, "p.jsonl")
    writeFileSync(input, '"hi"\n')
    const out = join(dir, "o.jsonl")
    const cases: ReadonlyArray<ReadonlyArray<string>> = [
      ["batch", input], // no --out
      ["frob"], // no such subcommand
      ["batch", input, "--out", out, "-c", "abc"],
      ["batch", input, "--out", out, "--fake", "-c", "0"],
      ["batch", input, "--out", out, "--fake", "-c", "-3"],
      ["batch", input, "--out", out, "--fake", "--retries", "-1"]
    ]
    const runs = await Promise.all(cases.map((args) => start(args).done))
    for (const [i, run] of runs.entries()) {
      const lines = oneLine(run)
      expect({ args: cases[i], code: run.code, lines: lines.length }).toEqual({ args: cases[i], code: 2, lines: 1 })
      expect(lines[0]).toMatch(/^effect-llm: .*--help/)
      expect(run.stderr).not.toContain('{"_tag"')
      expect(run.stderr).not.toContain("    at ")
      expect(run.stderr).not.toContain("RangeError")
    }
    expect(oneLine(runs[3]!)[0]).toContain("--concurrency")
    expect(oneLine(runs[5]!)[0]).toContain("--retries")
    // nothing ran: no result file, no half-drawn bar
    expect(existsSync(out)).toBe(false)
  }, 90_000)

  it("a model of no known provider points to --provider, and --provider ollama serves llama3", async () => {
    const unknown = await start(["chat", "hi", "-m", "llama3"]).done
    expect(unknown.code).toBe(2)
    expect(oneLine(unknown)).toHaveLength(1)
    expect(unknown.stderr).toContain("--provider")
    const scope = Effect.runSync(Scope.make())
    try {
      const fake = await Effect.runPromise(Scope.extend(Testing.FakeProvider.make({ reply: { text: "hello from llama" } }), scope))
      // Ollama's own root (the fake's base URL is its /v1, which Ollama serves as Chat Completions)
      const run = await start(["chat", "hi", "-m", "llama3", "--provider", "ollama", "--base-url", fake.baseUrl.replace(/\/v1\/?$/, "")]).done
      expect({ code: run.code, out: run.stdout.trim() }).toEqual({ code: 0, out: "hello from llama" })
      const requests = await Effect.runPromise(fake.requests)
      expect(requests.map((r) => r.path)).toEqual(["/api/chat"])
    } finally {
      await Effect.runPromise(Scope.close(scope, Exit.void))
    }
  }, 60_000)

  it("a refused connection names the host and base_url, in one line without a stack", async () => {
    const run = await start(["chat", "hi", "-m", "llama3", "--provider", "ollama", "--base-url", "http://127.0.0.1:1"]).done
    expect(run.code).toBe(1)
    expect(oneLine(run)).toHaveLength(1)
    expect(run.stderr).toContain("127.0.0.1:1")
    expect(run.stderr).toContain("base_url")
    expect(run.stderr).not.toContain("    at ")
  }, 60_000)

  it("a 401 names the key's fingerprint and the env var, never the key", async () => {
    const scope = Effect.runSync(Scope.make())
    try {
      const fake = await Effect.runPromise(Scope.extend(Testing.FakeProvider.make({ reply: { text: "never" } }), scope))
      const unauthorized: Testing.Fault = { _tag: "Status", status: 401, body: JSON.stringify({ error: { message: "Incorrect API key provided" } }) }
      await Effect.runPromise(fake.inject(unauthorized, unauthorized, unauthorized, unauthorized))
      const key = "sk-cli-test-0123456789"
      const run = await start(["chat", "hi", "-m", "gpt-4o-mini", "--base-url", fake.baseUrl], { OPENAI_API_KEY: key }).done
      expect(run.code).toBe(1)
      expect(oneLine(run)).toHaveLength(1)
      expect(run.stderr).toContain(fingerprint(key))
      expect(run.stderr).toContain("OPENAI_API_KEY")
      expect(run.stderr + run.stdout).not.toContain(key)
    } finally {
      await Effect.runPromise(Scope.close(scope, Exit.void))
    }
  }, 60_000)

  it("with no key and no --fake, the error names the env var and suggests --fake, not a config file's path", async () => {
    const [missing, empty] = await Promise.all([start(["chat", "hi"]).done, start(["chat", "hi"], { OPENAI_API_KEY: " , " }).done])
    for (const run of [missing, empty]) {
      expect(run.code).toBe(1)
      expect(oneLine(run)).toHaveLength(1)
      expect(run.stderr).toContain("OPENAI_API_KEY")
      expect(run.stderr).toContain("--fake")
      expect(run.stderr).not.toContain("$.openai")
    }
    expect(empty.stderr).toContain("OPENAI_API_KEY is set but empty")
  }, 60_000)

  it("keys come from the provider's variable only, by the library's rule: its plural is not read, and says so", async () => {
    const scope = Effect.runSync(Scope.make())
    try {
      const fake = await Effect.runPromise(Scope.extend(Testing.FakeProvider.make({ reply: { text: "hello" } }), scope))
      const plural = await start(["chat", "hi", "-m", "gpt-4o-mini", "--base-url", fake.baseUrl], { OPENAI_API_KEYS: "sk-plural-1" }).done
      expect(plural.code).toBe(1)
      expect(oneLine(plural)).toHaveLength(1)
      expect(plural.stderr).toContain("OPENAI_API_KEYS is not read: move its keys to OPENAI_API_KEY")
      expect(plural.stderr).not.toContain("sk-plural-1")
      const bad = await start(["chat", "hi", "-m", "gpt-4o-mini", "--base-url", fake.baseUrl], { OPENAI_API_KEY: "sk-fine,sk-pasted\u0007" }).done
      expect(bad.code).toBe(1)
      expect(bad.stderr).toContain("OPENAI_API_KEY: key 2 of 2 contains a control character")
      expect(bad.stderr).not.toContain("sk-pasted")
      expect(await Effect.runPromise(fake.requests)).toHaveLength(0)
      const list = await start(["chat", "hi", "-m", "gpt-4o-mini", "--base-url", fake.baseUrl], { OPENAI_API_KEY: "sk-one, sk-two,," }).done
      expect({ code: list.code, out: list.stdout.trim() }).toEqual({ code: 0, out: "hello" })
      const sent = (await Effect.runPromise(fake.requests)).map((r) => r.headers.authorization)
      expect(sent).toEqual([expect.stringMatching(/^Bearer sk-(one|two)$/)])
    } finally {
      await Effect.runPromise(Scope.close(scope, Exit.void))
    }
  }, 60_000)

  it("--help shows defaults and env vars, and no ANSI codes when piped; --version is package.json's", async () => {
    const [help, version] = await Promise.all([start(["batch", "--help"]).done, start(["--version"]).done])
    expect(help.code).toBe(0)
    expect(help.stdout).toMatch(/default: 8/)
    expect(help.stdout).toMatch(/default: 2/)
    expect(help.stdout).toContain("OPENAI_API_KEY")
    expect(help.stdout + help.stderr).not.toContain("\u001b[")
    const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version: string }
    expect(version.stdout.trim()).toBe(pkg.version)
  }, 60_000)

  it("the progress bar counts invalid input lines as errors, and draws no ANSI codes when piped", async () => {
    const dir = tempDir()
    const input = join(dir, "prompts.jsonl")
    writeFileSync(input, ['"one"', "{oops", '{"id":"x"}', '"two"'].join("\n") + "\n")
    const run = await start(["batch", input, "--out", join(dir, "o.jsonl"), "--fake"]).done
    expect(run.code).toBe(1)
    expect(run.stderr).toMatch(/errors 2/)
    expect(run.stderr).not.toMatch(/errors [01]\b/)
    expect(run.stderr).not.toContain("\u001b[")
  }, 60_000)
})

describe("effect-llm batch counts HTTP calls (subprocess)", () => {
  const prompts = (dir: string, n: number) => {
    const input = join(dir, "prompts.jsonl")
    writeFileSync(input, Array.from({ length: n }, (_, i) => JSON.stringify({ id: `q${i}`, prompt: `prompt ${i}` })).join("\n") + "\n")
    return input
  }
  const attemptsOf = (out: string) =>
    (records(out) as Array<{ id: string; attempts?: number }>).sort((a, b) => a.id.localeCompare(b.id)).map((r) => r.attempts)

  it("--retries 0 makes one HTTP call per item, with keys from the env or from --config, and says so in attempts", async () => {
    const scope = Effect.runSync(Scope.make())
    try {
      const fake = await Effect.runPromise(Scope.extend(Testing.FakeProvider.make({ respond: () => ({ _tag: "Status", status: 503 }) }), scope))
      // a file that sets no max_retries: the provider's own default would retry
      const config = join(tempDir(), "provider.json")
      writeFileSync(config, JSON.stringify({ local: [{ model_name: "m", api: "chat", base_url: fake.baseUrl }] }))
      const runs: ReadonlyArray<readonly [string, ReadonlyArray<string>, Record<string, string>]> = [
        ["env", ["-m", "gpt-4o-mini", "--base-url", fake.baseUrl], { OPENAI_API_KEY: "sk-retries-test" }],
        ["config", ["--config", config, "-m", "m"], {}]
      ]
      for (const [source, args, env] of runs) {
        for (const retries of [0, 1]) {
          await Effect.runPromise(fake.clear)
          const dir = tempDir()
          const out = join(dir, "results.jsonl")
          const run = await start(["batch", prompts(dir, 3), "--out", out, ...args, "--retries", String(retries)], { ...env, EFFECT_LLM_FAKE_DELAY_MS: "0" }).done
          expect({ source, retries, code: run.code }).toEqual({ source, retries, code: 1 })
          const sent = (await Effect.runPromise(fake.requests)).length
          expect({ source, retries, sent }).toEqual({ source, retries, sent: 3 * (retries + 1) })
          expect({ source, retries, attempts: attemptsOf(out) }).toEqual({ source, retries, attempts: [retries + 1, retries + 1, retries + 1] })
        }
      }
    } finally {
      await Effect.runPromise(Scope.close(scope, Exit.void))
    }
  }, 120_000)

  it("attempts counts HTTP calls, a 429 moved to the other key included", async () => {
    const scope = Effect.runSync(Scope.make())
    try {
      const fake = await Effect.runPromise(Scope.extend(Testing.FakeProvider.make({ reply: { text: "ok" } }), scope))
      await Effect.runPromise(fake.inject({ _tag: "RateLimit", retryAfterSeconds: 30 }))
      const dir = tempDir()
      const out = join(dir, "results.jsonl")
      const run = await start(["batch", prompts(dir, 1), "--out", out, "-m", "gpt-4o-mini", "--base-url", fake.baseUrl, "--retries", "0"], {
        OPENAI_API_KEY: "sk-key-a,sk-key-b"
      }).done
      expect(run.code).toBe(0)
      expect((await Effect.runPromise(fake.requests)).length).toBe(2)
      expect(attemptsOf(out)).toEqual([2])
    } finally {
      await Effect.runPromise(Scope.close(scope, Exit.void))
    }
  }, 60_000)

  it("a line whose field has the wrong type is one short line naming the field, not a Schema dump", async () => {
    const dir = tempDir()
    const input = join(dir, "prompts.jsonl")
    const out = join(dir, "results.jsonl")
    writeFileSync(input, ['{"id":"a","messages":"hello"}', '{"id":"b","prompt":"p","tools":"x"}'].join("\n") + "\n")
    const run = await start(["batch", input, "--out", out, "--fake"]).done
    expect(run.code).toBe(1)
    const lines = run.stderr.split("\n").filter((l) => l.startsWith(`${input}:`))
    expect(lines).toEqual([
      `${input}:1: not a prompt string or a ChatRequest at messages: expected a list of messages, like [{ "role": "user", "content": "…" }], got the string "hello"`,
      `${input}:2: not a prompt string or a ChatRequest at tools: expected a list of tool definitions, like [{ "name": "…", "parameters": { … } }], got the string "x"`
    ])
    expect(run.stderr).not.toContain("ReadonlyArray")
  }, 60_000)
})

describe("effect-llm --config chooses a model (subprocess)", () => {
  it("one keyless entry does not stop the others; without --model, gpt-4o-mini or the only model; else it says what to pass", async () => {
    const scope = Effect.runSync(Scope.make())
    try {
      const fake = await Effect.runPromise(Scope.extend(Testing.FakeProvider.make({ reply: { text: "from the file" } }), scope))
      const dir = tempDir()
      // the README's layout: an OpenAI entry with keys, and a vLLM server of a name of one's own, remote, without keys
      const readme = join(dir, "provider.json")
      writeFileSync(readme, JSON.stringify({
        openai: [{ model_name: "gpt-4o-mini", api_keys: ["sk-1", "sk-2"], base_url: fake.baseUrl, max_retries: 0 }],
        "my-vllm": [{ model_name: "qwen2.5-7b", base_url: "http://gpu-box:8000/v1", api: "chat" }]
      }))
      const [byDefault, named, keyless] = await Promise.all([
        start(["chat", "hi", "--config", readme]).done,
        start(["chat", "hi", "--config", readme, "-m", "openai:gpt-4o-mini"]).done,
        start(["chat", "hi", "--config", readme, "-m", "qwen2.5-7b"]).done
      ])
      expect({ code: byDefault.code, out: byDefault.stdout.trim() }).toEqual({ code: 0, out: "from the file" })
      expect({ code: named.code, out: named.stdout.trim() }).toEqual({ code: 0, out: "from the file" })
      expect(keyless.code).toBe(1)
      expect(keyless.stderr).toContain("$.my-vllm[0].api_keys")
      expect(keyless.stderr).toContain("MY_VLLM_API_KEY")
      expect(keyless.stderr.split("\n").filter((l) => l.length > 0)).toHaveLength(1)

      const only = join(dir, "only.json")
      writeFileSync(only, JSON.stringify({ local: [{ model_name: "m", api: "chat", base_url: fake.baseUrl }] }))
      const single = await start(["chat", "hi", "--config", only]).done
      expect({ code: single.code, out: single.stdout.trim() }).toEqual({ code: 0, out: "from the file" })

      const two = join(dir, "two.json")
      writeFileSync(two, JSON.stringify({ local: [{ model_name: "a", api: "chat", base_url: fake.baseUrl }, { model_name: "b", api: "chat", base_url: fake.baseUrl }] }))
      const ambiguous = await start(["chat", "hi", "--config", two]).done
      expect(ambiguous.code).toBe(2)
      expect(ambiguous.stderr).toContain("pass --model with one of: local:a, local:b")
    } finally {
      await Effect.runPromise(Scope.close(scope, Exit.void))
    }
  }, 60_000)
})

describe("effect-llm's words (subprocess)", () => {
  it("--help: no line over 100 columns, each key variable once, no parser placeholder text", async () => {
    const runs = await Promise.all([["--help"], ["chat", "--help"], ["batch", "-h"], []].map((args) => start(args).done))
    for (const run of runs) {
      expect(run.code).toBe(0)
      const lines = run.stdout.split("\n")
      expect(lines.filter((l) => l.length > 100)).toEqual([])
      expect(run.stdout.match(/OPENAI_API_KEY/g)).toHaveLength(1)
      expect(run.stdout.match(/ANTHROPIC_API_KEY/g)).toHaveLength(1)
      expect(run.stdout).not.toContain("A user-defined piece of text")
      expect(run.stdout).not.toContain("This setting is optional")
      expect(run.stdout).toContain("--fake")
    }
    expect(runs[2]!.stdout).toContain("--retries N")
    expect(runs[1]!.stdout).not.toContain("--retries")
  }, 60_000)

  it("an unknown --provider names the flag and the value and suggests the nearest; an unknown flag gets a did-you-mean", async () => {
    const [provider, flag, batchFlag] = await Promise.all([
      start(["chat", "hi", "--provider", "opnai", "-m", "x"]).done,
      start(["chat", "hi", "--modle", "gpt-4o"]).done,
      start(["batch", "in.jsonl", "--out", "o.jsonl", "--concurency", "4"]).done
    ])
    for (const run of [provider, flag, batchFlag]) {
      expect(run.code).toBe(2)
      expect(run.stderr.split("\n").filter((l) => l.length > 0)).toHaveLength(1)
    }
    expect(provider.stderr).toContain(`--provider "opnai" is not a provider this CLI knows; did you mean "openai"?`)
    expect(flag.stderr).toContain("unknown option --modle: did you mean --model?")
    expect(batchFlag.stderr).toContain("unknown option --concurency: did you mean --concurrency?")
  }, 60_000)

  it("a missing file says so in one line, for the input and for --config", async () => {
    const dir = tempDir()
    const [input, config] = await Promise.all([
      start(["batch", join(dir, "missing.jsonl"), "--out", join(dir, "o.jsonl"), "--fake"]).done,
      start(["chat", "hi", "--config", join(dir, "missing.json")]).done
    ])
    expect(input.stderr).toBe(`effect-llm: cannot read ${join(dir, "missing.jsonl")}: no such file\n`)
    expect(config.stderr).toBe(`effect-llm: ${join(dir, "missing.json")}: cannot read the file: no such file\n`)
    for (const run of [input, config]) {
      expect(run.code).toBe(1)
      expect(run.stderr).not.toContain("ENOENT")
      expect(run.stderr).not.toContain("FileSystem.readFile")
    }
  }, 60_000)
})

// `script` (util-linux) gives the CLI a terminal, so that NO_COLOR is what turns colour off
const hasScript = spawnSync("script", ["--version"]).status === 0

describe("colour", () => {
  it.skipIf(!hasScript)("on a terminal, --help is styled unless NO_COLOR is set (subprocess under script)", async () => {
    const onTty = (env: Record<string, string>) =>
      new Promise<string>((resolveRun) => {
        const childEnv: Record<string, string | undefined> = { ...process.env, ...env }
        if (env.NO_COLOR === undefined) delete childEnv.NO_COLOR
        const command = [process.execPath, ...cliCommand(), "--help"].map((a) => `'${a}'`).join(" ")
        const child = spawn("script", ["-qec", command, "/dev/null"], { cwd: root, env: childEnv })
        let out = ""
        child.stdout!.on("data", (d) => (out += d))
        child.on("close", () => resolveRun(out))
      })
    const [styled, plain] = await Promise.all([onTty({}), onTty({ NO_COLOR: "1" })])
    expect(styled).toContain("OPENAI_API_KEY")
    expect(plain).toContain("OPENAI_API_KEY")
    expect(styled).toContain("\u001b[")
    expect(plain).not.toContain("\u001b[")
  }, 60_000)

  it("only on a terminal, and never with NO_COLOR set", () => {
    expect(colorEnabled(true, {})).toBe(true)
    expect(colorEnabled(false, {})).toBe(false)
    expect(colorEnabled(true, { NO_COLOR: "1" })).toBe(false)
    expect(colorEnabled(undefined, {})).toBe(false)
  })
})

describe("batch input parsing", () => {
  it("reads prompt strings, ChatRequests with ids, and prompt shorthands", () => {
    expect(parseInputLine('"hi"', 1)).toEqual({ _tag: "Item", line: 1, id: "line-1", request: { messages: [{ role: "user", content: "hi" }] } })
    expect(parseInputLine('{"id":7,"messages":[{"role":"user","content":"x"}],"temperature":0.2}', 2)).toEqual({
      _tag: "Item",
      line: 2,
      id: "7",
      request: { messages: [{ role: "user", content: "x" }], temperature: 0.2 }
    })
    expect(parseInputLine("   ", 3)).toBeUndefined()
    expect(parseInputLine('{"id":"x"}', 4)).toMatchObject({ _tag: "Invalid", id: "x", reason: 'needs "messages" or "prompt"' })
    expect(parseInputLine('{"temperature":"hot","prompt":"p"}', 5)).toMatchObject({ _tag: "Invalid", reason: expect.stringContaining("at temperature") })
  })

  it("reads a previous --out: done ids, clashes already reported, and where a torn last line starts", () => {
    const content = '{"id":"a","ok":true}\n{"id":"a","line":4,"ok":false,"error":{"_tag":"DuplicateId"}}\n{"id":"b","ok":true}\n{"id":"c","o'
    const previous = readPrevious(content)
    // a clash's record names the owner's id, which must not count as done
    expect(previous.done).toEqual(new Set(["a", "b"]))
    expect(previous.clashes).toEqual(new Set([4]))
    expect(previous.tornAt).toBe(content.indexOf('{"id":"c"'))
    expect(previous.unreadable).toBe(0)
    // a torn line an older version left behind a newline is not the last: counted, not cut
    expect(readPrevious('{"id":"a","o\n{"id":"b","ok":true}\n')).toMatchObject({ done: new Set(["b"]), tornAt: undefined, unreadable: 1 })
    expect(readPrevious('{"id":"a","ok":true}\n').tornAt).toBeUndefined()
    // a whole record that lost only its newline is kept
    expect(readPrevious('{"id":"a","ok":true}').tornAt).toBeUndefined()
  })

  it("rejects requests no provider takes, naming the field", () => {
    const reason = (text: string) => {
      const parsed = parseInputLine(text, 1)
      return parsed?._tag === "Invalid" ? parsed.reason : `not invalid: ${JSON.stringify(parsed)}`
    }
    expect(reason('{"messages":[]}')).toContain("messages is empty")
    expect(reason('{"prompt":"p","temperature":1e999}')).toContain("temperature must be a finite number")
    expect(reason('{"prompt":"p","maxTokens":0}')).toContain("maxTokens must be at least 1")
    expect(reason('{"messages":[{"role":"user","content":1}]}')).toContain("at messages[0].content")
    expect(reason('{"messages":[{"role":"tool","toolCallId":"t1","content":"x"}]}')).toContain('messages[0].toolCallId "t1" matches no tool call of an earlier assistant message')
  })
})

describe("model names", () => {
  it("reads provider:model only when the prefix is a known provider", () => {
    expect(splitModel("anthropic:claude-sonnet-4-5")).toEqual({ provider: "anthropic", model: "claude-sonnet-4-5" })
    expect(splitModel("Claude:claude-x")).toEqual({ provider: "anthropic", model: "claude-x" })
    expect(splitModel("llama3:8b")).toEqual({ model: "llama3:8b" })
    expect(splitModel("gpt-4o")).toEqual({ model: "gpt-4o" })
  })
})
