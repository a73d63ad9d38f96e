/** Chat: a conversation that sends its history with each turn and appends the turns that succeed. */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Fiber, Layer, Ref, Schema, Stream, TestClock } from "effect"
import { Chat, LanguageModel, LlmError, Message, Tool, Toolkit } from "../src/index.js"
import * as Testing from "../src/Testing.js"

const Lookup = Tool.make("lookup", { parameters: Schema.Struct({ key: Schema.String }), success: Schema.Struct({ value: Schema.Number }) })
const Kit = Toolkit.make(Lookup)
const handlers = Kit.toLayer({ lookup: ({ key }) => Effect.succeed({ value: key.length }) })

const withMock = (steps: ReadonlyArray<Testing.MockStep>) =>
  Effect.map(Testing.makeMockModel({ steps }), (mock) => ({ mock, model: Layer.succeed(LanguageModel.LanguageModel, mock.service) }))

describe("Chat", () => {
  it.effect("each turn sends the conversation so far, and appends itself when it succeeds", () =>
    Effect.gen(function* () {
      const { mock, model } = yield* withMock(["Hello, Ada.", "Your name is Ada."])
      const chat = yield* Chat.make({ system: "Be terse." })
      yield* chat.generateText({ prompt: "My name is Ada." }).pipe(Effect.provide(model))
      const reply = yield* chat.generateText({ prompt: "What is my name?", temperature: 0 }).pipe(Effect.provide(model))
      expect(reply.text).toBe("Your name is Ada.")
      const [first, second] = yield* mock.requests
      expect(first!.messages).toEqual([Message.system("Be terse."), Message.user("My name is Ada.")])
      expect(second!.messages.map((m) => [m.role, Message.contentText(m)])).toEqual([
        ["system", "Be terse."],
        ["user", "My name is Ada."],
        ["assistant", "Hello, Ada."],
        ["user", "What is my name?"]
      ])
      expect(second!.temperature).toBe(0)
      expect((yield* Ref.get(chat.history)).map((m) => m.role)).toEqual(["system", "user", "assistant", "user", "assistant"])
    }))

  it.effect("a tool loop's whole transcript is appended: calls and results too", () =>
    Effect.gen(function* () {
      const { model } = yield* withMock([{ toolCalls: [{ name: "lookup", params: { key: "abc" } }] }, "It is 3."])
      const chat = yield* Chat.empty
      const result = yield* chat.generateText({ prompt: "Look up abc.", toolkit: Kit, maxSteps: 3 }).pipe(Effect.provide(Layer.merge(model, handlers)))
      expect(result.text).toBe("It is 3.")
      expect((yield* Ref.get(chat.history)).map((m) => m.role)).toEqual(["user", "assistant", "tool", "assistant"])
    }))

  it.effect("a failed turn appends nothing, and the next turn starts from the same history", () =>
    Effect.gen(function* () {
      const failure = new LlmError.ServerError({ provider: "mock", model: "mock-model", message: "down", status: 503 })
      const { mock, model } = yield* withMock(["one", failure, "two"])
      const chat = yield* Chat.empty
      yield* chat.generateText({ prompt: "first" }).pipe(Effect.provide(model))
      const failed = yield* Effect.either(chat.generateText({ prompt: "lost" }).pipe(Effect.provide(model)))
      expect(Either.isLeft(failed) && failed.left._tag).toBe("ServerError")
      expect((yield* Ref.get(chat.history)).map(Message.contentText)).toEqual(["first", "one"])
      yield* chat.generateText({ prompt: "second" }).pipe(Effect.provide(model))
      const last = (yield* mock.requests).at(-1)!
      expect(last.messages.map(Message.contentText)).toEqual(["first", "one", "second"])
    }))

  it.effect("streamText appends the turn at its Finish; generateObject the prompt and the reply that decoded", () =>
    Effect.gen(function* () {
      const { model } = yield* withMock([{ text: "streamed reply", chunks: 3 }, { object: { n: "x" } }, { object: { n: 1 } }])
      const chat = yield* Chat.empty
      const deltas = yield* Stream.runCollect(chat.streamText({ prompt: "stream it" })).pipe(Effect.provide(model))
      expect([...deltas].filter((e) => e._tag === "TextDelta").length).toBe(3)
      expect((yield* Ref.get(chat.history)).map(Message.contentText)).toEqual(["stream it", "streamed reply"])
      const { value, attempts } = yield* chat.generateObject({ prompt: "a number", schema: Schema.Struct({ n: Schema.Number }) }).pipe(Effect.provide(model))
      expect({ value, attempts }).toEqual({ value: { n: 1 }, attempts: 2 })
      // the repair exchange is not kept: the turn is the prompt and the reply that decoded
      expect((yield* Ref.get(chat.history)).map(Message.contentText)).toEqual(["stream it", "streamed reply", "a number", `{"n":1}`])
    }))

  it.effect("exports as JSON and is restored from it; anything else is refused with the place that is wrong", () =>
    Effect.gen(function* () {
      const { mock, model } = yield* withMock(["Paris.", "About 2 million."])
      const chat = yield* Chat.make({ system: "Answer briefly." })
      yield* chat.generateText({ prompt: "Capital of France?" }).pipe(Effect.provide(model))
      const saved = yield* chat.exportJson
      expect(JSON.parse(saved)).toEqual({ messages: [Message.system("Answer briefly."), Message.user("Capital of France?"), Message.assistant("Paris.")] })
      const restored = yield* Chat.fromJson(saved)
      expect(yield* Ref.get(restored.history)).toEqual(yield* Ref.get(chat.history))
      yield* restored.generateText({ prompt: "Its population?" }).pipe(Effect.provide(model))
      expect((yield* mock.requests).at(-1)!.messages.map(Message.contentText)).toEqual(["Answer briefly.", "Capital of France?", "Paris.", "Its population?"])
      expect(yield* Ref.get((yield* Chat.fromExport(yield* chat.export)).history)).toEqual(yield* Ref.get(chat.history))

      const notJson = yield* Effect.flip(Chat.fromJson("{ not json"))
      expect(notJson._tag).toBe("ParseError")
      const badRole = yield* Effect.flip(Chat.fromJson(JSON.stringify({ messages: [{ role: "wizard", content: "x" }] })))
      expect(badRole.message).toContain("[0]")
      expect(badRole.message).toContain("role")
      const notHistory = yield* Effect.flip(Chat.fromExport([{ role: "user", content: "x" }]))
      expect(notHistory._tag).toBe("ParseError")
    }))

  it.effect("turns of one conversation run one at a time", () =>
    Effect.gen(function* () {
      let inFlight = 0
      let most = 0
      const slow: LanguageModel.Service = LanguageModel.make({
        provider: "slow",
        model: "slow",
        chat: (request) =>
          Effect.gen(function* () {
            inFlight++
            most = Math.max(most, inFlight)
            yield* Effect.sleep("1 second")
            inFlight--
            return { id: "r", model: "slow", provider: "slow", text: `seen ${request.messages.length}`, toolCalls: [], finishReason: "stop" as const, usage: { inputTokens: 1, outputTokens: 1, totalTokens: 2, estimated: true } }
          }),
        stream: () => Stream.empty
      })
      const chat = yield* Chat.empty
      const turns = yield* Effect.fork(
        Effect.all([chat.generateText({ prompt: "a" }), chat.generateText({ prompt: "b" })], { concurrency: "unbounded" }).pipe(
          Effect.provide(Layer.succeed(LanguageModel.LanguageModel, slow))
        )
      )
      yield* TestClock.adjust("3 seconds")
      const [a, b] = yield* Fiber.join(turns)
      expect(most).toBe(1)
      // the second turn saw the first one's prompt and reply
      expect([a.text, b.text].sort()).toEqual(["seen 1", "seen 3"])
    }))

  it.effect("the Chat service and its accessors", () =>
    Effect.gen(function* () {
      const { model } = yield* withMock(["hi there"])
      const reply = yield* Chat.generateText({ prompt: "hi" }).pipe(Effect.provide(Layer.merge(Chat.layer({ system: "S" }), model)))
      expect(reply.text).toBe("hi there")
      const json = yield* Chat.exportJson.pipe(Effect.provide(Chat.layer({ messages: [Message.user("kept")] })))
      expect(JSON.parse(json)).toEqual({ messages: [Message.user("kept")] })
    }))
})
