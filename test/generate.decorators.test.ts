/**
 * The application layer through every decorator: each step of a tool loop and each attempt of
 * an object is one call of the decorated model, so Retry, Fallback (across providers),
 * CircuitBreaker, ResponseCache, Budget, ContextWindow, Batch and spans all apply per step.
 */
import { describe, expect, it } from "@effect/vitest"
import { Chunk, type Context, Effect, Exit, Layer, Schedule, Schema, Stream, Tracer } from "effect"
import {
  Batch,
  Budget,
  CircuitBreaker,
  ContextWindow,
  Fallback,
  LanguageModel,
  LlmError,
  Message,
  ResponseCache,
  Retry,
  Tool,
  Toolkit
} from "../src/index.js"
import * as Testing from "../src/Testing.js"
import { fakeProvider, stack } from "./support/openaiStack.js"

const Add = Tool.make("add", { parameters: Schema.Struct({ a: Schema.Number, b: Schema.Number }), success: Schema.Number })
const Kit = Toolkit.make(Add)
const handlers = Kit.toLayer({ add: ({ a, b }) => Effect.withSpan(Effect.succeed(a + b), "handler add") })
const City = Schema.Struct({ name: Schema.String, country: Schema.Struct({ code: Schema.String }) })

const serverError = new LlmError.ServerError({ provider: "mock", model: "mock-model", message: "503", status: 503 })
const usage = (n: number): Message.Usage => ({ inputTokens: n, outputTokens: 0, totalTokens: n, estimated: false })

/** A model layer over a mock, and the mock's recorded requests. */
const mocked = (steps: Testing.MockScript["steps"], provider = "mock") =>
  Effect.map(Testing.makeMockModel({ steps, provider }), (mock) => ({ layer: LanguageModel.layer(mock.service), requests: mock.requests }))

const toolRound = [{ toolCalls: [{ id: "c1", name: "add", params: { a: 1, b: 2 } }] }, "3"] as const

describe("through decorators", () => {
  it.effect("Retry: a failed step is retried, the loop goes on", () =>
    Effect.gen(function*() {
      const mock = yield* mocked([serverError, toolRound[0], serverError, toolRound[1]])
      const result = yield* LanguageModel.generateText({ request: Message.request("1+2"), toolkit: Kit }).pipe(
        Effect.provide(Layer.merge(Retry.layer(Schedule.recurs(1)).pipe(Layer.provide(mock.layer)), handlers))
      )
      expect(result.text).toBe("3")
      expect(result.steps).toHaveLength(2)
      expect(yield* mock.requests).toHaveLength(4)
    }))

  it.effect("Retry: streamText retries a step's stream that fails before its first event", () =>
    Effect.gen(function*() {
      const mock = yield* mocked([serverError, toolRound[0], serverError, toolRound[1]])
      const events = yield* Stream.runCollect(LanguageModel.streamText({ request: Message.request("1+2"), toolkit: Kit })).pipe(
        Effect.provide(Layer.merge(Retry.layer(Schedule.recurs(1)).pipe(Layer.provide(mock.layer)), handlers))
      )
      const last = Chunk.toArray(events).at(-1)
      expect(last?._tag === "Finish" && last.result.text).toBe("3")
      expect(yield* mock.requests).toHaveLength(4)
    }))

  it.scoped("Fallback across providers: a tool loop and an object continue on OpenAI Chat Completions when the first provider fails", () =>
    Effect.gen(function*() {
      // the first provider answers the first step, then fails; the transcript moves to the fake
      const primary = yield* mocked([toolRound[0], serverError], "other")
      const fake = yield* fakeProvider({
        respond: (request) => {
          const body = request.body as { messages: ReadonlyArray<{ role: string; content?: string }>; response_format?: unknown }
          if (body.response_format !== undefined) return { text: "{\"name\":\"Paris\",\"country\":{\"code\":\"FR\"}}" }
          const tool = body.messages.find((m) => m.role === "tool")
          return { text: `the sum is ${tool?.content}` }
        }
      })
      const chain = Fallback.layer([{ model: primary.layer }, { model: stack(fake.baseUrl) }])
      const layer = Layer.merge(chain, handlers)
      const result = yield* LanguageModel.generateText({ request: Message.request("1+2"), toolkit: Kit }).pipe(Effect.provide(layer))
      expect(result.text).toBe("the sum is 3")
      expect(result.steps.map((s) => s.response.provider)).toEqual(["other", "openai"])
      const sent = (yield* fake.requests)[0]!.body as { messages: ReadonlyArray<{ role: string; tool_calls?: unknown }>; tools: ReadonlyArray<unknown> }
      expect(sent.messages.map((m) => m.role)).toEqual(["user", "assistant", "tool"])
      expect(sent.tools).toHaveLength(1)
      const object = yield* LanguageModel.generateObject({ request: Message.request("Paris?"), schema: City }).pipe(Effect.provide(layer))
      expect(object.value).toEqual({ name: "Paris", country: { code: "FR" } })
      expect(object.response.provider).toBe("openai")
    }))

  it.effect("CircuitBreaker: every step is a call the breaker admits and counts", () =>
    Effect.gen(function*() {
      const mock = yield* mocked([...toolRound])
      const result = yield* LanguageModel.generateText({ request: Message.request("1+2"), toolkit: Kit }).pipe(
        Effect.provide(Layer.merge(CircuitBreaker.layer({ consecutiveFailures: 1 }).pipe(Layer.provide(mock.layer)), handlers))
      )
      expect(result.text).toBe("3")
      // a reply that does not decode is the model's doing, not the endpoint's: the breaker stays closed
      const bad = yield* mocked(["not json"])
      const layer = CircuitBreaker.layer({ consecutiveFailures: 1 }).pipe(Layer.provide(bad.layer))
      const exits = yield* Effect.all([
        Effect.exit(LanguageModel.generateObject({ request: Message.request("x"), schema: City, repairAttempts: 0 })),
        Effect.exit(LanguageModel.generateObject({ request: Message.request("y"), schema: City, repairAttempts: 0 }))
      ]).pipe(Effect.provide(layer))
      for (const exit of exits) expect(Exit.isFailure(exit) && exit.cause._tag === "Fail" && exit.cause.error._tag).toBe("StructuredOutputError")
    }))

  it.effect("ResponseCache: an object is cached by request and schema; a tool loop's steps by transcript and tools", () =>
    Effect.gen(function*() {
      const mock = yield* mocked((request) =>
        request.responseFormat !== undefined
          ? { object: { name: "Paris", country: { code: "FR" } } }
          : request.messages.some((m) => m.role === "tool") ? "3" : toolRound[0]
      )
      const layer = Layer.merge(ResponseCache.layer.pipe(Layer.provide(mock.layer), Layer.provide(ResponseCache.layerMemory({ maxEntries: 100, ttl: "1 hour" }))), handlers)
      yield* Effect.gen(function*() {
        const ask = (schema: Schema.Schema<unknown, unknown>) => LanguageModel.generateObject({ request: Message.request("Paris?"), schema })
        yield* ask(City as Schema.Schema<unknown, unknown>)
        yield* ask(City as Schema.Schema<unknown, unknown>)
        expect(yield* mock.requests).toHaveLength(1)
        // another schema is another request
        yield* ask(Schema.Struct({ name: Schema.String }) as Schema.Schema<unknown, unknown>)
        expect(yield* mock.requests).toHaveLength(2)
        const first = yield* LanguageModel.generateText({ request: Message.request("1+2"), toolkit: Kit })
        const again = yield* LanguageModel.generateText({ request: Message.request("1+2"), toolkit: Kit })
        expect(again.text).toBe(first.text)
        expect(yield* mock.requests).toHaveLength(4)
        // the same prompt without the tools is another request
        yield* LanguageModel.generateText({ request: Message.request("1+2") })
        expect(yield* mock.requests).toHaveLength(5)
      }).pipe(Effect.provide(layer))
    }))

  it.effect("Budget: each step draws on the budget; a step over it fails the loop with BudgetExceededError", () =>
    Effect.gen(function*() {
      const mock = yield* mocked([{ ...toolRound[0], usage: usage(70) }, { text: "3", usage: usage(70) }])
      const exit = yield* Effect.exit(LanguageModel.generateText({ request: Message.request("1+2"), toolkit: Kit }).pipe(
        Effect.provide(Layer.merge(Budget.layer({ period: "day", maxTokens: 80 }).pipe(Layer.provide(mock.layer)), handlers))
      ))
      expect(Exit.isFailure(exit) && exit.cause._tag === "Fail" && exit.cause.error._tag).toBe("BudgetExceededError")
      expect(yield* mock.requests).toHaveLength(1)
    }))

  it.effect("ContextWindow: old turns are dropped, a tool call never without its result", () =>
    Effect.gen(function*() {
      const mock = yield* mocked([{ toolCalls: [{ id: "c1", name: "add", params: { a: 1, b: 2 } }, { id: "c2", name: "add", params: { a: 3, b: 4 } }] }, "done"])
      const long = "lorem ipsum dolor sit amet ".repeat(150)
      const request = Message.request([Message.system("Be brief."), Message.user(long), Message.assistant(long), Message.user("add 1+2 and 3+4")])
      yield* LanguageModel.generateText({ request, toolkit: Kit }).pipe(
        Effect.provide(Layer.merge(ContextWindow.layer({ contextWindow: 900 }).pipe(Layer.provide(mock.layer)), handlers))
      )
      const sent = yield* mock.requests
      expect(sent).toHaveLength(2)
      for (const { messages } of sent) {
        expect(messages.some((m) => Message.contentText(m) === long)).toBe(false)
        for (const [i, m] of messages.entries()) {
          if (m.role !== "tool") continue
          const call = [...messages.slice(0, i)].reverse().find((p) => p.role === "assistant" && p.toolCalls?.some((c) => c.id === m.toolCallId))
          expect(call, `the call of ${m.toolCallId}`).toBeDefined()
        }
      }
      expect(sent[1]!.messages.map((m) => m.role)).toEqual(["system", "user", "assistant", "tool", "tool"])
      // too small for the call and its results: it fails rather than split them
      const tight = ContextWindow.fit(sent[1]!.messages, { contextWindow: 45, reserve: 0 })
      const fitted = yield* Effect.either(tight)
      if (fitted._tag === "Right") {
        const roles = fitted.right.messages.map((m) => m.role)
        expect(roles.includes("tool") ? roles.includes("assistant") : true).toBe(true)
      } else {
        expect(fitted.left._tag).toBe("ContextLengthError")
      }
    }))

  it.effect("Batch.runWith over generateObject: one result per item, StructuredOutputError accounted", () =>
    Effect.gen(function*() {
      const mock = yield* mocked((request) =>
        Message.contentText(request.messages[0]!) === "bad" ? "nope" : { object: { name: Message.contentText(request.messages[0]!), country: { code: "XX" } }, usage: usage(10) }
      )
      const results = yield* Stream.runCollect(
        Batch.runWith(["Paris", "bad", "Rome"], (request) => LanguageModel.generateObject({ request, schema: City, repairAttempts: 0 }), { retriesPerItem: 0 })
      ).pipe(Effect.provide(mock.layer))
      const all = Chunk.toArray(results)
      expect(all.map((r) => Exit.isSuccess(r.result) ? r.result.value.value.name : Batch.failureTag(r.result))).toEqual(["Paris", "StructuredOutputError", "Rome"])
      const summary = all.reduce(Batch.summarize, Batch.emptySummary)
      expect(summary).toMatchObject({ total: 3, succeeded: 2, failed: 1, failuresByTag: { StructuredOutputError: 1 }, inputTokens: 20 })
    }))

  it.effect("spans: one per operation, per step and per tool call, the tool calls inside their step", () =>
    Effect.gen(function*() {
      const spans: Array<{ name: string; parent: string | undefined; attributes: Map<string, unknown> }> = []
      const tracer = Tracer.make({
        span: (name, parent, context: Context.Context<never>, links, startTime, kind) => {
          const attributes = new Map<string, unknown>()
          spans.push({ name, parent: parent._tag === "Some" && parent.value._tag === "Span" ? parent.value.name : undefined, attributes })
          return {
            _tag: "Span", name, spanId: String(spans.length), traceId: "t", parent, context, status: { _tag: "Started", startTime },
            attributes, links, sampled: true, kind,
            end: () => undefined, attribute: (k, v) => void attributes.set(k, v), event: () => undefined, addLinks: () => undefined
          }
        },
        context: (f) => f()
      })
      const mock = yield* mocked([...toolRound, { object: { name: "x", country: { code: "y" } } }, ...toolRound])
      yield* Effect.gen(function*() {
        yield* LanguageModel.generateText({ request: Message.request("1+2"), toolkit: Kit })
        yield* LanguageModel.generateObject({ request: Message.request("x"), schema: City })
        yield* Stream.runDrain(LanguageModel.streamText({ request: Message.request("1+2"), toolkit: Kit }))
      }).pipe(Effect.provide(Layer.merge(mock.layer, handlers)), Effect.withTracer(tracer))
      const named = (name: string) => spans.filter((s) => s.name === name)
      expect(named("LanguageModel.generateText")).toHaveLength(1)
      expect(named("LanguageModel.generateObject")).toHaveLength(1)
      expect(named("LanguageModel.streamText")).toHaveLength(1)
      const toolSpans = named("Tool.call add")
      expect(toolSpans.length).toBe(2)
      expect(toolSpans[0]!.parent).toBe("LanguageModel.step")
      expect(toolSpans[0]!.attributes.get("gen_ai.tool.call.id")).toBe("c1")
      // a handler's own spans nest under its call
      expect(named("handler add").map((s) => s.parent)).toEqual(["Tool.call add", "Tool.call add"])
      expect(named("LanguageModel.step").filter((s) => s.parent === "LanguageModel.generateText")).toHaveLength(2)
      expect(named("LanguageModel.step").filter((s) => s.parent === "LanguageModel.generateObject")).toHaveLength(1)
    }))

  it.effect("spans: a call of a tool the toolkit does not have is named as such, not by the model's text", () =>
    Effect.gen(function*() {
      const names: Array<string> = []
      const tracer = Tracer.make({
        span: (name, parent, context: Context.Context<never>, links, startTime, kind) => {
          names.push(name)
          return {
            _tag: "Span", name, spanId: String(names.length), traceId: "t", parent, context, status: { _tag: "Started", startTime },
            attributes: new Map(), links, sampled: true, kind,
            end: () => undefined, attribute: () => undefined, event: () => undefined, addLinks: () => undefined
          }
        },
        context: (f) => f()
      })
      const invented = Array.from({ length: 3 }, (_, i) => ({ id: `x${i}`, name: `made_up_${i}_${"z".repeat(200)}`, params: {} }))
      const mock = yield* mocked([{ toolCalls: invented }, "done"])
      const result = yield* LanguageModel.generateText({ request: Message.request("1+2"), toolkit: Kit }).pipe(
        Effect.provide(Layer.merge(mock.layer, handlers)),
        Effect.withTracer(tracer)
      )
      expect(result.steps[0]!.toolResults.every((r) => r.isError)).toBe(true)
      // one span name for every unknown tool: a model cannot grow the set of span names
      expect(names.filter((n) => n.startsWith("Tool.call"))).toEqual(["Tool.call (no such tool)", "Tool.call (no such tool)", "Tool.call (no such tool)"])
    }))
})
