/**
 * A conversation (`Chat`) that remembers across turns, saved as JSON and restored, and the same
 * model streamed to a browser as Server-Sent Events from @effect/platform's HTTP server: here a
 * server on a free loopback port, read once by `fetch`. No key: the fake provider answers.
 */
import { HttpRouter, HttpServer } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { Console, Effect, Layer, Ref } from "effect"
import { createServer } from "node:http"
import { Chat, LanguageModel, Message, ServerSentEvents, Transport } from "../src/index.js"
import * as Testing from "../src/Testing.js"

// the fake replies to the last user message, so the turns are checkable
const Model = Testing.FakeProvider.layerModel("gpt-4o-mini", {
  respond: (_request, turn) => ({ text: turn.lastUserText === "What is my name?" ? "Your name is Ada." : "Noted.", chunks: 4 })
}).pipe(Layer.provide(Transport.layerUndici))

const conversation = Effect.gen(function* () {
  const chat = yield* Chat.make({ system: "You are terse." })
  yield* chat.generateText({ prompt: "My name is Ada." })
  const saved = yield* chat.exportJson
  yield* Console.log(`saved ${saved.length} characters of JSON`)
  const restored = yield* Chat.fromJson(saved)
  const reply = yield* restored.generateText({ prompt: "What is my name?" })
  yield* Console.log(`restored, asked again: ${reply.text}`)
  const roles = (yield* Ref.get(restored.history)).map((message) => message.role)
  yield* Console.log(`history: ${roles.join(", ")}`)
  yield* Console.log(`last: ${Message.contentText((yield* Ref.get(restored.history)).at(-1)!)}`)
})

const served = Effect.gen(function* () {
  const routes = HttpRouter.empty.pipe(
    HttpRouter.get("/chat", ServerSentEvents.response(LanguageModel.streamText({ prompt: "What is my name?" })))
  )
  yield* HttpServer.serveEffect(routes)
  const address = (yield* HttpServer.HttpServer).address
  const port = address._tag === "TcpAddress" ? address.port : 0
  const body = yield* Effect.promise(() => fetch(`http://127.0.0.1:${port}/chat`).then((response) => response.text()))
  const events = body.split("\n").filter((line) => line.startsWith("event: ")).map((line) => line.slice(7))
  yield* Console.log(`served as Server-Sent Events: ${events.join(" ")}`)
}).pipe(Effect.provide(NodeHttpServer.layer(createServer, { port: 0, host: "127.0.0.1" })))

Effect.runPromise(Effect.scoped(Effect.andThen(conversation, served)).pipe(Effect.provide(Model)))
