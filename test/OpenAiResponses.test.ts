import { describe, expect, it } from "@effect/vitest"
import { Chunk, Config, ConfigProvider, Duration, Effect, Exit, Layer, Stream } from "effect"
import { KeyPool, LanguageModel, Message, OpenAiResponses, RateLimiter, Transport } from "../src/index.js"
import * as Testing from "../src/Testing.js"
import { fromWireResponse } from "../src/internal/providers/openaiResponses/response.js"
import { assertValid } from "./support/openapi.js"

const SECRET = "sk-test-responses-secret-0123456789"

const stackFor = (fake: Testing.FakeProviderService, options: Partial<OpenAiResponses.Options> = {}) =>
  OpenAiResponses.layer({ model: "gpt-5-mini", baseUrl: fake.baseUrl, ...options }).pipe(
    Layer.provide(KeyPool.layer({ providerId: "openai", keys: [SECRET] })),
    Layer.provide(RateLimiter.unlimited),
    Layer.provide(Transport.layerUndici)
  )

const lastBody = (fake: Testing.FakeProviderService) =>
  Effect.map(fake.requests, (all) => all[all.length - 1]!.body as Record<string, any>)

const failureOf = <A, E>(exit: Exit.Exit<A, E>): E => {
  if (Exit.isSuccess(exit)) throw new Error("expected a failure, got a success")
  const failure = exit.cause._tag === "Fail" ? exit.cause.error : undefined
  if (failure === undefined) throw new Error(`expected a typed failure, got ${exit.cause._tag}`)
  return failure
}

describe("OpenAiResponses", () => {
  it.scoped("chat and stream give the same response: text, reasoning summary, parallel function calls, usage", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({
        reply: {
          text: "Checking both cities.",
          reasoning: "Two cities, so two calls.",
          toolCalls: [
            { id: "call_a", name: "weather", arguments: "{\"city\":\"Paris\"}" },
            { id: "call_b", name: "weather", arguments: "{\"city\":\"Oslo\"}" }
          ],
          chunks: 4
        }
      })
      const request = Message.request("Weather in Paris and Oslo?", {
        tools: [{ name: "weather", parameters: { type: "object", properties: { city: { type: "string" } } } }],
        reasoningEffort: "low"
      })
      const [chat, events] = yield* Effect.gen(function* () {
        const chat = yield* LanguageModel.chat(request)
        const events = yield* Stream.runCollect(LanguageModel.stream(request))
        return [chat, Chunk.toReadonlyArray(events)] as const
      }).pipe(Effect.provide(stackFor(fake, { reasoningSummary: "auto" })))

      expect(chat).toMatchObject({
        text: "Checking both cities.",
        reasoning: "Two cities, so two calls.",
        toolCalls: [
          { id: "call_a", name: "weather", arguments: "{\"city\":\"Paris\"}" },
          { id: "call_b", name: "weather", arguments: "{\"city\":\"Oslo\"}" }
        ],
        finishReason: "tool_calls",
        provider: "openai"
      })
      expect(chat.usage.estimated).toBe(false)
      expect(chat.usage.reasoningTokens).toBeGreaterThan(0)
      const streamed = yield* LanguageModel.collect(Stream.fromIterable(events))
      expect(streamed).toEqual({ ...chat, id: streamed.id })
      const deltas = events.filter((e): e is Message.ToolCallDelta => e._tag === "ToolCallDelta")
      expect(deltas[0]).toMatchObject({ index: 0, id: "call_a", name: "weather" })
      expect(deltas.filter((d) => d.index === 1).map((d) => d.argumentsDelta).join("")).toBe("{\"city\":\"Oslo\"}")
      expect(events.filter((e) => e._tag === "ToolCall").length).toBe(2)

      const body = yield* lastBody(fake)
      expect(body.reasoning).toEqual({ effort: "low", summary: "auto" })
      expect(body.stream).toBe(true)
      assertValid("CreateResponse", body)
    }))

  it.scoped("maps the request: instructions, input items, function_call and function_call_output, options", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({ reply: { text: "ok" } })
      yield* LanguageModel.chat(
        Message.request(
          [
            Message.system("Be brief."),
            Message.user([Message.text("Describe"), Message.image("https://example.com/a.png", { detail: "low" })]),
            Message.assistant("", { toolCalls: [{ id: "call_1", name: "lookup", arguments: "{\"q\":\"a\"}" }] }),
            Message.tool("call_1", "A"),
            Message.assistant("Done."),
            Message.user("Thanks")
          ],
          {
            tools: [{ name: "lookup", description: "Look it up", parameters: { type: "object" } }],
            toolChoice: { name: "lookup" },
            maxTokens: 300,
            temperature: 0.5,
            reasoningEffort: "minimal",
            responseFormat: { type: "json_schema", name: "answer", schema: { type: "object" }, strict: true },
            stop: ["END"],
            seed: 3
          }
        )
      ).pipe(Effect.provide(stackFor(fake)))
      const [recorded] = yield* fake.requests
      expect(recorded!.path).toBe("/v1/responses")
      expect(recorded!.headers.authorization).toBe(`Bearer ${SECRET}`)
      const body = recorded!.body as Record<string, any>
      expect(body.instructions).toBe("Be brief.")
      expect(body.input).toEqual([
        {
          role: "user",
          content: [
            { type: "input_text", text: "Describe" },
            { type: "input_image", image_url: "https://example.com/a.png", detail: "low" }
          ]
        },
        { type: "function_call", call_id: "call_1", name: "lookup", arguments: "{\"q\":\"a\"}" },
        { type: "function_call_output", call_id: "call_1", output: "A" },
        { role: "assistant", content: "Done." },
        { role: "user", content: "Thanks" }
      ])
      expect(body.tools).toEqual([{ type: "function", name: "lookup", description: "Look it up", parameters: { type: "object" }, strict: false }])
      expect(body.tool_choice).toEqual({ type: "function", name: "lookup" })
      expect(body.max_output_tokens).toBe(300)
      expect(body.reasoning).toEqual({ effort: "minimal" })
      // a free-form object has no strict form: asked strict, it goes non-strict rather than fail
      expect(body.text).toEqual({ format: { type: "json_schema", name: "answer", schema: { type: "object" }, strict: false } })
      expect(body.stop).toBeUndefined()
      expect(body.seed).toBeUndefined()
      expect(body.messages).toBeUndefined()
      // A user message with a content list matches both EasyInputMessage and InputMessage, which
      // the spec's `oneOf` forbids without its `discriminator`: validate that item on its own.
      const [imageMessage, ...rest] = body.input as Array<unknown>
      assertValid("EasyInputMessage", imageMessage)
      assertValid("InputMessage", imageMessage)
      assertValid("CreateResponse", { ...body, input: rest })
    }))

  it.scoped("errors: HTTP statuses, an error event mid-stream, response.failed, a cut, malformed JSON", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({ reply: { text: "one two three four five six", chunks: 6 } })
      const stack = stackFor(fake)
      const chat = Effect.flip(LanguageModel.chat(Message.request("hi")).pipe(Effect.provide(stack)))
      const stream = Effect.gen(function* () {
        const received: Array<Message.StreamEvent> = []
        const exit = yield* Stream.runForEach(LanguageModel.stream(Message.request("hi")), (e) => Effect.sync(() => received.push(e))).pipe(
          Effect.exit
        )
        return { error: failureOf(exit), received }
      }).pipe(Effect.provide(stack))

      yield* fake.inject({ _tag: "RateLimit", retryAfterMs: 1500 })
      const limited = yield* chat
      expect(limited._tag === "RateLimitError" && limited.retryAfter).toEqual(Duration.millis(1500))
      yield* fake.inject({ _tag: "Status", status: 503 })
      expect(yield* chat).toMatchObject({ _tag: "ServerError", status: 503, retryable: true })
      yield* fake.inject({ _tag: "Status", status: 401 })
      const auth = yield* chat
      expect(auth._tag).toBe("AuthenticationError")
      expect(JSON.stringify(auth) + String(auth)).not.toContain(SECRET)

      // frames: created, in_progress, item added, content part added, then text deltas
      yield* fake.inject({ _tag: "StreamErrorEvent", afterChunks: 6 })
      const mid = yield* stream
      expect(mid.error).toMatchObject({ _tag: "StreamError", partial: true })
      expect(mid.error.message).toContain("server_error")
      const text = mid.received.map((e) => (e._tag === "TextDelta" ? e.text : "")).join("")
      expect(text.length).toBeGreaterThan(0)
      expect(mid.error._tag === "StreamError" && mid.error.partialText).toBe(text)

      yield* fake.inject({ _tag: "CutStream", afterChunks: 6, mode: "end" })
      const cut = yield* stream
      expect(cut.error).toMatchObject({ _tag: "StreamError", partial: true })
      expect(cut.error.message).toContain("response.completed")

      yield* fake.inject({ _tag: "MalformedJson", afterChunks: 3 })
      expect((yield* stream).error._tag).toBe("MalformedResponseError")
      // after text was delivered, the same fault must not look retryable: a partial StreamError
      yield* fake.inject({ _tag: "MalformedJson", afterChunks: 6 })
      expect((yield* stream).error).toMatchObject({ _tag: "StreamError", partial: true, retryable: false })
      yield* fake.inject({ _tag: "MalformedJson" })
      expect((yield* chat)._tag).toBe("MalformedResponseError")

      // a failed response with no error event before it
      yield* fake.inject({
        _tag: "Raw",
        body: [
          `event: response.created\ndata: {"type":"response.created","response":{"id":"resp_1","model":"m","status":"in_progress"}}\n\n`,
          `event: response.failed\ndata: {"type":"response.failed","response":{"id":"resp_1","status":"failed","error":{"code":"rate_limit_exceeded","message":"slow down"}}}\n\n`
        ]
      })
      const failed = yield* stream
      expect(failed.error).toMatchObject({ _tag: "StreamError", partial: false })
      expect(failed.error.message).toContain("rate_limit_exceeded: slow down")
    }))

  it.scoped("incomplete responses finish with length, and usage is estimated when absent", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({ reply: { text: "cut sho", finishReason: "length", usage: false } })
      const stack = stackFor(fake)
      const chat = yield* LanguageModel.chat(Message.request("hi")).pipe(Effect.provide(stack))
      const streamed = yield* LanguageModel.collect(LanguageModel.stream(Message.request("hi"))).pipe(Effect.provide(stack))
      expect(chat.finishReason).toBe("length")
      expect(streamed.finishReason).toBe("length")
      expect(chat.usage.estimated).toBe(true)
      expect(streamed.usage).toEqual(chat.usage)
    }))

  it.scoped("a stream with several summary parts and text the deltas missed assembles to the final response", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make()
      const final = {
        id: "resp_9",
        model: "gpt-x",
        status: "completed",
        output: [
          { type: "reasoning", id: "rs", summary: [{ type: "summary_text", text: "First." }, { type: "summary_text", text: "Second." }] },
          { type: "message", id: "m", role: "assistant", content: [{ type: "output_text", text: "Hello world" }] }
        ],
        usage: { input_tokens: 3, output_tokens: 4, total_tokens: 7 }
      }
      const events = [
        { type: "response.created", response: { id: "resp_9", model: "gpt-x", status: "in_progress", output: [] } },
        { type: "response.reasoning_summary_text.delta", output_index: 0, summary_index: 0, delta: "First." },
        { type: "response.reasoning_summary_text.delta", output_index: 0, summary_index: 1, delta: "Sec" },
        { type: "response.reasoning_summary_text.delta", output_index: 0, summary_index: 1, delta: "ond." },
        { type: "response.brand_new_event", output_index: 1, whatever: true },
        { type: "response.output_text.delta", output_index: 1, content_index: 0, delta: "Hello" },
        { type: "response.output_item.done", output_index: 1, item: final.output[1] },
        { type: "response.completed", response: final }
      ]
      const body = events.map((e) => `event: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`).join("")
      yield* fake.inject({ _tag: "Raw", body: [body.slice(0, 100), body.slice(100)] })
      const streamed = yield* LanguageModel.collect(LanguageModel.stream(Message.request("hi"))).pipe(Effect.provide(stackFor(fake)))
      const chat = fromWireResponse("openai", "gpt-x", Message.request("hi"), JSON.stringify(final))
      expect(streamed.reasoning).toBe("First.\n\nSecond.")
      expect(streamed.text).toBe("Hello world")
      expect(streamed).toEqual(chat)
    }))

  it.scoped("layerConfig reads its options from config", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({ reply: { text: "configured" } })
      const stack = OpenAiResponses.layerConfig({ model: Config.string("OPENAI_MODEL"), baseUrl: Config.string("OPENAI_BASE_URL") }).pipe(
        Layer.provide(KeyPool.layer({ providerId: "openai", keys: [SECRET] })),
        Layer.provide(RateLimiter.unlimited),
        Layer.provide(Transport.layerUndici)
      )
      const response = yield* LanguageModel.chat(Message.request("hi")).pipe(
        Effect.provide(stack),
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["OPENAI_MODEL", "gpt-config"], ["OPENAI_BASE_URL", fake.baseUrl]])))
      )
      expect(response.text).toBe("configured")
      expect((yield* lastBody(fake)).model).toBe("gpt-config")
    }))
})
