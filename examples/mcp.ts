/**
 * Tools from an MCP server in the tool loop: the program spawns a small notebook server
 * (examples/mcp/server.ts) over stdio, offers its tools next to one of its own, and runs the
 * loop. One call reads a note that does not exist: the server's error result goes back to the
 * model, which carries on. Closing the scope ends the server. Without OPENAI_API_KEY the fake
 * provider plays the model, answering each turn from the request it receives.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Config, ConfigProvider, Console, Effect, Layer, Schema } from "effect"
import { fileURLToPath } from "node:url"
import { KeyPool, LanguageModel, Message, OpenAiCompatible, RateLimiter, Tool, Toolkit, Transport } from "../src/index.js"
import * as Mcp from "../src/Mcp.js"
import * as Testing from "../src/Testing.js"

// 1. The server: a command the connection spawns, and ends with its scope.
const Notebook = Mcp.stdio({
  command: process.execPath,
  args: ["--import", "tsx", fileURLToPath(new URL("./mcp/server.ts", import.meta.url))],
  cwd: fileURLToPath(new URL("..", import.meta.url))
})

// 2. A tool of the program's own, to merge with the server's.
const Today = Tool.make("today", { description: "Today's date, YYYY-MM-DD", parameters: Schema.Struct({}), success: Schema.String })
const Own = Toolkit.make(Today)
const OwnHandlers = Own.toLayer({ today: () => Effect.succeed("2027-02-25") })

const program = Effect.gen(function* () {
  const notebook = yield* Mcp.connect(Notebook, { name: "notebook", timeout: "20 seconds" })
  const info = yield* notebook.serverInfo
  // 3. The server's tools as a Toolkit, merged with the program's (a name clash is refused here)
  const tools = yield* Toolkit.merge(Own, yield* Mcp.toolkit(notebook))
  yield* Console.log(`connected to ${info.name} ${info.version} (pid ${notebook.pid}); tools: ${tools.definitions.map((d) => d.name).join(", ")}`)

  const result = yield* LanguageModel.generateText({
    request: Message.request("How long is my trip note, and how many days until the trip?"),
    toolkit: tools,
    maxSteps: 5
  })
  for (const step of result.steps) {
    for (const [i, call] of step.toolCalls.entries()) {
      const outcome = step.toolResults[i]!
      yield* Console.log(`step ${step.index}: ${call.name}(${call.arguments}) -> ${outcome.isError ? "error: " : ""}${outcome.content}`)
    }
  }
  yield* Console.log(`answer: ${result.text}`)
  return notebook.pid
}).pipe(Effect.scoped)

// 4. The fake plays the model: it answers from the tool results it is sent.
const scripted: Testing.Responder = (_request, turn) => {
  switch (turn.turn) {
    case 0:
      return {
        toolCalls: [
          { id: "call_search", name: "search_notes", arguments: "{\"query\":\"trip\"}" },
          { id: "call_plans", name: "read_note", arguments: "{\"title\":\"plans\"}" },
          { id: "call_today", name: "today", arguments: "{}" }
        ]
      }
    case 1:
      return { toolCalls: [{ id: "call_count", name: "word_count", arguments: "{\"title\":\"trip\"}" }] }
    default: {
      const count = JSON.parse(turn.toolResults[0]!.content) as { words: number }
      return { text: `Your trip note has ${count.words} words; Lisbon starts March 3, 6 days from 2027-02-25.` }
    }
  }
}

const OpenAi = (baseUrl?: string) =>
  OpenAiCompatible.layer({ model: "gpt-4o-mini", baseUrl }).pipe(
    Layer.provide(KeyPool.layerConfig({ providerId: "openai", keys: Config.redacted("OPENAI_API_KEY") })),
    Layer.provide(RateLimiter.layer({ requestsPerMinute: 500, tokensPerMinute: 200_000 })),
    Layer.provide(Transport.layerUndici)
  )
const FakeOpenAi = Layer.unwrapScoped(
  Effect.map(Testing.FakeProvider.make({ respond: scripted }), (fake) => OpenAi(fake.baseUrl))
).pipe(Layer.provide(Layer.setConfigProvider(ConfigProvider.fromJson({ OPENAI_API_KEY: "sk-fake" }))))

const main = program.pipe(
  Effect.tap((pid) => {
    // the scope is closed: the server process is gone
    let running = true
    try {
      process.kill(pid!, 0)
    } catch {
      running = false
    }
    return Console.log(`scope closed; the server process ${running ? "is still running" : "has exited"}`)
  }),
  Effect.provide(Layer.merge(process.env.OPENAI_API_KEY ? OpenAi() : FakeOpenAi, OwnHandlers))
)

NodeRuntime.runMain(main)
