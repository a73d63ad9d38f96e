/**
 * The package as a user gets it: `npm pack` (which builds), `npm install` of the tarball alone
 * into an empty project (its peers, Effect 3, come with it), then a program typechecked under
 * `NodeNext`, `Bundler` and `node` (node10) resolution and run against `effect-llm/Testing`'s
 * fake provider, the same from CommonJS with `require`, and the `effect-llm` bin. Then what a
 * new user meets: every TypeScript block of the README and the guides, compiled as written
 * against the package, the runnable ones run (with no key) and printing what they say; the
 * README's own `provider.json`; `effect-llm/Redis` without `ioredis`; and the declarations'
 * module overviews.
 */
import { execFile } from "node:child_process"
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { createRequire } from "node:module"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type Block, expectedOutput, extractBlocks } from "../support/markdownBlocks.js"

const root = resolve(__dirname, "..", "..")
const tsc = createRequire(join(root, "package.json")).resolve("typescript/bin/tsc")
const work = mkdtempSync(join(tmpdir(), "effect-llm-consumer-"))
const project = join(work, "project")

// what a new user has: no provider key in the environment
const userEnv = (): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: "1" }
  for (const name of Object.keys(env)) if (/_API_KEYS?$/.test(name)) delete env[name]
  return env
}

// asynchronous: a blocked worker cannot answer vitest's own calls
const run = (command: string, args: ReadonlyArray<string>, cwd: string): Promise<string> =>
  new Promise((resolveRun, reject) =>
    execFile(command, args, { cwd, encoding: "utf8", env: userEnv() }, (error, stdout, stderr) =>
      error === null
        ? resolveRun(stdout)
        : reject(new Error(`${command} ${args.join(" ")} failed in ${cwd}:\n${stdout}\n${stderr || error.message}`))))

/** A run that may fail: its exit code and both outputs. */
const attempt = (command: string, args: ReadonlyArray<string>, cwd: string): Promise<{ code: number; stdout: string; stderr: string }> =>
  new Promise((resolveRun) =>
    execFile(command, args, { cwd, encoding: "utf8", env: userEnv() }, (error, stdout, stderr) =>
      resolveRun({ code: error === null ? 0 : typeof error.code === "number" ? error.code : 1, stdout, stderr })))

// every TypeScript block of the README and the guides, as a user copies them
const markdownFiles = ["README.md", ...readdirSync(join(root, "docs")).filter((f) => f.endsWith(".md")).sort().map((f) => `docs/${f}`)]
const blocks = markdownFiles.flatMap((file) => extractBlocks(readFileSync(join(root, file), "utf8"), file))
const blockName = (block: Block) => `${block.file.replace(/[^\w]+/g, "_")}-L${block.line}`

// the README's own provider.json: its JSON block that lists models
const readmeProviderJson = (() => {
  const text = readFileSync(join(root, "README.md"), "utf8")
  const found = /```json\n([\s\S]*?)```/.exec(text.slice(text.indexOf("## `provider.json`")))
  if (found === null) throw new Error("README.md has no provider.json example")
  return found[1]!
})()

const providerJsonProgram = `import { NodeFileSystem } from "@effect/platform-node"
import { Effect, Exit, Layer } from "effect"
import { ProviderConfig, Transport } from "effect-llm"

const build = (config, provider, model) =>
  Effect.exit(Layer.build(config.models.layer(provider, model)).pipe(Effect.scoped, Effect.provide(Transport.layerUndici)))

const main = Effect.gen(function* () {
  const config = yield* ProviderConfig.load("provider.json")
  console.log("loaded: " + config.entries.map((e) => e.provider + "/" + e.model).join(", "))
  const openai = yield* build(config, "openai", "gpt-4o-mini")
  console.log("openai/gpt-4o-mini: " + (Exit.isSuccess(openai) ? "ready" : "failed"))
  const vllm = yield* build(config, "my-vllm", "qwen2.5-7b")
  console.log("my-vllm/qwen2.5-7b: " + (Exit.isFailure(vllm) && vllm.cause._tag === "Fail" ? vllm.cause.error.message : "ready"))
}).pipe(Effect.provide(NodeFileSystem.layer))

Effect.runPromise(main)
`

const program = `import { Console, Effect, Layer } from "effect"
import { KeyPool, LanguageModel, Message, OpenAiCompatible, RateLimiter, Transport } from "effect-llm"
import type * as Mcp from "effect-llm/Mcp"
import type * as Redis from "effect-llm/Redis"
import { FakeProvider } from "effect-llm/Testing"

// every subpath's types resolve, under node10 resolution too
export type Subpaths = [Mcp.Server, Redis.RedisOptions]

const main = Effect.gen(function* () {
  const fake = yield* FakeProvider.make({ reply: { text: "hello from the fake" } })
  const stack = OpenAiCompatible.layer({ model: "gpt-4o-mini", baseUrl: fake.baseUrl }).pipe(
    Layer.provide(KeyPool.layer({ providerId: "openai", keys: ["sk-consumer-test"] })),
    Layer.provide(RateLimiter.unlimited),
    Layer.provide(Transport.layerUndici)
  )
  const reply = yield* LanguageModel.chat(Message.request("hi")).pipe(Effect.provide(stack))
  const text: string = reply.text
  // @ts-expect-error the types resolved: a reply's text is no number (an \`any\` would let this pass)
  const wrong: number = reply.text
  void wrong
  yield* Console.log(\`esm: \${text}\`)
})

Effect.runPromise(Effect.scoped(main))
`

const commonJs = `console.log(require("node:path").relative(require("node:path").join(__dirname, "node_modules", "effect-llm"), require.resolve("effect-llm")))
const { Console, Effect, Layer } = require("effect")
const { KeyPool, LanguageModel, Message, OpenAiCompatible, RateLimiter, Transport } = require("effect-llm")
const { FakeProvider } = require("effect-llm/Testing")

const main = Effect.gen(function* () {
  const fake = yield* FakeProvider.make({ reply: { text: "hello from the fake" } })
  const stack = OpenAiCompatible.layer({ model: "gpt-4o-mini", baseUrl: fake.baseUrl }).pipe(
    Layer.provide(KeyPool.layer({ providerId: "openai", keys: ["sk-consumer-test"] })),
    Layer.provide(RateLimiter.unlimited),
    Layer.provide(Transport.layerUndici)
  )
  const reply = yield* LanguageModel.chat(Message.request("hi")).pipe(Effect.provide(stack))
  yield* Console.log("cjs: " + reply.text)
})

Effect.runPromise(Effect.scoped(main))
`

const tsconfig = (compilerOptions: Record<string, unknown>) =>
  JSON.stringify({
    compilerOptions: { target: "ES2022", lib: ["ES2022"], types: ["node"], strict: true, skipLibCheck: true, ...compilerOptions },
    files: ["main.ts"]
  })

describe("the packed package, installed into an empty project", () => {
  beforeAll(async () => {
    // `npm pack` runs `prepack`, the build
    await run("npm", ["pack", "--pack-destination", work, "--silent"], root)
    const tarball = readdirSync(work).find((f) => f.endsWith(".tgz"))
    if (tarball === undefined) throw new Error(`npm pack left no tarball in ${work}`)
    mkdirSync(project)
    writeFileSync(join(project, "package.json"), JSON.stringify({ name: "consumer", private: true, type: "module" }))
    // the tarball alone brings its peers (effect 3, @effect/platform, @effect/platform-node);
    // @types/node is for the typecheck only
    // @effect/opentelemetry 0.64, as the README's Telemetry section names it (npm brings the SDK it names as peers);
    // the MCP SDK, as the README's MCP section says to install it
    await run(
      "npm",
      [
        "install",
        "--prefer-offline",
        "--no-audit",
        "--no-fund",
        "--loglevel=error",
        join(work, tarball),
        "@types/node@20",
        "@effect/opentelemetry@^0.64",
        "@modelcontextprotocol/sdk"
      ],
      project
    )
    writeFileSync(join(project, "main.ts"), program)
    writeFileSync(join(project, "main.cjs"), commonJs)
    writeFileSync(join(project, "tsconfig.nodenext.json"), tsconfig({ module: "NodeNext", moduleResolution: "NodeNext", outDir: "out" }))
    writeFileSync(join(project, "tsconfig.bundler.json"), tsconfig({ module: "ESNext", moduleResolution: "Bundler", noEmit: true }))
    // an older project's settings: no "exports" read, subpaths found through typesVersions
    writeFileSync(join(project, "tsconfig.node10.json"), tsconfig({ module: "CommonJS", moduleResolution: "node", esModuleInterop: true, noEmit: true }))
    mkdirSync(join(project, "blocks"))
    for (const block of blocks) writeFileSync(join(project, "blocks", `${blockName(block)}.ts`), block.code)
    writeFileSync(
      join(project, "tsconfig.blocks.json"),
      JSON.stringify({
        compilerOptions: { target: "ES2022", lib: ["ES2022", "DOM"], types: ["node"], strict: true, skipLibCheck: true, module: "NodeNext", moduleResolution: "NodeNext", outDir: "blocks-out" },
        include: ["blocks"]
      })
    )
    writeFileSync(join(project, "provider.json"), readmeProviderJson)
    writeFileSync(join(project, "provider-json.mjs"), providerJsonProgram)
  }, 300_000)

  afterAll(() => rmSync(work, { recursive: true, force: true }))

  it("installs Effect 3 as the peer, one copy", () => {
    const installed = (name: string) => (JSON.parse(readFileSync(join(project, "node_modules", name, "package.json"), "utf8")) as { version: string }).version
    expect(installed("effect")).toMatch(/^3\./)
    expect(installed("@effect/platform")).toMatch(/^0\.9/)
    // no nested Effect under effect-llm: the user's program and the library share one
    expect(() => readFileSync(join(project, "node_modules", "effect-llm", "node_modules", "effect", "package.json"))).toThrow()
  })

  it("typechecks under NodeNext resolution and runs against the fake provider", async () => {
    await run(process.execPath, [tsc, "-p", "tsconfig.nodenext.json"], project)
    expect((await run(process.execPath, ["out/main.js"], project)).trim()).toBe("esm: hello from the fake")
  }, 120_000)

  it("typechecks under Bundler resolution", async () => {
    await run(process.execPath, [tsc, "-p", "tsconfig.bundler.json"], project)
  }, 120_000)

  it("is required from CommonJS, and runs the same", async () => {
    // Node 20.19+ can require ES modules; without that (as on Node 20.18) only a CommonJS build loads
    const noRequireEsm = process.allowedNodeEnvironmentFlags.has("--no-experimental-require-module") ? ["--no-experimental-require-module"] : []
    const out = await run(process.execPath, [...noRequireEsm, "main.cjs"], project)
    expect(out.trim().split("\n")).toEqual([join("dist", "cjs", "index.js"), "cjs: hello from the fake"])
  }, 60_000)

  it("typechecks under the older node (node10) resolution, its subpaths found through typesVersions", async () => {
    await run(process.execPath, [tsc, "-p", "tsconfig.node10.json"], project)
  }, 120_000)

  it("compiles every block of the README and the guides as written; each runnable one runs with no key and prints what it says", async () => {
    await run(process.execPath, [tsc, "-p", "tsconfig.blocks.json"], project)
    const runnable = blocks.filter((b) => b.runnable)
    expect(runnable.length).toBeGreaterThan(5)
    for (const block of runnable) {
      const out = await run(process.execPath, [join("blocks-out", `${blockName(block)}.js`)], project)
      expect({ block: `${block.file}:${block.line}`, out: out.trimEnd().split("\n") }).toEqual({ block: `${block.file}:${block.line}`, out: expectedOutput(block) })
    }
  }, 240_000)

  it("loads the README's own provider.json: its keyed model is ready, the keyless one fails alone, naming its entry", async () => {
    expect((await run(process.execPath, ["provider-json.mjs"], project)).trim().split("\n")).toEqual([
      "loaded: openai/gpt-4o-mini, my-vllm/qwen2.5-7b",
      "openai/gpt-4o-mini: ready",
      `my-vllm/qwen2.5-7b: provider.json at $.my-vllm[0].api_keys: no API key for "my-vllm" model "qwen2.5-7b": add "api_keys" to this entry, or set MY_VLLM_API_KEY to an API key, or a comma-separated list of keys`
    ])
  }, 60_000)

  it("effect-llm/Redis without ioredis says to install it, from ES modules and from CommonJS", async () => {
    expect(() => readFileSync(join(project, "node_modules", "ioredis", "package.json"))).toThrow()
    const esm = await attempt(process.execPath, ["--input-type=module", "-e", `await import("effect-llm/Redis")`], project)
    const cjs = await attempt(process.execPath, ["-e", `require("effect-llm/Redis")`], project)
    for (const result of [esm, cjs]) {
      expect(result.code).not.toBe(0)
      expect(result.stderr).toContain("effect-llm/Redis needs the ioredis package (an optional peer dependency): npm install ioredis")
    }
    // the main entry never needs it
    expect((await run(process.execPath, ["--input-type=module", "-e", `await import("effect-llm"); console.log("ok")`], project)).trim()).toBe("ok")
  }, 60_000)

  it("declares each module's overview, the comment that opens its source, in its declarations", () => {
    const installed = join(project, "node_modules", "effect-llm")
    const modules = readdirSync(join(installed, "src")).filter((f) => f.endsWith(".ts"))
    const missing = modules.flatMap((file) => {
      const overview = /^\/\*\*[\s\S]*?\*\//.exec(readFileSync(join(installed, "src", file), "utf8"))?.[0]
      if (overview === undefined || !overview.includes("@since")) return []
      return ["esm", "cjs"].flatMap((format) => {
        const declarations = readFileSync(join(installed, "dist", format, file.replace(/\.ts$/, ".d.ts")), "utf8")
        return declarations.startsWith(overview) ? [] : [`dist/${format}/${file.replace(/\.ts$/, ".d.ts")}`]
      })
    })
    expect(modules.length).toBeGreaterThan(20)
    expect(missing).toEqual([])
  })

  it("ships the examples the README links to, and names its repository", () => {
    const installed = join(project, "node_modules", "effect-llm")
    expect(readFileSync(join(installed, "examples", "provider.ts"), "utf8")).toContain("Provider.Spec")
    expect(readdirSync(join(installed, "docs"))).toContain("README.md")
    const pkg = JSON.parse(readFileSync(join(installed, "package.json"), "utf8")) as { repository?: { url?: string } }
    expect(pkg.repository?.url).toMatch(/^git\+https:\/\/github\.com\//)
  })

  it("ships a working bin", async () => {
    const bin = join(project, "node_modules", ".bin", "effect-llm")
    expect((await run(bin, ["chat", "hello", "--fake"], project)).trim()).toBe("echo: hello")
  }, 60_000)
})
