/**
 * The tool loop with an MCP server's tools on each of the five APIs, the fake provider playing
 * the model: what each tool result becomes in the API's own tool-result shape, and that no
 * failure of the server stops the loop. Over Streamable HTTP (`Testing.McpServer`): an image
 * result, an `isError` result, a hung call hitting its deadline, a connection dropped mid-reply
 * and a malformed reply, then a call that works again. Over stdio (a child process): a server
 * killed mid-call, after which its tools answer with `McpServerGoneError`.
 */
import { describe, expect, it } from "@effect/vitest"
import { type ConfigError, Deferred, Effect, Fiber, Layer, Schema, TestClock } from "effect"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import {
  Anthropic,
  Gemini,
  KeyPool,
  LanguageModel,
  Message,
  Ollama,
  OpenAiCompatible,
  OpenAiResponses,
  RateLimiter,
  Tool,
  Toolkit,
  Transport
} from "../src/index.js"
import * as Mcp from "../src/Mcp.js"
import * as Testing from "../src/Testing.js"

type Api = "chat" | "responses" | "anthropic" | "gemini" | "ollama"
const apis: ReadonlyArray<Api> = ["chat", "responses", "anthropic", "gemini", "ollama"]

const modelOf = (api: Api, fake: Testing.FakeProviderService): Layer.Layer<LanguageModel.LanguageModel, ConfigError.ConfigError> =>
  ({
    chat: () => OpenAiCompatible.layer({ model: "gpt-4o-mini", baseUrl: fake.baseUrl }),
    responses: () => OpenAiResponses.layer({ model: "gpt-5-mini", baseUrl: fake.baseUrl }),
    anthropic: () => Anthropic.layer({ model: "claude-sonnet-4-5", baseUrl: fake.url }),
    gemini: () => Gemini.layer({ model: "gemini-2.5-flash", baseUrl: `${fake.url}/v1beta` }),
    ollama: () => Ollama.layer({ model: "llama3.2", baseUrl: fake.url })
  })[api]().pipe(
    Layer.provide(KeyPool.layer({ providerId: api, keys: ["k-1"] })),
    Layer.provide(RateLimiter.unlimited),
    Layer.provide(Transport.layerUndici)
  )

const root = join(dirname(fileURLToPath(import.meta.url)), "..")
const redDot = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="

const Today = Tool.make("today", { description: "Today's date", parameters: Schema.Struct({}), success: Schema.String })
const Own = Toolkit.make(Today)
const OwnHandlers = Own.toLayer({ today: () => Effect.succeed("2026-12-07") })

/** The model's turns: each calls the tools named, with `{}`, or (`text`) ends. */
const scripted = (turns: ReadonlyArray<ReadonlyArray<string> | string>): Testing.Responder => (_request, turn) => {
  const step = turns[Math.min(turn.turn, turns.length - 1)]!
  return typeof step === "string"
    ? { text: step }
    : { toolCalls: step.map((name, i) => ({ id: `call_${turn.turn}_${i}`, name, arguments: name === "echo" ? "{\"text\":\"still here\"}" : "{}" })) }
}

describe.each(apis)("the tool loop with MCP tools on %s", (api) => {
  it.scoped("over Streamable HTTP: image and error results, a deadline, a dropped connection and a malformed reply, then a call that works", () =>
    Effect.gen(function*() {
      const started = yield* Deferred.make<void>()
      const server = yield* Testing.McpServer.make({
        tools: [
          { name: "chart", description: "Draws a chart", reply: { content: [{ type: "text", text: "sales by month" }, { type: "image", data: redDot, mimeType: "image/png" }] } },
          { name: "read", description: "Reads a note", reply: { isError: true, content: [{ type: "text", text: "no note named plans" }] } },
          { name: "slow", description: "Never answers", reply: () => Effect.zipRight(Deferred.succeed(started, undefined), Effect.never) },
          { name: "crash", description: "Drops the connection", fault: { _tag: "Disconnect" } },
          { name: "garble", description: "Answers garbage", fault: { _tag: "Malformed" } },
          {
            name: "echo",
            description: "Says it back",
            inputSchema: { type: "object", properties: { text: { type: "string" } }, required: ["text"] },
            reply: (args) => Effect.succeed(`echo: ${String(args.text)}`)
          }
        ]
      })
      const docs = yield* Mcp.connect(Mcp.http({ url: server.url }), { name: "docs", timeout: "5 seconds" })
      const toolkit = yield* Toolkit.merge(Own, yield* Mcp.toolkit(docs))
      const seen: Array<Testing.FakeTurn> = []
      const turns = scripted([["chart", "read", "today"], ["slow"], ["crash"], ["garble"], ["echo"], "done"])
      const fake = yield* Testing.FakeProvider.make({
        respond: (request, turn) => {
          seen.push(turn)
          return turns(request, turn)
        }
      })
      const fiber = yield* Effect.fork(
        LanguageModel.generateText({ request: Message.request("go"), toolkit, maxSteps: 8 }).pipe(
          Effect.provide(Layer.merge(modelOf(api, fake), OwnHandlers))
        )
      )
      // the hung call's deadline starts before the request leaves; the server has it now
      yield* Deferred.await(started)
      yield* TestClock.adjust("5 seconds")
      const result = yield* Fiber.join(fiber)

      expect(result.text).toBe("done")
      expect(result.steps).toHaveLength(6)
      const [first, slow, crash, garble, echo] = result.steps.map((step) => step.toolResults)
      expect(first!.map((r) => [r.name, r.isError])).toEqual([["chart", false], ["read", true], ["today", false]])
      // the image goes back as an image part, where every one of the five APIs takes it
      expect(first![0]!.content).toEqual([Message.text("sales by month"), Message.image({ base64: redDot }, { mediaType: "image/png" })])
      expect((first![0]!.value as Mcp.CallToolResult).content[1]).toEqual({ type: "image", data: redDot, mimeType: "image/png" })
      expect(first![1]!.content).toBe("no note named plans")
      expect(slow![0]).toMatchObject({ isError: true, error: { _tag: "McpTimeoutError", tool: "slow" } })
      expect(crash![0]).toMatchObject({ isError: true, error: { _tag: "McpDisconnectedError", tool: "crash" } })
      expect(garble![0]).toMatchObject({ isError: true, error: { _tag: "McpMalformedReplyError", tool: "garble" } })
      expect(echo![0]).toMatchObject({ isError: false, content: "echo: still here" })

      // what the model read, in this API's tool-result shape
      const texts = seen.map((turn) => turn.toolResults.map((r) => r.content))
      expect(texts[1]!.join("|")).toContain("sales by month")
      expect(texts[1]!.join("|")).not.toContain("[image")
      // Ollama's wire carries no media type
      expect(seen[1]!.media.map((m) => [m.kind, m.mediaType, m.bytes])).toEqual([["image", api === "ollama" ? undefined : "image/png", 70]])
      expect(texts[1]!.join("|")).toContain("no note named plans")
      expect(texts[1]!.join("|")).toContain("2026-12-07")
      expect(texts[2]!.join("|")).toContain("did not answer tools/call")
      expect(texts[3]!.join("|")).toContain("the reply stream broke")
      expect(texts[4]!.join("|")).toContain("not valid JSON-RPC")
      expect(texts[5]!.join("|")).toContain("echo: still here")
      expect((yield* server.calls).map((call) => call.name)).toEqual(["chart", "read", "slow", "crash", "garble", "echo"])
    }))

  it.scoped("over stdio: a server killed mid-call is a tool error, and its tools answer McpServerGoneError after", () =>
    Effect.gen(function*() {
      const notes = yield* Mcp.connect(Mcp.stdio({ command: process.execPath, args: [join(root, "test/support/mcpStdioServer.mjs")] }), { name: "notes" })
      const toolkit = yield* Toolkit.merge(Own, yield* Mcp.toolkit(notes, { allow: ["image", "fail", "crash", "echo"] }))
      const seen: Array<Testing.FakeTurn> = []
      const turns = scripted([["image", "fail"], ["crash"], ["echo", "today"], "done"])
      const fake = yield* Testing.FakeProvider.make({
        respond: (request, turn) => {
          seen.push(turn)
          return turns(request, turn)
        }
      })
      const result = yield* LanguageModel.generateText({ request: Message.request("go"), toolkit, maxSteps: 6 }).pipe(
        Effect.provide(Layer.merge(modelOf(api, fake), OwnHandlers))
      )
      expect(result.text).toBe("done")
      const [first, crash, after] = result.steps.map((step) => step.toolResults)
      expect(first!.map((r) => [r.isError, r.content])).toEqual([
        [false, [Message.text("a red dot"), Message.image({ base64: redDot }, { mediaType: "image/png" })]],
        [true, "ENOENT: no such file, notes/missing.md"]
      ])
      expect(crash![0]).toMatchObject({ isError: true, error: { _tag: "McpServerGoneError", tool: "crash" } })
      expect(crash![0]!.content).toContain("fatal: crashing on purpose")
      expect(after!.map((r) => [r.name, r.isError])).toEqual([["echo", true], ["today", false]])
      expect(after![0]!.error).toMatchObject({ _tag: "McpServerGoneError", tool: "echo" })
      const texts = seen.map((turn) => turn.toolResults.map((r) => r.content).join("|"))
      // Ollama's wire carries no media type
      expect(seen[1]!.media.map((m) => [m.kind, m.mediaType, m.bytes])).toEqual([["image", api === "ollama" ? undefined : "image/png", 70]])
      expect(texts[2]).toContain("is gone")
      expect(texts[3]).toContain("is gone")
      expect(texts[3]).toContain("2026-12-07")
    }))
})
