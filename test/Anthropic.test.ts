import { describe, expect, it } from "@effect/vitest"
import { Chunk, Config, ConfigProvider, Duration, Effect, Exit, Layer, Stream } from "effect"
import { Anthropic, KeyPool, LanguageModel, Message, RateLimiter, Transport } from "../src/index.js"
import * as Testing from "../src/Testing.js"

const SECRET = "sk-ant-test-secret-0123456789"

const stackFor = (fake: Testing.FakeProviderService, options: Partial<Anthropic.Options> = {}, limiter = RateLimiter.unlimited) =>
  Anthropic.layer({ model: "claude-sonnet-4-5", baseUrl: fake.url, ...options }).pipe(
    Layer.provide(KeyPool.layer({ providerId: "anthropic", keys: [SECRET] })),
    Layer.provide(limiter),
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

describe("Anthropic", () => {
  it.scoped("chat and stream give the same response: text, thinking, parallel tool calls, usage", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({
        reply: {
          text: "Let me look both up.",
          reasoning: "The user wants two cities; call the tool twice.",
          toolCalls: [
            { id: "toolu_a", name: "weather", arguments: "{\"city\":\"Paris\"}" },
            // spaced, as Claude streams input JSON; chat returns the decoded input re-serialised
            { id: "toolu_b", name: "weather", arguments: "{\"city\": \"Oslo\", \"unit\": \"C\"}" }
          ],
          chunks: 5
        }
      })
      const request = Message.request("Weather in Paris and Oslo?", {
        tools: [{ name: "weather", description: "Current weather", parameters: { type: "object", properties: { city: { type: "string" } } } }]
      })
      const [chat, events] = yield* Effect.gen(function* () {
        const chat = yield* LanguageModel.chat(request)
        const events = yield* Stream.runCollect(LanguageModel.stream(request))
        return [chat, Chunk.toReadonlyArray(events)] as const
      }).pipe(Effect.provide(stackFor(fake)))

      expect(chat.text).toBe("Let me look both up.")
      expect(chat.reasoning).toBe("The user wants two cities; call the tool twice.")
      expect(chat.toolCalls).toEqual([
        { id: "toolu_a", name: "weather", arguments: "{\"city\":\"Paris\"}" },
        { id: "toolu_b", name: "weather", arguments: "{\"city\":\"Oslo\",\"unit\":\"C\"}" }
      ])
      expect(chat.finishReason).toBe("tool_calls")
      expect(chat.provider).toBe("anthropic")
      expect(chat.usage.estimated).toBe(false)
      expect(chat.usage.inputTokens).toBeGreaterThan(0)

      const streamed = yield* LanguageModel.collect(Stream.fromIterable(events))
      expect(streamed).toEqual({ ...chat, id: streamed.id })
      // the tool calls arrive as fragments per call index, then once complete
      const deltas = events.filter((e): e is Message.ToolCallDelta => e._tag === "ToolCallDelta")
      expect(deltas[0]).toMatchObject({ index: 0, id: "toolu_a", name: "weather" })
      expect(deltas.filter((d) => d.index === 1).map((d) => d.argumentsDelta).join("")).toBe("{\"city\": \"Oslo\", \"unit\": \"C\"}")
      expect(events.filter((e) => e._tag === "ToolCall").map((e) => (e as Message.ToolCallComplete).index)).toEqual([0, 1])
      // thinking comes before text, as the model produced it
      expect(events.findIndex((e) => e._tag === "ReasoningDelta")).toBeLessThan(events.findIndex((e) => e._tag === "TextDelta"))
      expect(events[events.length - 1]!._tag).toBe("Finish")
    }))

  it.scoped("maps the request: headers, system prompt, default max_tokens, tools, tool results in one user turn", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({ reply: { text: "ok" } })
      yield* LanguageModel.chat(
        Message.request(
          [
            Message.system("Be brief."),
            Message.user([Message.text("What is in"), Message.image("data:image/png;base64,iVBORw0KGgo=")]),
            Message.assistant("Checking.", {
              toolCalls: [
                { id: "toolu_1", name: "lookup", arguments: "{\"q\":\"a\"}" },
                { id: "toolu_2", name: "lookup", arguments: "" }
              ]
            }),
            Message.tool("toolu_1", "A"),
            Message.tool("toolu_2", "B"),
            Message.user("Thanks"),
            Message.system("Answer in French.")
          ],
          {
            tools: [{ name: "lookup", parameters: { type: "object" } }],
            toolChoice: "required",
            temperature: 0.2,
            stop: ["END"]
          }
        )
      ).pipe(Effect.provide(stackFor(fake)))
      const [recorded] = yield* fake.requests
      expect(recorded!.path).toBe("/v1/messages")
      expect(recorded!.headers["x-api-key"]).toBe(SECRET)
      expect(recorded!.headers["anthropic-version"]).toBe("2023-06-01")
      expect(recorded!.headers["authorization"]).toBeUndefined()
      const body = recorded!.body as Record<string, any>
      expect(body.system).toBe("Be brief.\n\nAnswer in French.")
      expect(body.max_tokens).toBe(4096)
      expect(body.stop_sequences).toEqual(["END"])
      expect(body.tool_choice).toEqual({ type: "any" })
      expect(body.tools).toEqual([{ name: "lookup", input_schema: { type: "object" } }])
      expect(body.messages).toEqual([
        {
          role: "user",
          content: [
            { type: "text", text: "What is in" },
            { type: "image", source: { type: "base64", media_type: "image/png", data: "iVBORw0KGgo=" } }
          ]
        },
        {
          role: "assistant",
          content: [
            { type: "text", text: "Checking." },
            { type: "tool_use", id: "toolu_1", name: "lookup", input: { q: "a" } },
            { type: "tool_use", id: "toolu_2", name: "lookup", input: {} }
          ]
        },
        {
          role: "user",
          content: [
            { type: "tool_result", tool_use_id: "toolu_1", content: "A" },
            { type: "tool_result", tool_use_id: "toolu_2", content: "B" },
            { type: "text", text: "Thanks" }
          ]
        }
      ])
    }))

  it.scoped("reasoningEffort turns thinking on with a budget that fits under max_tokens", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({ reply: { text: "ok" } })
      const stack = stackFor(fake, { defaultMaxTokens: 1000 })
      yield* LanguageModel.chat(Message.request("hi", { reasoningEffort: "low" })).pipe(Effect.provide(stack))
      expect(yield* lastBody(fake)).toMatchObject({ max_tokens: 3048, thinking: { type: "enabled", budget_tokens: 2048 } })
      yield* LanguageModel.chat(Message.request("hi", { reasoningEffort: "high", maxTokens: 5000 })).pipe(Effect.provide(stack))
      expect(yield* lastBody(fake)).toMatchObject({ max_tokens: 5000, thinking: { type: "enabled", budget_tokens: 4999 } })
      yield* LanguageModel.chat(Message.request("hi", { reasoningEffort: "none" })).pipe(Effect.provide(stack))
      expect((yield* lastBody(fake)).thinking).toBeUndefined()
      const tooSmall = yield* LanguageModel.chat(Message.request("hi", { reasoningEffort: "low", maxTokens: 500 })).pipe(
        Effect.provide(stack),
        Effect.exit
      )
      expect(failureOf(tooSmall)).toMatchObject({ _tag: "InvalidRequestError" })
      expect((yield* fake.requests).length).toBe(3)
    }))

  it.scoped("bad tool arguments in the history fail before sending, naming the field", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make()
      const request = Message.request([
        Message.user("hi"),
        Message.assistant("", { toolCalls: [{ id: "t", name: "f", arguments: "{not json" }] }),
        Message.tool("t", "x")
      ])
      const chat = yield* LanguageModel.chat(request).pipe(Effect.provide(stackFor(fake)), Effect.exit)
      const error = failureOf(chat)
      expect(error._tag).toBe("InvalidRequestError")
      expect(error.message).toContain("messages[1].toolCalls[0].arguments")
      const stream = yield* Stream.runDrain(LanguageModel.stream(request)).pipe(Effect.provide(stackFor(fake)), Effect.exit)
      expect(failureOf(stream)._tag).toBe("InvalidRequestError")
      expect((yield* fake.requests).length).toBe(0)
    }))

  it.scoped("maps error statuses in Anthropic's body shape, and never shows the key", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make()
      const stack = stackFor(fake)
      const run = Effect.flip(LanguageModel.chat(Message.request("hi")).pipe(Effect.provide(stack)))

      yield* fake.inject({ _tag: "RateLimit", retryAfterSeconds: 7 })
      const limited = yield* run
      expect(limited._tag).toBe("RateLimitError")
      expect(limited.message).toContain("rate_limit_error")
      expect(limited._tag === "RateLimitError" && limited.retryAfter).toEqual(Duration.seconds(7))

      yield* fake.inject({ _tag: "Status", status: 529 })
      const overloaded = yield* run
      expect(overloaded).toMatchObject({ _tag: "ServerError", status: 529, retryable: true })
      expect(overloaded.message).toContain("overloaded_error")

      yield* fake.inject({
        _tag: "Status",
        status: 400,
        body: JSON.stringify({ type: "error", error: { type: "invalid_request_error", message: "prompt is too long: 210000 tokens > 200000 maximum" } })
      })
      expect((yield* run)._tag).toBe("ContextLengthError")

      yield* fake.inject({ _tag: "RateLimit", insufficientQuota: true })
      expect((yield* run)._tag).toBe("QuotaExceededError")

      yield* fake.inject({ _tag: "Status", status: 401 })
      const auth = yield* run
      expect(auth._tag).toBe("AuthenticationError")
      expect(JSON.stringify(auth)).not.toContain(SECRET)
      expect(String(auth)).not.toContain(SECRET)
    }))

  it.scoped("errors mid-stream: an error event, a cut, malformed JSON", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({ reply: { text: "one two three four five six", chunks: 6 } })
      const run = Effect.gen(function* () {
        const received: Array<Message.StreamEvent> = []
        const exit = yield* Stream.runForEach(LanguageModel.stream(Message.request("hi")), (e) => Effect.sync(() => received.push(e))).pipe(
          Effect.exit
        )
        return { error: failureOf(exit), received }
      }).pipe(Effect.provide(stackFor(fake)))

      // frames: message_start, block start, ping, then text deltas
      yield* fake.inject({ _tag: "StreamErrorEvent", afterChunks: 5 })
      const mid = yield* run
      expect(mid.error).toMatchObject({ _tag: "StreamError", partial: true, retryable: true })
      expect(mid.error.message).toContain("overloaded_error")
      const text = mid.received.map((e) => (e._tag === "TextDelta" ? e.text : "")).join("")
      expect(text.length).toBeGreaterThan(0)
      expect(mid.error._tag === "StreamError" && mid.error.partialText).toBe(text)

      yield* fake.inject({ _tag: "StreamErrorEvent", afterChunks: 1 })
      const early = yield* run
      expect(early.error).toMatchObject({ _tag: "StreamError", partial: false })

      yield* fake.inject({ _tag: "CutStream", afterChunks: 4, mode: "end" })
      const cut = yield* run
      expect(cut.error).toMatchObject({ _tag: "StreamError", partial: true })
      expect(cut.error.message).toContain("message_stop")

      // a cut after text is mid-stream (the fake flushes the frames before it): a partial StreamError, not a reset
      yield* fake.inject({ _tag: "CutStream", afterChunks: 4 })
      const destroyed = yield* run
      expect(destroyed.error._tag).toBe("StreamError")
      expect(destroyed.error._tag === "StreamError" && destroyed.error.partial).toBe(true)
      expect(destroyed.received.some((e) => e._tag === "TextDelta")).toBe(true)

      yield* fake.inject({ _tag: "MalformedJson", afterChunks: 3 })
      expect((yield* run).error._tag).toBe("MalformedResponseError")

      yield* fake.inject({ _tag: "MalformedJson" })
      const json = yield* Effect.flip(LanguageModel.chat(Message.request("hi")).pipe(Effect.provide(stackFor(fake))))
      expect(json._tag).toBe("MalformedResponseError")
    }))

  it.scoped("the key lease lives as long as the stream, and is released when the consumer stops early", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({ reply: { text: "a b c d e f g h", chunks: 8, chunkDelayMs: 20 } })
      const stack = Anthropic.layer({ model: "claude-sonnet-4-5", baseUrl: fake.url }).pipe(
        Layer.provideMerge(KeyPool.layer({ providerId: "anthropic", keys: [SECRET] })),
        Layer.provide(RateLimiter.unlimited),
        Layer.provide(Transport.layerUndici)
      )
      const [during, after, taken] = yield* Effect.gen(function* () {
        let during = -1
        const taken = yield* LanguageModel.stream(Message.request("hi")).pipe(
          Stream.filter((e) => e._tag === "TextDelta"),
          Stream.tap(() => Effect.map(KeyPool.status, (keys) => void (during = keys[0]!.inFlight))),
          Stream.take(2),
          Stream.runCollect
        )
        const after = (yield* KeyPool.status)[0]!.inFlight
        return [during, after, Chunk.size(taken)] as const
      }).pipe(Effect.provide(stack))
      expect(taken).toBe(2)
      expect(during).toBe(1)
      expect(after).toBe(0)
    }))

  it.scoped("passes anthropic-ratelimit-* response headers to the limiter", () =>
    Effect.gen(function* () {
      const observed: Array<Record<string, string | undefined>> = []
      const recording = Layer.succeed(RateLimiter.RateLimiter, {
        admit: () => Effect.void,
        settle: () => Effect.void,
        observe: (headers) => Effect.sync(() => void observed.push({ ...headers })),
        learnLimits: () => Effect.void,
        status: Effect.succeed({ requests: undefined, tokens: undefined }),
        reset: Effect.void
      })
      const fake = yield* Testing.FakeProvider.make({
        reply: {
          text: "ok",
          headers: {
            "anthropic-ratelimit-requests-remaining": "49",
            "anthropic-ratelimit-requests-reset": "2026-11-21T12:00:30Z"
          }
        }
      })
      yield* LanguageModel.chat(Message.request("hi")).pipe(Effect.provide(stackFor(fake, {}, recording)))
      yield* Stream.runDrain(LanguageModel.stream(Message.request("hi"))).pipe(Effect.provide(stackFor(fake, {}, recording)))
      expect(observed).toHaveLength(2)
      for (const headers of observed) {
        expect(headers["anthropic-ratelimit-requests-remaining"]).toBe("49")
        expect(headers["anthropic-ratelimit-requests-reset"]).toBe("2026-11-21T12:00:30Z")
      }
    }))

  it.scoped("finish reasons and usage without a usage report", () =>
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

  it.scoped("layerConfig reads its options from config", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({ reply: { text: "configured" } })
      const stack = Anthropic.layerConfig({
        model: Config.string("ANTHROPIC_MODEL"),
        baseUrl: Config.string("ANTHROPIC_BASE_URL")
      }).pipe(
        Layer.provide(KeyPool.layer({ providerId: "anthropic", keys: [SECRET] })),
        Layer.provide(RateLimiter.unlimited),
        Layer.provide(Transport.layerUndici)
      )
      const response = yield* LanguageModel.chat(Message.request("hi")).pipe(
        Effect.provide(stack),
        Effect.withConfigProvider(
          ConfigProvider.fromMap(new Map([["ANTHROPIC_MODEL", "claude-from-config"], ["ANTHROPIC_BASE_URL", fake.url]]))
        )
      )
      expect(response.text).toBe("configured")
      expect(response.model).toBe("claude-from-config")
      expect((yield* lastBody(fake)).model).toBe("claude-from-config")
    }))
})
