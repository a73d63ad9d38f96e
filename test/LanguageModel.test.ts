import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Layer, Schema, Stream } from "effect"
import * as fc from "fast-check"
import { LanguageModel, LlmError, Message, Retry } from "../src/index.js"
import * as Testing from "../src/Testing.js"
import { fakeProvider, stack } from "./support/openaiStack.js"

const reply = fc.record({
  text: fc.string({ unit: "grapheme", maxLength: 40 }),
  reasoning: fc.option(fc.string({ minLength: 1, maxLength: 20 }), { nil: undefined }),
  toolCalls: fc.array(
    fc.record({ id: fc.stringMatching(/^call_[a-z0-9]{1,8}$/), name: fc.stringMatching(/^[a-z_]{1,10}$/), arguments: fc.json({ maxDepth: 2 }) }),
    { maxLength: 3 }
  ),
  chunks: fc.integer({ min: 1, max: 9 }),
  usage: fc.boolean(),
  finishReason: fc.constantFrom(undefined, "stop", "length", "content_filter", "something_new")
})

describe("collect", () => {
  it.scoped("folding stream(req) gives the same ChatResponse as chat(req), over the wire", () =>
    Effect.gen(function* () {
      const fake = yield* fakeProvider()
      // built in the test's scope: the HTTP client must outlive this line
      const model = Context.get(yield* Layer.build(stack(fake.baseUrl)), LanguageModel.LanguageModel)
      const request = Message.request([Message.system("s"), Message.user("compare")], { temperature: 0 })
      yield* Effect.promise(() =>
        fc.assert(
          fc.asyncProperty(reply, async (r) => {
            // a filtered reply with text is a reply; without text it is an error either way
            if (r.finishReason === "content_filter" && r.text.length === 0) return
            await Effect.runPromise(fake.setReply(r))
            const chat = await Effect.runPromise(model.chat(request))
            const collected = await Effect.runPromise(LanguageModel.collect(model.stream(request)))
            expect({ ...collected, id: "" }).toEqual({ ...chat, id: "" })
            expect(collected.text).toBe(r.text)
            expect(collected.toolCalls).toEqual(r.toolCalls)
            expect(collected.usage.estimated).toBe(!r.usage)
          }),
          { numRuns: 25, seed: 20261121 }
        )
      )
    }))

  it.effect("a stream without Finish fails with a StreamError that keeps the partial text", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(LanguageModel.collect(Stream.make<Array<Message.StreamEvent>>({ _tag: "TextDelta", text: "half" })))
      expect(error).toBeInstanceOf(LlmError.StreamError)
      expect(error.partial).toBe(true)
      expect(error.partialText).toBe("half")
      const empty = yield* Effect.flip(LanguageModel.collect(Stream.empty))
      expect(empty.partial).toBe(false)
    }))

  it.effect("responseToEvents and collect round-trip", () =>
    Effect.gen(function* () {
      const response: Message.ChatResponse = {
        id: "r1",
        model: "m",
        provider: "p",
        text: "hello",
        reasoning: "think",
        toolCalls: [{ id: "a", name: "f", arguments: "{}" }, { id: "b", name: "g", arguments: "[1]" }],
        finishReason: "tool_calls",
        usage: { inputTokens: 1, outputTokens: 2, totalTokens: 3, cachedInputTokens: 0, estimated: false }
      }
      expect(yield* LanguageModel.collect(Stream.fromIterable(LanguageModel.responseToEvents(response)))).toEqual(response)
    }))
})

describe("accessors", () => {
  it.effect("chat and stream reach the provided model", () =>
    Effect.gen(function* () {
      const layer = Layer.merge(Testing.mockModel(["via accessor"]), Layer.empty)
      const chat = yield* Effect.provide(LanguageModel.chat(Message.request("x")), layer)
      expect(chat.text).toBe("via accessor")
      const streamed = yield* Effect.provide(LanguageModel.collect(LanguageModel.stream(Message.request("x"))), layer)
      expect(streamed.text).toBe("via accessor")
    }))
})

describe("the short form of a request: system and prompt", () => {
  const Person = Schema.Struct({ name: Schema.String })
  const expected = [Message.system("Be brief."), Message.user("Who?")]

  it.effect("chat, stream, generateText, streamText, generateObject and streamObject send system then prompt, with the other options", () =>
    Effect.gen(function* () {
      const mock = yield* Testing.makeMockModel({ steps: [{ text: "{\"name\":\"Ada\"}" }] })
      const model = Layer.succeed(LanguageModel.LanguageModel, mock.service)
      const input = { system: "Be brief.", prompt: "Who?", temperature: 0 } as const
      yield* LanguageModel.chat(input).pipe(Effect.provide(model))
      yield* Stream.runDrain(LanguageModel.stream(input)).pipe(Effect.provide(model))
      yield* LanguageModel.generateText({ ...input, maxSteps: 2, concurrency: 1 }).pipe(Effect.provide(model))
      yield* Stream.runDrain(LanguageModel.streamText({ ...input, maxSteps: 2 })).pipe(Effect.provide(model))
      const { value } = yield* LanguageModel.generateObject({ ...input, schema: Person, name: "person", repairAttempts: 0 }).pipe(Effect.provide(model))
      expect(value).toEqual({ name: "Ada" })
      yield* Stream.runDrain(LanguageModel.streamObject({ ...input, schema: Person })).pipe(Effect.provide(model))
      const requests = yield* mock.requests
      expect(requests).toHaveLength(6)
      for (const request of requests) {
        expect(request.messages).toEqual(expected)
        expect(request.temperature).toBe(0)
        // the loop's and the object's own options are not request fields
        for (const key of ["system", "prompt", "maxSteps", "concurrency", "toolkit", "schema", "name", "repairAttempts"]) expect(request).not.toHaveProperty(key)
      }
    }))

  it("toRequest: a prompt of messages follows the system prompt; a ChatRequest is unchanged", () => {
    const earlier = [Message.user("hi"), Message.assistant("hello")]
    expect(LanguageModel.toRequest({ system: "S", prompt: earlier })).toEqual({ messages: [Message.system("S"), ...earlier] })
    expect(LanguageModel.toRequest({ prompt: "x", maxTokens: 5 })).toEqual({ messages: [Message.user("x")], maxTokens: 5 })
    const request = Message.request("as is")
    expect(LanguageModel.toRequest(request)).toBe(request)
  })
})

describe("what a stream delivered", () => {
  it.live("a model spread from another with its own stream is counted, so Retry never repeats what it delivered", () =>
    Effect.gen(function* () {
      const mock = yield* Testing.makeMockModel({ steps: ["hello"] })
      let calls = 0
      const broken = new LlmError.ServerError({ provider: "mock", model: "mock", status: 503, message: "cut" })
      // a user's own wrapper: the mock's stream, cut after its first event
      const mine: LanguageModel.Service = {
        ...mock.service,
        stream: (request) => Stream.concat(Stream.take(mock.service.stream(request), 1), Stream.suspend(() => (calls++, Stream.fail(broken))))
      }
      const retried = yield* Retry.decorator(Retry.schedule({ maxRetries: 3, initialDelay: "1 milli" }))(LanguageModel.make(mine))
      const error = yield* Effect.flip(LanguageModel.collect(retried.stream(Message.request("hi"))))
      expect(calls).toBe(1)
      expect(error).toMatchObject({ _tag: "StreamError", partial: true })
    }))
})
