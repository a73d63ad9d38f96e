/**
 * effect-llm/Mcp against real MCP servers built with the SDK's server classes: one over stdio
 * (test/support/mcpStdioServer.mjs, a child process) and `Testing.McpServer` over Streamable
 * HTTP on loopback. The tool loops of the five APIs over them are in Mcp.loop.test.ts.
 */
import { describe, expect, it, layer } from "@effect/vitest"
import { Cause, ConfigError, Context, Effect, Exit, Fiber, Layer, Logger, Option, Redacted, Schema, Scope, TestClock, Tracer } from "effect"
import { existsSync, mkdtempSync, readFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import * as Sdk from "../src/internal/mcp/sdk.js"
import { makeMcpServerWith } from "../src/internal/testing/mcpServer.js"
import { LanguageModel, Message, Tool, Toolkit } from "../src/index.js"
import * as Mcp from "../src/Mcp.js"
import * as Testing from "../src/Testing.js"

const root = join(dirname(fileURLToPath(import.meta.url)), "..")
const stdioServer = Mcp.stdio({ command: process.execPath, args: [join(root, "test/support/mcpStdioServer.mjs")] })

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/** Real time passing, for waits on another process under the TestClock. */
const tick = (ms = 5) => Effect.promise(() => new Promise<void>((resolve) => setTimeout(resolve, ms)))

/** Waits (in real time) until the TestClock has a sleep pending: a deadline has started. */
const untilDeadlineStarts = Effect.gen(function*() {
  for (let i = 0; i < 2000; i++) {
    if ((yield* TestClock.sleeps()).length > 0) return
    yield* tick()
  }
  throw new Error("no deadline started")
})

const textOf = (result: Mcp.CallToolResult) => result.content.map((block) => (block.type === "text" ? block.text : `<${block.type}>`)).join(" | ")

// ---------------------------------------------------------------------------
// stdio
// ---------------------------------------------------------------------------

/** One stdio server, shared by the tests that leave it running. */
class Notes extends Context.Tag("test/Mcp/Notes")<Notes, Mcp.Connection>() {}
const NotesLive = Layer.scoped(Notes, Mcp.connect(stdioServer, { name: "notes", timeout: "5 seconds" }))

layer(NotesLive)("Mcp over stdio, one server for several calls", (it) => {
  it.effect("lists the server's tools with their JSON Schemas and calls them", () =>
    Effect.gen(function*() {
      const notes = yield* Notes
      expect(notes.transport).toBe("stdio")
      expect(yield* notes.serverInfo).toEqual({ name: "test-stdio-server", version: "1.0.0" })
      const tools = yield* notes.listTools
      const echo = tools.find((tool) => tool.name === "echo")!
      expect(echo.description).toBe("Says the text back")
      expect(echo.inputSchema).toEqual({ type: "object", properties: { text: { type: "string" } }, required: ["text"] })
      expect(textOf(yield* notes.callTool("echo", { text: "hello" }))).toBe("echo: hello")

      const toolkit = yield* Mcp.toolkit(notes)
      expect(toolkit.definitions.find((d) => d.name === "echo")).toEqual({
        name: "echo",
        description: "Says the text back",
        parameters: echo.inputSchema,
        strict: false
      })
      expect(Tool.isDynamic(toolkit.tools.echo!)).toBe(true)
    }))

  it.effect("a JSON-RPC error from the server is McpRpcError", () =>
    Effect.gen(function*() {
      const notes = yield* Notes
      const error = yield* Effect.flip(notes.callTool("no_such_tool"))
      expect(error).toMatchObject({ _tag: "McpRpcError", code: -32602, message: "Tool no_such_tool not found", tool: "no_such_tool" })
    }))

  it.effect("a line that is not JSON-RPC fails the call in flight, typed; the connection goes on", () =>
    Effect.gen(function*() {
      const notes = yield* Notes
      const garbled = yield* Effect.flip(notes.callTool("garble"))
      expect(garbled).toMatchObject({ _tag: "McpMalformedReplyError", server: "notes", tool: "garble" })
      expect(garbled.message).toContain("this is not json")
      expect(textOf(yield* notes.callTool("echo", { text: "after" }))).toBe("echo: after")
    }))

  it.effect("a hung call fails at its deadline with McpTimeoutError; the next call is answered", () =>
    Effect.gen(function*() {
      const notes = yield* Notes
      const fiber = yield* Effect.fork(Effect.flip(notes.callTool("hang")))
      yield* untilDeadlineStarts
      yield* TestClock.adjust("5 seconds")
      const error = yield* Fiber.join(fiber)
      expect(error).toMatchObject({ _tag: "McpTimeoutError", server: "notes", tool: "hang", operation: "tools/call", timeoutMillis: 5000 })
      expect(error.message).toBe(`the MCP server "notes" did not answer tools/call "hang" within 5000 ms`)
      expect(textOf(yield* notes.callTool("echo", { text: "next" }))).toBe("echo: next")
    }))
})

describe("Mcp over stdio", () => {
  it.effect("ends the server process when the scope closes", () =>
    Effect.gen(function*() {
      const pid = yield* Effect.scoped(Effect.gen(function*() {
        const notes = yield* Mcp.connect(stdioServer, { name: "notes" })
        const pid = Number(textOf(yield* notes.callTool("pid")))
        expect(pid).toBe(notes.pid)
        expect(alive(pid)).toBe(true)
        return pid
      }))
      expect(alive(pid)).toBe(false)
    }))

  it.live("leaves no process behind when connecting is interrupted, even one that ignores its closed input", () =>
    Effect.gen(function*() {
      const dir = mkdtempSync(join(tmpdir(), "mcp-"))
      const pidFile = join(dir, "pid")
      // a server that never answers the handshake and does not read its input: ended by SIGTERM
      const silent = Mcp.stdio({
        command: process.execPath,
        args: ["-e", `require("fs").writeFileSync(${JSON.stringify(pidFile)}, String(process.pid)); setInterval(() => {}, 1000)`]
      })
      const fiber = yield* Effect.fork(Effect.scoped(Mcp.connect(silent, { connectTimeout: "1 minute" })))
      while (!existsSync(pidFile) || readFileSync(pidFile, "utf8") === "") yield* tick(10)
      const pid = Number(readFileSync(pidFile, "utf8"))
      expect(alive(pid)).toBe(true)
      yield* Fiber.interrupt(fiber)
      expect(alive(pid)).toBe(false)
    }), 15_000)

  it.scoped("a server that dies mid-call fails that call and every later one with McpServerGoneError", () =>
    Effect.gen(function*() {
      const notes = yield* Mcp.connect(stdioServer, { name: "notes" })
      expect(yield* notes.failure).toEqual(Option.none())
      const crashed = yield* Effect.flip(notes.callTool("crash"))
      expect(crashed._tag).toBe("McpServerGoneError")
      expect(crashed).toMatchObject({ server: "notes", tool: "crash" })
      expect(crashed.message).toContain("is gone; its last output on stderr: fatal: crashing on purpose")
      const later = yield* Effect.flip(notes.callTool("echo", { text: "still there?" }))
      expect(later).toMatchObject({ _tag: "McpServerGoneError", tool: "echo" })
      expect(Option.isSome(yield* notes.failure)).toBe(true)
      expect(alive(notes.pid!)).toBe(false)
    }))

  it.scoped("a command that does not start is McpConnectError", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Mcp.connect(Mcp.stdio({ command: join(root, "no-such-server") })))
      expect(error._tag).toBe("McpConnectError")
      expect(error.message).toContain("ENOENT")
    }))
})

// ---------------------------------------------------------------------------
// Options and the SDK
// ---------------------------------------------------------------------------

describe("Mcp options", () => {
  it.scoped("an option the user got wrong is a ConfigError naming it", () =>
    Effect.gen(function*() {
      const wrong = (server: Mcp.Server, options: Mcp.ConnectOptions) => Effect.flip(Mcp.connect(server, options))
      const http = Mcp.http({ url: "http://127.0.0.1:1/mcp" })
      const cases: ReadonlyArray<readonly [Effect.Effect<unknown, Mcp.Connection, import("effect/Scope").Scope>, string]> = [
        [wrong(http, { timeout: -1 }), "timeout"],
        [wrong(http, { connectTimeout: "0 seconds" }), "connectTimeout"],
        [wrong(http, { maxResultBytes: 0 }), "maxResultBytes"],
        [wrong(Mcp.http({ url: "ftp://example.com" }), {}), "url"],
        [wrong(Mcp.http({ url: "not a url" }), {}), "url"],
        [wrong(Mcp.stdio({ command: "" }), {}), "command"]
      ]
      for (const [effect, option] of cases) {
        const error = yield* effect
        expect(ConfigError.isConfigError(error), option).toBe(true)
        expect((error as ConfigError.ConfigError & { path: Array<string> }).path).toEqual([option])
      }
    }))

  it.effect("without the SDK, the loader's failure is that error (ESM and CommonJS codes)", () =>
    Effect.gen(function*() {
      for (const code of ["ERR_MODULE_NOT_FOUND", "MODULE_NOT_FOUND"]) {
        const error = yield* Effect.flip(Sdk.loadWith("notes", () => Promise.reject(Object.assign(new Error("missing"), { code }))))
        expect(error).toMatchObject({ _tag: "McpConnectError", server: "notes" })
        expect(error.message).toBe("effect-llm/Mcp needs the MCP SDK, an optional peer dependency that is not installed: npm install @modelcontextprotocol/sdk")
      }
      const other = yield* Effect.flip(Sdk.loadWith("notes", () => Promise.reject(new Error("boom"))))
      expect(other.message).toBe("could not load @modelcontextprotocol/sdk: boom")
    }))

  it.scoped("Testing.McpServer without the SDK dies with the install command, not Node's message", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(makeMcpServerWith({ tools: [] }, () => Promise.reject(Object.assign(new Error("Cannot find package"), { code: "ERR_MODULE_NOT_FOUND" }))))
      expect(Exit.isFailure(exit) && Cause.isDie(exit.cause)).toBe(true)
      expect(String(Exit.isFailure(exit) && Cause.squash(exit.cause))).toContain("npm install @modelcontextprotocol/sdk")
    }))
})

// ---------------------------------------------------------------------------
// Streamable HTTP
// ---------------------------------------------------------------------------

const echoTool: Testing.McpServerTool = {
  name: "echo",
  description: "Says the text back",
  inputSchema: { type: "object", properties: { text: { type: "string" } }, required: ["text"] },
  reply: (args) => Effect.succeed(`echo: ${String(args.text)}`)
}

describe("Mcp over Streamable HTTP", () => {
  it.scoped("connects with headers, lists and calls tools; the server's name defaults to the URL's host", () =>
    Effect.gen(function*() {
      const server = yield* Testing.McpServer.make({ tools: [echoTool], name: "scripted" })
      const docs = yield* Mcp.connect(Mcp.http({ url: server.url, headers: { "x-team": "search" } }))
      expect(docs.name).toBe(new URL(server.url).host)
      expect(docs.transport).toBe("http")
      expect((yield* docs.serverInfo).name).toBe("scripted")
      expect((yield* docs.listTools).map((tool) => tool.name)).toEqual(["echo"])
      expect(textOf(yield* docs.callTool("echo", { text: "over http" }))).toBe("echo: over http")
      const calls = yield* server.calls
      expect(calls).toHaveLength(1)
      expect(calls[0]).toMatchObject({ name: "echo", arguments: { text: "over http" } })
      expect(calls[0]!.headers["x-team"]).toBe("search")
    }))

  it.scoped("a connection dropped mid-reply fails that call at once; the next call opens a new session", () =>
    Effect.gen(function*() {
      const server = yield* Testing.McpServer.make({ tools: [echoTool] })
      const docs = yield* Mcp.connect(Mcp.http({ url: server.url }), { name: "docs" })
      yield* server.inject({ _tag: "Disconnect" })
      const dropped = yield* Effect.flip(docs.callTool("echo", { text: "lost" }))
      expect(dropped).toMatchObject({ _tag: "McpDisconnectedError", server: "docs", tool: "echo" })
      expect(dropped.message).toContain("the reply stream broke")
      expect(textOf(yield* docs.callTool("echo", { text: "again" }))).toBe("echo: again")
    }))

  it.scoped("a server that restarted (404 for the session) is reconnected and the call sent again", () =>
    Effect.gen(function*() {
      const server = yield* Testing.McpServer.make({ tools: [echoTool] })
      const docs = yield* Mcp.connect(Mcp.http({ url: server.url }), { name: "docs" })
      yield* server.restart
      expect(textOf(yield* docs.callTool("echo", { text: "after restart" }))).toBe("echo: after restart")
      // the first attempt reached the server and was refused with the old session
      expect((yield* server.calls).map((call) => call.name)).toEqual(["echo", "echo"])
    }))

  it.scoped("a server that is down fails the call with McpDisconnectedError; once back up, the next call reconnects", () =>
    Effect.gen(function*() {
      const first = yield* Scope.make()
      const server = yield* Testing.McpServer.make({ tools: [echoTool] }).pipe(Scope.extend(first))
      const docs = yield* Mcp.connect(Mcp.http({ url: server.url }), { name: "docs" })
      expect(textOf(yield* docs.callTool("echo", { text: "up" }))).toBe("echo: up")
      yield* Scope.close(first, Exit.void)
      const down = yield* Effect.flip(docs.callTool("echo", { text: "down" }))
      expect(down).toMatchObject({ _tag: "McpDisconnectedError", server: "docs", tool: "echo" })
      expect(down.message).toContain("fetch failed")
      // the same server back on the same port: a new session, the call answered
      const again = yield* Testing.McpServer.make({ tools: [echoTool], port: Number(new URL(server.url).port) })
      expect(textOf(yield* docs.callTool("echo", { text: "back" }))).toBe("echo: back")
      expect((yield* again.calls).map((call) => call.arguments)).toEqual([{ text: "back" }])
    }))

  it.scoped("a reply that is not JSON-RPC is McpMalformedReplyError", () =>
    Effect.gen(function*() {
      const server = yield* Testing.McpServer.make({ tools: [echoTool] })
      const docs = yield* Mcp.connect(Mcp.http({ url: server.url }), { name: "docs" })
      yield* server.inject({ _tag: "Malformed" })
      const error = yield* Effect.flip(docs.callTool("echo", { text: "x" }))
      expect(error).toMatchObject({ _tag: "McpMalformedReplyError", tool: "echo" })
      expect(textOf(yield* docs.callTool("echo", { text: "fine" }))).toBe("echo: fine")
    }))

  it.scoped("a hung call fails at its deadline", () =>
    Effect.gen(function*() {
      const server = yield* Testing.McpServer.make({ tools: [echoTool] })
      const docs = yield* Mcp.connect(Mcp.http({ url: server.url }), { name: "docs", timeout: "3 seconds" })
      yield* server.inject({ _tag: "Hang" })
      const fiber = yield* Effect.fork(Effect.flip(docs.callTool("echo", { text: "x" })))
      yield* untilDeadlineStarts
      yield* TestClock.adjust("3 seconds")
      expect(yield* Fiber.join(fiber)).toMatchObject({ _tag: "McpTimeoutError", tool: "echo", timeoutMillis: 3000 })
    }))

  it.scoped("a result over maxResultBytes is McpResultTooLargeError; a reply far over it is not even read", () =>
    Effect.gen(function*() {
      const big = "x".repeat(5000)
      const huge = "y".repeat(1_200_000)
      const server = yield* Testing.McpServer.make({
        tools: [{ name: "big", reply: big }, { name: "huge", reply: huge }, { name: "small", reply: "ok" }]
      })
      const docs = yield* Mcp.connect(Mcp.http({ url: server.url }), { name: "docs", maxResultBytes: 4000 })
      expect(yield* Effect.flip(docs.callTool("big"))).toMatchObject({ _tag: "McpResultTooLargeError", tool: "big", bytes: 5000, limit: 4000 })
      const cut = yield* Effect.flip(docs.callTool("huge"))
      expect(cut).toMatchObject({ _tag: "McpResultTooLargeError", tool: "huge", limit: 4000 })
      expect((cut as Mcp.McpResultTooLargeError).bytes).toBeGreaterThan(4 * 4000 + 1024 * 1024)
      expect(textOf(yield* docs.callTool("small"))).toBe("ok")
    }))

  it.scoped("no secret from the headers or the URL appears in errors, logs or spans", () =>
    Effect.gen(function*() {
      const token = "sk-mcp-SECRET-4f1c9a77"
      const apiKey = "key-SECRET-b2d4e6"
      const queryToken = "qs-SECRET-c0ffee"
      const spans: Array<{ name: string; attributes: Map<string, unknown> }> = []
      const tracer = Tracer.make({
        span: (name, parent, context, links, startTime, kind) => {
          const attributes = new Map<string, unknown>()
          spans.push({ name, attributes })
          return {
            _tag: "Span", name, spanId: String(spans.length), traceId: "t", parent, context, status: { _tag: "Started", startTime },
            attributes, links, sampled: true, kind, end: () => undefined, attribute: (k, v) => void attributes.set(k, v),
            event: () => undefined, addLinks: () => undefined
          }
        },
        context: (f) => f()
      })
      const logs: Array<string> = []
      const logger = Logger.replace(Logger.defaultLogger, Logger.make(({ message }) => void logs.push(JSON.stringify(message))))
      const server = yield* Testing.McpServer.make({ tools: [echoTool] })
      const url = new URL(server.url)
      url.searchParams.set("token", queryToken)
      const errors = yield* Effect.gen(function*() {
        const docs = yield* Mcp.connect(Mcp.http({
          url: url.toString(),
          headers: { authorization: Redacted.make(`Bearer ${token}`), "x-api-key": apiKey }
        }), { name: "docs" })
        expect(textOf(yield* docs.callTool("echo", { text: "hi" }))).toBe("echo: hi")
        // a server that echoes the request's headers in its error page
        yield* server.inject(
          { _tag: "Status", status: 401, body: `unauthorized: Bearer ${token} / ${apiKey} / ${queryToken}` },
          { _tag: "Malformed", body: `{"echo": "${token}` },
          { _tag: "Status", status: 500, body: `boom ${apiKey}` }
        )
        const found: Array<unknown> = []
        for (let i = 0; i < 3; i++) found.push(yield* Effect.flip(docs.callTool("echo", { text: "x" })))
        const toolkit = yield* Mcp.toolkit(docs)
        const loop = yield* LanguageModel.generateText({ request: Message.request("go"), toolkit, maxSteps: 2 }).pipe(
          Effect.provide(Testing.mockModel([{ toolCalls: [{ name: "echo", params: { text: "y" } }] }, "done"]))
        )
        found.push(loop.steps[0]!.toolResults[0])
        return found
      }).pipe(Effect.withTracer(tracer), Effect.provide(logger))
      // the secrets did reach the server
      const headers = (yield* server.calls)[0]!.headers
      expect(headers.authorization).toBe(`Bearer ${token}`)
      expect(headers["x-api-key"]).toBe(apiKey)
      expect(errors.map((e) => (e as { _tag?: string })._tag).slice(0, 3)).toEqual(["McpDisconnectedError", "McpMalformedReplyError", "McpDisconnectedError"])
      expect((errors[0] as Mcp.McpDisconnectedError).status).toBe(401)
      const seen = [
        ...errors.map((e) => JSON.stringify(e) + String((e as Error).message)),
        ...logs,
        ...spans.map((s) => s.name + JSON.stringify([...s.attributes]))
      ].join("\n")
      expect(seen).toContain("<redacted>")
      expect(spans.map((s) => s.name)).toEqual(expect.arrayContaining(["Mcp.connect", "Mcp.callTool", "Mcp.listTools"]))
      for (const secret of [token, apiKey, queryToken]) expect(seen).not.toContain(secret)
    }))

  it.scoped("a URL's user and password go as Basic authorization (fetch refuses them in the URL), masked like the rest", () =>
    Effect.gen(function*() {
      const server = yield* Testing.McpServer.make({ tools: [echoTool] })
      const url = new URL(server.url)
      url.username = "reader"
      url.password = "pw-SECRET-77"
      const docs = yield* Mcp.connect(Mcp.http({ url: url.toString() }), { name: "docs" })
      yield* docs.callTool("echo", { text: "x" })
      const basic = `Basic ${Buffer.from("reader:pw-SECRET-77").toString("base64")}`
      expect((yield* server.calls)[0]!.headers.authorization).toBe(basic)
      yield* server.inject({ _tag: "Status", status: 403, body: `denied: ${basic}` })
      const error = yield* Effect.flip(docs.callTool("echo", { text: "x" }))
      expect(error.message).toContain("denied: <redacted>")
      expect(error.message).not.toContain("pw-SECRET-77")
    }))
})

// ---------------------------------------------------------------------------
// Toolkit
// ---------------------------------------------------------------------------

const Today = Tool.make("today", { description: "Today's date", parameters: Schema.Struct({}), success: Schema.String })
const Own = Toolkit.make(Today)
const OwnHandlers = Own.toLayer({ today: () => Effect.succeed("2026-12-07") })

describe("Mcp.toolkit", () => {
  it.scoped("offers only the allowed tools, with a prefix, names made acceptable to every API", () =>
    Effect.gen(function*() {
      const server = yield* Testing.McpServer.make({ tools: [echoTool, { name: "files.read", reply: "content" }, { name: "drop", reply: "gone" }] })
      const docs = yield* Mcp.connect(Mcp.http({ url: server.url }), { name: "docs" })
      const toolkit = yield* Mcp.toolkit(docs, { allow: ["echo", "files.read", "missing"], prefix: "docs_" })
      expect(toolkit.definitions.map((d) => d.name)).toEqual(["docs_echo", "docs_files_read"])
      const result = yield* LanguageModel.generateText({ request: Message.request("go"), toolkit, maxSteps: 2 }).pipe(
        Effect.provide(Testing.mockModel([{ toolCalls: [{ name: "docs_files_read", params: {} }, { name: "drop", params: {} }] }, "done"]))
      )
      const [read, drop] = result.steps[0]!.toolResults
      expect(read).toMatchObject({ isError: false, content: "content" })
      expect(drop!.isError).toBe(true)
      expect(drop!.content).toContain("there is no tool named \\\"drop\\\"")
      expect((yield* server.calls).map((call) => call.name)).toEqual(["files.read"])
    }))

  it.scoped("checks the arguments against the JSON Schema before calling: the model gets the problem back", () =>
    Effect.gen(function*() {
      const server = yield* Testing.McpServer.make({ tools: [echoTool] })
      const docs = yield* Mcp.connect(Mcp.http({ url: server.url }), { name: "docs" })
      const toolkit = yield* Mcp.toolkit(docs)
      const result = yield* LanguageModel.generateText({ request: Message.request("go"), toolkit, maxSteps: 3 }).pipe(
        Effect.provide(Testing.mockModel([
          { toolCalls: [{ name: "echo", params: { text: 42 } }] },
          { toolCalls: [{ name: "echo", params: { text: "fixed" } }] },
          "done"
        ]))
      )
      const bad = result.steps[0]!.toolResults[0]!
      expect(bad.isError).toBe(true)
      expect(bad.content).toContain("the arguments of echo are invalid")
      expect(bad.content).toContain("must be string")
      expect(result.steps[1]!.toolResults[0]).toMatchObject({ isError: false, content: "echo: fixed" })
      expect((yield* server.calls).map((call) => call.arguments)).toEqual([{ text: "fixed" }])
    }))

  it.scoped("merges with the program's own tools; a clash is refused naming both", () =>
    Effect.gen(function*() {
      const server = yield* Testing.McpServer.make({ tools: [echoTool, { name: "today", reply: "server's today" }] })
      const docs = yield* Mcp.connect(Mcp.http({ url: server.url }), { name: "docs" })
      const clash = yield* Effect.flip(Effect.flatMap(Mcp.toolkit(docs), (mcp) => Toolkit.merge(Own, mcp)))
      expect(clash._tag).toBe("ToolNameClashError")
      expect(clash.message).toBe(`two tools are named "today": the tool "today" of toolkit 1, and the tool "today" of the MCP server "docs"`)

      const tools = yield* Toolkit.merge(Own, yield* Mcp.toolkit(docs, { allow: ["echo"] }))
      expect(tools.definitions.map((d) => d.name)).toEqual(["today", "echo"])
      const result = yield* LanguageModel.generateText({ request: Message.request("go"), toolkit: tools, maxSteps: 2 }).pipe(
        Effect.provide(Testing.mockModel([{ toolCalls: [{ name: "today", params: {} }, { name: "echo", params: { text: "both" } }] }, "done"])),
        Effect.provide(OwnHandlers)
      )
      expect(result.steps[0]!.toolResults.map((r) => r.content)).toEqual(["\"2026-12-07\"", "echo: both"])
    }))

  it.scoped("a tools/list_changed notification refreshes the list for the next step; a new clash is left out", () =>
    Effect.gen(function*() {
      const extra: Testing.McpServerTool = { name: "extra", reply: "extra ran" }
      const today: Testing.McpServerTool = { name: "today", reply: "clash" }
      const install: Testing.McpServerTool = {
        name: "install",
        reply: (_, call) => Effect.as(call.setTools([echoTool, extra, today]), "installed")
      }
      const server = yield* Testing.McpServer.make({ tools: [echoTool, install] })
      const docs = yield* Mcp.connect(Mcp.http({ url: server.url }), { name: "docs" })
      const tools = yield* Toolkit.merge(Own, yield* Mcp.toolkit(docs))
      const offered: Array<ReadonlyArray<string>> = []
      const result = yield* LanguageModel.generateText({ request: Message.request("go"), toolkit: tools, maxSteps: 3 }).pipe(
        Effect.provide(Testing.mockModel({
          steps: (request, n) => {
            offered.push((request.tools ?? []).map((t) => t.name))
            return n === 0 ? { toolCalls: [{ name: "install", params: {} }] } : n === 1 ? { toolCalls: [{ name: "extra", params: {} }] } : "done"
          }
        })),
        Effect.provide(OwnHandlers)
      )
      expect(offered[0]).toEqual(["today", "echo", "install"])
      expect(offered[1]).toEqual(["today", "echo", "extra"])
      expect(result.steps[1]!.toolResults[0]).toMatchObject({ isError: false, content: "extra ran" })
    }))

  it.live("a change the server announces on its own (the session's standing stream) reaches the toolkit", () =>
    Effect.scoped(Effect.gen(function*() {
      const server = yield* Testing.McpServer.make({ tools: [echoTool] })
      const docs = yield* Mcp.connect(Mcp.http({ url: server.url }), { name: "docs" })
      const toolkit = yield* Mcp.toolkit(docs)
      expect(toolkit.definitions.map((d) => d.name)).toEqual(["echo"])
      // the notification goes on the stream the client opens after the handshake: sent until it has
      for (let i = 0; i < 200 && toolkit.definitions.length === 1; i++) {
        yield* server.setTools([echoTool, { name: "extra", reply: "x" }])
        yield* tick(20)
        yield* toolkit.refresh ?? Effect.void
      }
      expect(toolkit.definitions.map((d) => d.name)).toEqual(["echo", "extra"])
    })))

  it.scoped("over stdio, a server's list change reaches the next step too", () =>
    Effect.gen(function*() {
      const notes = yield* Mcp.connect(stdioServer, { name: "notes" })
      const toolkit = yield* Mcp.toolkit(notes, { allow: ["add_tool", "extra"] })
      const offered: Array<ReadonlyArray<string>> = []
      const result = yield* LanguageModel.generateText({ request: Message.request("go"), toolkit, maxSteps: 3 }).pipe(
        Effect.provide(Testing.mockModel({
          steps: (request, n) => {
            offered.push((request.tools ?? []).map((t) => t.name))
            return n === 0 ? { toolCalls: [{ name: "add_tool", params: {} }] } : n === 1 ? { toolCalls: [{ name: "extra", params: {} }] } : "done"
          }
        }))
      )
      expect(offered.slice(0, 2)).toEqual([["add_tool"], ["add_tool", "extra"]])
      expect(result.steps[1]!.toolResults[0]).toMatchObject({ content: "extra ran" })
    }))

  it.scoped("a toolkit is built once per connection's list; its layer needs no handler", () =>
    Effect.gen(function*() {
      const server = yield* Testing.McpServer.make({ tools: [echoTool] })
      const docs = yield* Mcp.connect(Mcp.http({ url: server.url }), { name: "docs" })
      const toolkit = yield* Mcp.toolkit(docs)
      const context = yield* Layer.build(toolkit.toLayer({}))
      expect(Context.isContext(context)).toBe(true)
      expect(Exit.isSuccess(yield* Effect.exit(Mcp.toolkit(docs, { prefix: "bad prefix" })))).toBe(false)
    }))
})
