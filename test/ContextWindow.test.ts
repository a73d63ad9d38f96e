import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Layer, Stream } from "effect"
import * as fc from "fast-check"
import { ContextWindow, LanguageModel, LlmError, Message, Tokenizer, Usage } from "../src/index.js"
import * as Testing from "../src/Testing.js"
import * as anthropic from "../src/internal/providers/anthropic/spec.js"
import * as gemini from "../src/internal/providers/gemini/spec.js"
import * as ollama from "../src/internal/providers/ollama/spec.js"
import * as openaiChat from "../src/internal/providers/openaiChat/spec.js"
import * as openaiResponses from "../src/internal/providers/openaiResponses/spec.js"

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

describe("ContextWindow.fit with importance", () => {
  it.effect("keeps recent turns, then important ones, then the oldest; reports a status", () =>
    Effect.gen(function* () {
      const system = Message.system("s")
      const old = [
        { ...Message.user(words(20)), importance: 5 },
        Message.assistant(words(20)),
        Message.user(words(20)),
        Message.assistant(words(20))
      ]
      const newest = Message.user(words(6))
      // room for the newest, one more recent turn, and one 24-token turn of the older band
      const budget = 3 + 5 + 10 + 24 + 24
      const result = yield* ContextWindow.fit([system, ...old, newest], { contextWindow: budget, reserve: 0, model, recent: 2 })
      expect(result.messages).toEqual([system, old[0], old[3], newest])
      expect(result.dropped).toEqual([old[1], old[2]])
      expect(result.status).toEqual({ tokens: result.tokens, window: budget, percent: (result.tokens / budget) * 100, dropped: 2, compacted: 0 })
    }))

  it("importance never reaches the wire: no provider's body carries it", () => {
    const request = Message.request([
      Message.system("s"),
      { ...Message.user("question"), importance: 7 },
      { ...Message.assistant("", { toolCalls: [call("t1")] }), importance: 3 },
      { ...Message.tool("t1", "result", "lookup"), importance: 2 },
      { ...Message.assistant("answer"), importance: 1 },
      Message.user("next")
    ])
    const specs = [
      anthropic.spec({}),
      gemini.spec({}),
      ollama.spec({}),
      openaiChat.spec({}),
      openaiResponses.spec({})
    ]
    for (const spec of specs) {
      for (const stream of [false, true]) {
        const body = JSON.stringify(spec.body(request, "m", stream))
        expect(body, spec.provider).toContain("question")
        expect(body, spec.provider).not.toContain("importance")
      }
    }
  })

  it.effect("with a compactor, a prompt past compactAt of the window is summarised down to it before the window is full", () =>
    Effect.gen(function* () {
      const system = Message.system("s")
      const turns = [Message.user(words(20)), Message.assistant(words(20)), Message.user(words(20)), Message.user(words(6))]
      const all = [system, ...turns]
      const tokens = (yield* Tokenizer.count(all, model)).tokens
      const compact: ContextWindow.Compactor = (dropped) => Effect.succeed(`${dropped.length} earlier`)
      const fitsWhole = yield* ContextWindow.fit(all, { contextWindow: tokens, reserve: 0, model, compact, compactAt: 1 })
      expect(fitsWhole.dropped).toEqual([])
      const compacted = yield* ContextWindow.fit(all, { contextWindow: tokens, reserve: 0, model, compact, compactAt: 0.6 })
      expect(compacted.summarized).toBe(true)
      expect(compacted.dropped.length).toBeGreaterThan(0)
      expect(compacted.status.compacted).toBe(compacted.dropped.length)
      expect(compacted.messages[1]).toMatchObject({ role: "system", content: expect.stringContaining("earlier") })
      // without a compactor, a prompt that fits is left alone
      const untouched = yield* ContextWindow.fit(all, { contextWindow: tokens, reserve: 0, model, compactAt: 0.6 })
      expect(untouched.dropped).toEqual([])
    }))

  it("property: within budget, system prompt kept, pairs whole, and never a more important turn dropped for a less important one of its age band", async () => {
    type Unit = ReadonlyArray<Message.Message>
    let ids = 0
    const withImportance = <M extends Message.Message>(m: M, importance: number): M => (importance === 0 ? m : { ...m, importance })
    const unit: fc.Arbitrary<Unit> = fc.tuple(fc.nat(3), fc.oneof(
      fc.nat(160).map((n) => [Message.user("u".repeat(n))] as Array<Message.Message>),
      fc.nat(160).map((n) => [Message.assistant("a".repeat(n))] as Array<Message.Message>),
      fc.array(fc.nat(100), { minLength: 1, maxLength: 3 }).map((sizes) => {
        const calls = sizes.map(() => call(`c${ids++}`))
        return [Message.assistant("", { toolCalls: calls }), ...calls.map((c, i) => Message.tool(c.id, "r".repeat(sizes[i]!)))] as Array<Message.Message>
      })
    )).map(([importance, messages]) => messages.map((m, i) => (i === 0 ? withImportance(m, importance) : m)))
    const conversation = fc.record({
      system: fc.option(fc.nat(200), { nil: undefined }),
      units: fc.array(unit, { minLength: 1, maxLength: 12 }),
      contextWindow: fc.integer({ min: 20, max: 600 }),
      recent: fc.integer({ min: 1, max: 6 })
    })
    await fc.assert(
      fc.asyncProperty(conversation, async ({ system, units, contextWindow, recent }) => {
        const head = system === undefined ? [] : [Message.system("s".repeat(system))]
        const messages = [...head, ...units.flat()]
        const outcome = await Effect.runPromise(Effect.either(ContextWindow.fit(messages, { contextWindow, reserve: 0, model, recent })))
        if (Either.isLeft(outcome)) return
        const result = outcome.right
        expect((await Effect.runPromise(Tokenizer.count(result.messages, model))).tokens).toBeLessThanOrEqual(contextWindow)
        expect(result.messages.slice(0, head.length)).toEqual(head)
        const kept = new Set(result.messages)
        // a unit is kept or dropped whole, and the newest is always kept
        const keptUnits = units.map((u) => {
          const inside = u.filter((m) => kept.has(m)).length
          expect(inside === 0 || inside === u.length).toBe(true)
          return inside > 0
        })
        expect(keptUnits[units.length - 1]).toBe(true)
        const importance = (u: Unit) => Math.max(...u.map((m) => (m.role === "system" ? 0 : m.importance ?? 0)))
        const bandStart = Math.max(0, units.length - recent)
        const bands = [units.map((_, i) => i).slice(bandStart, units.length - 1), units.map((_, i) => i).slice(0, bandStart)]
        for (const band of bands) {
          const keptLeast = Math.min(...band.filter((i) => keptUnits[i]).map((i) => importance(units[i]!)))
          const droppedMost = Math.max(...band.filter((i) => !keptUnits[i]).map((i) => importance(units[i]!)))
          expect(droppedMost).toBeLessThanOrEqual(keptLeast)
        }
        // recent before important: nothing older is kept while a recent turn is dropped
        if (bands[0]!.some((i) => !keptUnits[i])) expect(bands[1]!.some((i) => keptUnits[i])).toBe(false)
        expect(result.status.dropped).toBe(result.dropped.length)
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

  it.effect("a model whose window no option gives takes the model catalog's (deepseek-chat: 64 000)", () =>
    Effect.gen(function* () {
      const mock = yield* Testing.makeMockModel({ steps: ["ok"], provider: "deepseek", model: "deepseek-chat" })
      const decorated = yield* ContextWindow.decorator()(mock.service)
      const window = (yield* Usage.modelInfo("deepseek", "deepseek-chat"))?.contextWindow
      expect(window).toBeLessThan(100_000)
      // fits in the 200 000 default, not in the catalog's window: the oldest message goes
      const big = Message.request([Message.user(words(window! - 20_000)), Message.user(words(30_000)), Message.user("end")])
      yield* decorated.chat(big)
      expect((yield* mock.requests)[0]!.messages).toHaveLength(2)
      // a window given by the model wins over the catalog's
      const own = yield* Testing.makeMockModel({ steps: ["ok"], provider: "deepseek", model: "deepseek-chat", contextWindow: 1_000_000 })
      yield* (yield* ContextWindow.decorator()(own.service)).chat(big)
      expect((yield* own.requests)[0]).toBe(big)
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
