import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Layer, Stream } from "effect"
import * as fc from "fast-check"
import { ContextWindow, LanguageModel, LlmError, Message, Tokenizer } from "../src/index.js"
import * as Testing from "../src/Testing.js"

// An estimate-counted model: a message of n characters is ceil(n/4) + 4 tokens, plus 3 per request.
const model = "claude-test"
const words = (n: number) => "x".repeat(n * 4) // n tokens of content

const call = (id: string): Message.ToolCall => ({ id, name: "lookup", arguments: "{}" })

describe("ContextWindow.fit", () => {
  it.effect("leaves a conversation that fits alone", () =>
    Effect.gen(function* () {
      const messages = [Message.system("be brief"), Message.user("hi"), Message.assistant("hello"), Message.user("bye")]
      const result = yield* ContextWindow.fit(messages, { contextWindow: 1_000, reserve: 100, model })
      expect(result.messages).toEqual(messages)
      expect(result.dropped).toEqual([])
      expect(result.tokens).toBe((yield* Tokenizer.count(messages, model)).tokens)
    }))

  it.effect("keeps the system prompt and the newest turns, drops the oldest", () =>
    Effect.gen(function* () {
      const system = Message.system(words(10)) // 14
      const turns = [Message.user(words(20)), Message.assistant(words(20)), Message.user(words(20)), Message.assistant(words(20)), Message.user(words(6))]
      // budget 3 + 14 + 10 + 24 + 24 = 75: room for the last three
      const result = yield* ContextWindow.fit([system, ...turns], { contextWindow: 85, reserve: 10, model })
      expect(result.messages).toEqual([system, ...turns.slice(2)])
      expect(result.dropped).toEqual(turns.slice(0, 2))
      expect(result.tokens).toBe(75)
      expect(result.exact).toBe(false)
    }))

  it.effect("never keeps a tool result without its call, nor a call without its results", () =>
    Effect.gen(function* () {
      const system = Message.system("s")
      const ask = Message.user(words(4))
      const calling = Message.assistant("", { toolCalls: [call("a"), call("b")] })
      const resultA = Message.tool("a", words(10))
      const resultB = Message.tool("b", words(10))
      const answer = Message.assistant(words(4))
      const messages = [system, ask, calling, resultA, resultB, answer]
      const perMessage = (yield* Effect.flatMap(Tokenizer.current, (t) => t.countEach(messages, model))).perMessage
      // leave room for resultB and the answer but not the whole call group
      const budget = 3 + perMessage[0]! + perMessage[4]! + perMessage[5]! + 1
      const result = yield* ContextWindow.fit(messages, { contextWindow: budget, reserve: 0, model })
      expect(result.messages).toEqual([system, answer])
      expect(result.dropped).toEqual([ask, calling, resultA, resultB])
      // and with room for the group, it is kept whole
      const group = perMessage[2]! + perMessage[3]! + perMessage[4]!
      const roomy = yield* ContextWindow.fit(messages, { contextWindow: budget - perMessage[4]! + group, reserve: 0, model })
      expect(roomy.messages).toEqual([system, calling, resultA, resultB, answer])
    }))

  it.effect("a system prompt that is itself too long fails with ContextLengthError, naming it", () =>
    Effect.gen(function* () {
      const error = yield* ContextWindow.fit([Message.system(words(500)), Message.user("hi")], {
        contextWindow: 400,
        reserve: 50,
        model,
        provider: "anthropic"
      }).pipe(Effect.flip)
      expect(error).toBeInstanceOf(LlmError.ContextLengthError)
      expect(error.message).toContain("system prompt")
      expect(error.message).toContain("350")
      expect(error.provider).toBe("anthropic")
      expect(error.retryable).toBe(false)
      // tools count with the system prompt
      const tools: Array<Message.ToolDefinition> = [{ name: "t", parameters: { description: words(400) } }]
      const withTools = yield* ContextWindow.fit([Message.system("s"), Message.user("hi")], { contextWindow: 400, reserve: 0, model, tools }).pipe(Effect.flip)
      expect(withTools.message).toContain("tool definitions")
    }))

  it.effect("a newest turn that cannot fit fails, however much is dropped", () =>
    Effect.gen(function* () {
      const error = yield* ContextWindow.fit([Message.system("s"), Message.user("a"), Message.user(words(500))], {
        contextWindow: 400,
        reserve: 0,
        model
      }).pipe(Effect.flip)
      expect(error._tag).toBe("ContextLengthError")
      expect(error.message).toContain("newest message")
    }))

  it.effect("counts with the real BPE for OpenAI models", () =>
    Effect.gen(function* () {
      const messages = [Message.system("You are terse."), Message.user("Hello, World! How are you today? 🌍".repeat(20)), Message.user("hi")]
      const exact = yield* Tokenizer.count(messages, "gpt-4o")
      const result = yield* ContextWindow.fit(messages, { contextWindow: exact.tokens - 1, reserve: 0, model: "gpt-4o" })
      expect(result.exact).toBe(true)
      expect(result.messages).toEqual([messages[0], messages[2]])
      expect(result.tokens).toBe((yield* Tokenizer.count(result.messages, "gpt-4o")).tokens)
    }))

  it.effect("compaction summarises the dropped turns with a LanguageModel", () =>
    Effect.gen(function* () {
      const summarizer = yield* Testing.makeMockModel({ steps: ["they talked about x"] })
      const system = Message.system("s")
      const old = [Message.user(words(40)), Message.assistant(words(40))]
      const newest = Message.user("and now?")
      const result = yield* ContextWindow.fit([system, ...old, newest], {
        contextWindow: 40,
        reserve: 0,
        model,
        compact: ContextWindow.summarizeWith(summarizer.service)
      })
      expect(result.summarized).toBe(true)
      expect(result.dropped).toEqual(old)
      expect(result.messages).toHaveLength(3)
      expect(result.messages[0]).toEqual(system)
      expect(Message.contentText(result.messages[1]!)).toContain("they talked about x")
      expect(result.messages[2]).toEqual(newest)
      const asked = (yield* summarizer.requests)[0]!
      expect(Message.contentText(asked.messages[1]!)).toContain(words(40))
      // a failing summariser degrades to plain dropping
      const failing = yield* Testing.makeMockModel({ steps: [new LlmError.ServerError({ provider: "m", model: "m", message: "down", status: 503 })] })
      const fallback = yield* ContextWindow.fit([system, ...old, newest], { contextWindow: 40, reserve: 0, model, compact: ContextWindow.summarizeWith(failing.service) })
      expect(fallback.summarized).toBe(false)
      expect(fallback.messages).toEqual([system, newest])
    }))

  it("property: fit never exceeds the budget, keeps the system prompt, and keeps tool pairs whole", async () => {
    type Unit = ReadonlyArray<Message.Message>
    let ids = 0
    const unit: fc.Arbitrary<Unit> = fc.oneof(
      fc.nat(200).map((n) => [Message.user("u".repeat(n))]),
      fc.nat(200).map((n) => [Message.assistant("a".repeat(n))]),
      fc.array(fc.nat(120), { minLength: 1, maxLength: 3 }).map((sizes) => {
        const calls = sizes.map(() => call(`c${ids++}`))
        return [Message.assistant("", { toolCalls: calls }), ...calls.map((c, i) => Message.tool(c.id, "r".repeat(sizes[i]!)))]
      })
    )
    const conversation = fc.record({
      system: fc.option(fc.nat(300), { nil: undefined }),
      units: fc.array(unit, { minLength: 0, maxLength: 12 }),
      contextWindow: fc.integer({ min: 20, max: 600 }),
      reserve: fc.nat(60),
      openai: fc.boolean()
    })
    await fc.assert(
      fc.asyncProperty(conversation, async ({ system, units, contextWindow, reserve, openai }) => {
        const head = system === undefined ? [] : [Message.system("s".repeat(system))]
        const messages = [...head, ...units.flat()]
        const modelName = openai ? "gpt-4o" : model
        const outcome = await Effect.runPromise(Effect.either(ContextWindow.fit(messages, { contextWindow, reserve, model: modelName })))
        const budget = contextWindow - reserve
        if (Either.isLeft(outcome)) {
          // only when the system prompt, or it with the newest unit, cannot fit
          const newest = units.length === 0 ? [] : units[units.length - 1]!
          const needed = await Effect.runPromise(Tokenizer.count([...head, ...newest], modelName))
          expect(needed.tokens).toBeGreaterThan(budget)
          return
        }
        const result = outcome.right
        const counted = await Effect.runPromise(Tokenizer.count(result.messages, modelName))
        expect(counted.tokens).toBeLessThanOrEqual(budget)
        expect(result.tokens).toBe(counted.tokens)
        expect(result.messages.slice(0, head.length)).toEqual(head)
        expect([...head, ...result.dropped, ...result.messages.slice(head.length)]).toEqual(messages)
        const rest = result.messages.slice(head.length)
        const callIds = new Set(rest.flatMap((m) => (m.role === "assistant" ? (m.toolCalls ?? []).map((c) => c.id) : [])))
        const resultIds = new Set(rest.flatMap((m) => (m.role === "tool" ? [m.toolCallId] : [])))
        expect(resultIds).toEqual(callIds)
      }),
      { numRuns: 300 }
    )
  })
})

describe("ContextWindow.layer", () => {
  it.effect("fits every request to the model's window before sending, and reports what it dropped", () =>
    Effect.gen(function* () {
      const mock = yield* Testing.makeMockModel({ steps: ["ok"], contextWindow: 100, model })
      const reports: Array<ContextWindow.Report> = []
      const stack = ContextWindow.layer({ onFit: (r) => Effect.sync(() => void reports.push(r)) }).pipe(
        Layer.provide(Layer.succeed(LanguageModel.LanguageModel, mock.service))
      )
      const old = [Message.user(words(90)), Message.assistant(words(90))]
      const newest = Message.user("now")
      yield* Effect.gen(function* () {
        yield* LanguageModel.chat(Message.request([Message.system("s"), ...old, newest]))
        yield* Stream.runDrain(LanguageModel.stream(Message.request([Message.system("s"), ...old, newest])))
        const tooLong = yield* LanguageModel.chat(Message.request([Message.user(words(200))])).pipe(Effect.flip)
        expect(tooLong._tag).toBe("ContextLengthError")
        // maxTokens is room the reply needs
        const noRoom = yield* LanguageModel.chat(Message.request([Message.user(words(40))], { maxTokens: 80 })).pipe(Effect.flip)
        expect(noRoom._tag).toBe("ContextLengthError")
      }).pipe(Effect.provide(stack))
      const sent = yield* mock.requests
      expect(sent).toHaveLength(2) // the two failures were never sent
      for (const request of sent) expect(request.messages).toEqual([Message.system("s"), newest])
      expect(reports).toHaveLength(2)
      expect(reports[0]).toMatchObject({ provider: "mock", model, dropped: old, summarized: false })
    }))

  it.effect("defaults to a 200 000-token window and passes what fits untouched", () =>
    Effect.gen(function* () {
      const mock = yield* Testing.makeMockModel({ steps: ["ok"], model })
      const model2 = yield* ContextWindow.decorator()(mock.service)
      const big = Message.request([Message.user(words(150_000)), Message.user("end")])
      yield* model2.chat(big)
      expect((yield* mock.requests)[0]).toBe(big)
      const tooBig = Message.request([Message.user(words(150_000)), Message.user(words(60_000))])
      yield* model2.chat(tooBig)
      expect((yield* mock.requests)[1]!.messages).toHaveLength(1)
    }))

  it.effect("with compact: \"summarize\" the decorated model summarises what is dropped", () =>
    Effect.gen(function* () {
      const mock = yield* Testing.makeMockModel({
        steps: (request) => (request.messages[0]!.content.toString().startsWith("Summarise") ? "SUMMARY" : "answer"),
        contextWindow: 60,
        model
      })
      const decorated = yield* ContextWindow.decorator({ compact: "summarize" })(mock.service)
      const reply = yield* decorated.chat(Message.request([Message.system("s"), Message.user(words(60)), Message.assistant(words(60)), Message.user("now")]))
      expect(reply.text).toBe("answer")
      const sent = (yield* mock.requests)[1]!
      expect(sent.messages.map((m) => m.role)).toEqual(["system", "system", "user"])
      expect(Message.contentText(sent.messages[1]!)).toContain("SUMMARY")
    }))
})
