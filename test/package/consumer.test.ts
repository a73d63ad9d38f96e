/**
 * The package as a user gets it: `npm pack` (which builds), `npm install` of the tarball alone
 * into an empty project (its peers, Effect 3, come with it), then a program typechecked under
 * `NodeNext` and `Bundler` resolution and run against `effect-llm/Testing`'s fake provider,
 * the same from CommonJS with `require`, and the `effect-llm` bin.
 */
import { execFile } from "node:child_process"
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { createRequire } from "node:module"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"

const root = resolve(__dirname, "..", "..")
const tsc = createRequire(join(root, "package.json")).resolve("typescript/bin/tsc")
const work = mkdtempSync(join(tmpdir(), "effect-llm-consumer-"))
const project = join(work, "project")

// asynchronous: a blocked worker cannot answer vitest's own calls
const run = (command: string, args: ReadonlyArray<string>, cwd: string): Promise<string> =>
  new Promise((resolveRun, reject) =>
    execFile(command, args, { cwd, encoding: "utf8", env: { ...process.env, NO_COLOR: "1" } }, (error, stdout, stderr) =>
      error === null
        ? resolveRun(stdout)
        : reject(new Error(`${command} ${args.join(" ")} failed in ${cwd}:\n${stdout}\n${stderr || error.message}`))))

const program = `import { Console, Effect, Layer } from "effect"
import { KeyPool, LanguageModel, Message, OpenAiCompatible, RateLimiter, Transport } from "effect-llm"
import { FakeProvider } from "effect-llm/Testing"

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
    await run("npm", ["install", "--prefer-offline", "--no-audit", "--no-fund", "--loglevel=error", join(work, tarball), "@types/node@20"], project)
    writeFileSync(join(project, "main.ts"), program)
    writeFileSync(join(project, "main.cjs"), commonJs)
    writeFileSync(join(project, "tsconfig.nodenext.json"), tsconfig({ module: "NodeNext", moduleResolution: "NodeNext", outDir: "out" }))
    writeFileSync(join(project, "tsconfig.bundler.json"), tsconfig({ module: "ESNext", moduleResolution: "Bundler", noEmit: true }))
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

  it("ships a working bin", async () => {
    const bin = join(project, "node_modules", ".bin", "effect-llm")
    expect((await run(bin, ["chat", "hello", "--fake"], project)).trim()).toBe("echo: hello")
  }, 60_000)
})
