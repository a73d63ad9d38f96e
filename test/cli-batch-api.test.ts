/**
 * `effect-llm batch --batch-api` end to end against the fake's batch APIs, the CLI run as a
 * process and killed with SIGKILL mid-upload, mid-poll and mid-download, then resumed.
 */
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, Exit, Scope } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as Testing from "../src/Testing.js"
import { startCli } from "./support/cliBin.js"

const start = startCli

const records = (path: string) =>
  existsSync(path)
    ? readFileSync(path, "utf8").split("\n").filter((l) => l.trim().length > 0).flatMap((l) => {
      try {
        return [JSON.parse(l) as { id: string; ok: boolean; text?: string; error?: { _tag: string; message: string } }]
      } catch {
        return []
      }
    })
    : []

/** Resolves once `condition` holds (checked every 20 ms); fails when the run ends first. */
const until = (run: ReturnType<typeof start>, condition: () => boolean | Promise<boolean>, what: string) =>
  new Promise<void>((resolveWait, reject) => {
    let finished = false
    const timer = setInterval(async () => {
      if (await condition()) {
        clearInterval(timer)
        resolveWait()
      }
    }, 20)
    void run.done.then((r) => {
      finished = true
      clearInterval(timer)
      reject(new Error(`the run ended (${r.code}) before ${what}: ${r.stderr}`))
    })
    void finished
  })

const killAt = async (run: ReturnType<typeof start>, condition: () => boolean | Promise<boolean>, what: string) => {
  await until(run, condition, what)
  run.child.kill("SIGKILL")
  await run.done
}

let scope: Scope.CloseableScope
let fake: Testing.FakeProviderService
beforeAll(async () => {
  scope = await Effect.runPromise(Scope.make())
  fake = await Effect.runPromise(Scope.extend(Testing.FakeProvider.make({ respond: (request) => ({ text: `echo ${JSON.stringify(request.body).length}` }) }), scope))
})
afterAll(() => Effect.runPromise(Scope.close(scope, Exit.void)))

const setBatch = (options: Testing.FakeBatchOptions) => Effect.runPromise(fake.setBatch(options))
const requests = () => Effect.runPromise(fake.requests)
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

const apis = {
  openai: { model: "gpt-4o-mini", env: "OPENAI_API_KEY", base: () => fake.baseUrl, creates: /\/v1\/batches$/ },
  anthropic: { model: "claude-3-5-haiku-latest", env: "ANTHROPIC_API_KEY", base: () => fake.url, creates: /\/v1\/messages\/batches$/ },
  gemini: { model: "gemini-2.0-flash", env: "GEMINI_API_KEY", base: () => `${fake.url}/v1beta`, creates: /:batchGenerateContent$/ }
} as const

const tempDir = () => mkdtempSync(join(tmpdir(), "effect-llm-batch-api-"))

describe("effect-llm batch --batch-api (subprocess)", () => {
  for (const [name, api] of Object.entries(apis)) {
    it(`${name}: killed mid-upload, mid-poll${name === "gemini" ? "" : " and mid-download"}, resumed: nothing resubmitted, nothing lost, each id once`, async () => {
      const dir = tempDir()
      const input = join(dir, "in.jsonl")
      const out = join(dir, "out.jsonl")
      const n = 12
      writeFileSync(input, Array.from({ length: n }, (_, i) => JSON.stringify({ id: `q${i}`, prompt: `prompt ${i}` })).join("\n") + "\n")
      const args = ["batch", input, "--out", out, "--batch-api", "--model", api.model, "--base-url", api.base(), "--poll-interval", "0.05"]
      const env = { [api.env]: "sk-batch-test-key" }
      const before = (await requests()).length
      const ours = async () => (await requests()).slice(before).filter((r) => r.headers["x-fake-batch-item"] === undefined)
      const creations = async () => (await ours()).filter((r) => r.method === "POST" && api.creates.test(r.path.split("?")[0]!)).length
      const polls = async () => (await ours()).filter((r) => r.method === "GET" && /batches\/[^/]+$/.test(r.path.split("?")[0]!)).length

      // 1. killed while the provider takes the batch: it is accepted after the client died
      await setBatch({ submitDelayMs: 600, pollsToComplete: 1_000 })
      await killAt(start(args, env), async () => (await creations()) === 1, "the batch creation was sent")
      await sleep(900)
      expect(existsSync(`${out}.batch-state.json`)).toBe(true)

      // 2. resumed: finds that batch instead of sending another, then killed while polling
      await setBatch({ pollsToComplete: 1_000 })
      const second = start(args, env)
      const pollsBefore = await polls()
      await killAt(second, async () => (await polls()) >= pollsBefore + 2, "two polls")
      expect(await creations()).toBe(1)

      if (name !== "gemini") {
        // 3. the batch ends; killed while its results are downloaded and written
        await setBatch({ pollsToComplete: 1, lineDelayMs: 60 })
        await killAt(start(args, env), () => records(out).length >= 3, "three records were written")
        expect(records(out).length).toBeLessThan(n)
      }

      // 4. resumed to the end
      await setBatch({ pollsToComplete: 1 })
      const last = await start(args, env).done
      expect(last.stderr).toContain("resuming")
      expect(last.code).toBe(0)
      expect(await creations()).toBe(1)
      const all = records(out)
      const ids = all.map((r) => r.id)
      expect(new Set(ids).size).toBe(ids.length)
      expect(new Set(ids)).toEqual(new Set(Array.from({ length: n }, (_, i) => `q${i}`)))
      expect(all.every((r) => r.ok && /^echo \d+$/.test(r.text ?? ""))).toBe(true)
      expect(last.stdout).toMatch(/cost \(batch price\)/)
      expect(last.stdout).toMatch(/cost at live prices/)
      // done: the state file is gone
      expect(existsSync(`${out}.batch-state.json`)).toBe(false)
      // the key never shows
      expect(last.stdout + last.stderr).not.toContain("sk-batch-test-key")
    }, 120_000)
  }

  it("a poll answered 503 is tried again, not the run's end", async () => {
    const dir = tempDir()
    const input = join(dir, "in.jsonl")
    const out = join(dir, "out.jsonl")
    writeFileSync(input, ['{"id":"a","prompt":"one"}', '{"id":"b","prompt":"two"}'].join("\n") + "\n")
    await setBatch({ pollsToComplete: 2, failingPolls: 2 })
    const run = await start(["batch", input, "--out", out, "--batch-api", "--model", "gpt-4o-mini", "--base-url", fake.baseUrl, "--poll-interval", "0.05"], {
      OPENAI_API_KEY: "sk-batch-test-key"
    }).done
    expect(run.stderr).not.toContain("503")
    expect(run.code).toBe(0)
    expect(records(out).map((r) => [r.id, r.ok])).toEqual([["a", true], ["b", true]])
  }, 60_000)

  it("--config: the entry's base URL and keys, its model's batch API", async () => {
    const dir = tempDir()
    const input = join(dir, "in.jsonl")
    const out = join(dir, "out.jsonl")
    const config = join(dir, "provider.json")
    writeFileSync(input, ['{"id":"a","prompt":"one"}', '{"id":"b","prompt":"two"}'].join("\n") + "\n")
    writeFileSync(config, JSON.stringify({ anthropic: [{ model_name: "claude-3-5-haiku-latest", base_url: fake.url, api_keys: ["sk-from-config-1"] }] }))
    await setBatch({ pollsToComplete: 1 })
    const before = (await requests()).length
    const env: Record<string, string> = { ANTHROPIC_API_KEY: "" }
    const run = await start(["batch", input, "--out", out, "--batch-api", "--config", config, "--poll-interval", "0.05"], env).done
    expect(run.stderr).not.toContain("sk-from-config")
    expect(run.code).toBe(0)
    expect(records(out).map((r) => [r.id, r.ok])).toEqual([["a", true], ["b", true]])
    const sent = (await requests()).slice(before).filter((r) => r.headers["x-fake-batch-item"] === undefined)
    expect(sent.some((r) => r.method === "POST" && /\/v1\/messages\/batches$/.test(r.path))).toBe(true)
    expect(sent.every((r) => r.headers["x-api-key"] === "sk-from-config-1")).toBe(true)
  }, 60_000)

  it("refuses a state file for another input, and a streaming line before anything is uploaded; --cancel cancels in flight", async () => {
    const dir = tempDir()
    const input = join(dir, "in.jsonl")
    const out = join(dir, "out.jsonl")
    writeFileSync(input, ['{"id":"a","prompt":"one"}', '{"id":"b","prompt":"two","stream":true}'].join("\n") + "\n")
    const args = ["batch", input, "--out", out, "--batch-api", "--model", "claude-3-5-haiku-latest", "--base-url", fake.url, "--poll-interval", "0.05"]
    const env = { ANTHROPIC_API_KEY: "sk-batch-test-key" }
    const before = (await requests()).length
    const streaming = await start(args, env).done
    expect(streaming.code).toBe(1)
    expect(streaming.stderr).toContain(`${input}:2: a streaming request cannot go through a batch API`)
    expect((await requests()).length).toBe(before)

    writeFileSync(input, ['{"id":"a","prompt":"one"}', '{"id":"b","prompt":"two"}'].join("\n") + "\n")
    await setBatch({ pollsToComplete: 1_000 })
    await killAt(start(args, env), () => existsSync(`${out}.batch-state.json`) && readFileSync(`${out}.batch-state.json`, "utf8").includes('"id"'), "the batch id was kept")
    const state = JSON.parse(readFileSync(`${out}.batch-state.json`, "utf8")) as { batches: Array<{ id: string }> }
    expect(state.batches).toHaveLength(1)

    writeFileSync(input, ['{"id":"a","prompt":"one"}', '{"id":"b","prompt":"two, edited"}'].join("\n") + "\n")
    const edited = await start(args, env).done
    expect(edited.code).toBe(1)
    expect(edited.stderr).toMatch(/refusing to resume: .*in\.jsonl is not the input .* was written for/)

    writeFileSync(input, ['{"id":"a","prompt":"one"}', '{"id":"b","prompt":"two"}'].join("\n") + "\n")
    const cancelled = await start([...args, "--cancel"], env).done
    expect(cancelled.stderr).toContain(`cancelled batch ${state.batches[0]!.id}`)
    expect(cancelled.code).toBe(1)
    expect(records(out).map((r) => r.error?._tag)).toEqual(["BatchCancelledError", "BatchCancelledError"])
  }, 120_000)
})
