/**
 * FakeProvider scripts multi-turn exchanges in every wire format: replies by turn, a responder
 * that reads the request back (tool results, echoed reasoning state), tool calls and reasoning
 * state in replies, and Anthropic's output tool for structured replies, over real HTTP.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { Anthropic, Gemini, KeyPool, LanguageModel, Message, Ollama, OpenAiCompatible, OpenAiResponses, RateLimiter, Transport } from "../../../src/index.js"
import * as Testing from "../../../src/Testing.js"

const stackOf = (api: string, fake: Testing.FakeProviderService) => {
  const model = {
    chat: () => OpenAiCompatible.layer({ model: "gpt-x", baseUrl: fake.baseUrl }),
    responses: () => OpenAiResponses.layer({ model: "gpt-x", baseUrl: fake.baseUrl }),
    anthropic: () => Anthropic.layer({ model: "claude", baseUrl: fake.url }),
    gemini: () => Gemini.layer({ model: "gemini-3-flash", baseUrl: `${fake.url}/v1beta` }),
    ollama: () => Ollama.layer({ model: "llama", baseUrl: fake.url })
  }[api]!()
  return model.pipe(
    Layer.provide(KeyPool.layer({ providerId: api, keys: ["sk-test"] })),
    Layer.provide(RateLimiter.unlimited),
    Layer.provide(Transport.layerUndici)
  )
}

/** What each format sends back of a reply with `reasoning` and `signature: "c2ln"`. */
const echoed: Record<string, ReadonlyArray<unknown>> = {
  chat: [],
  ollama: [],
  anthropic: [{ type: "thinking", thinking: "Think.", signature: "c2ln" }],
  gemini: ["c2ln"],
  responses: [{ type: "reasoning", id: "rs_fake_0", summary: [{ type: "summary_text", text: "Think." }], encrypted_content: "c2ln" }]
}

const lookup = { name: "lookup", parameters: { type: "object", properties: { q: { type: "string" } }, required: ["q"] } }

describe("FakeProvider: multi-turn scripts per wire format", () => {
  for (const api of ["chat", "responses", "anthropic", "gemini", "ollama"]) {
    for (const mode of ["chat", "stream"] as const) {
      it.scoped(`${api} (${mode}): a tool call with reasoning state, then an answer; the responder sees the results and the state sent back`, () =>
        Effect.gen(function* () {
          const turns: Array<Testing.FakeTurn> = []
          const fake = yield* Testing.FakeProvider.make({
            replies: [
              { text: "", reasoning: "Think.", signature: "c2ln", toolCalls: [{ id: "call_1", name: "lookup", arguments: `{"q":"a"}` }] },
              { text: "Done." }
            ],
            respond: (_, turn) => {
              turns.push(turn)
              return undefined
            }
          })
          const ask = (request: Message.ChatRequest) =>
            (mode === "chat" ? LanguageModel.chat(request) : LanguageModel.collect(LanguageModel.stream(request))).pipe(
              Effect.provide(stackOf(api, fake))
            )
          const options = { tools: [lookup], reasoningEffort: "low" as const, maxTokens: 20000 }
          const first = yield* ask(Message.request("Look up a", options))
          expect(first.toolCalls.map((c) => [c.name, JSON.parse(c.arguments)])).toEqual([["lookup", { q: "a" }]])
          expect(first.finishReason).toBe("tool_calls")
          if (echoed[api]!.length > 0) expect(first.reasoningState).toBeDefined()
          const call = first.toolCalls[0]!
          const second = yield* ask(Message.request([Message.user("Look up a"), Message.fromResponse(first), Message.tool(call.id, `{"r":1}`)], options))
          expect(second.text).toBe("Done.")
          expect(turns.map((t) => t.turn)).toEqual([0, 1])
          expect(turns[0]!.lastUserText).toBe("Look up a")
          expect(turns[0]!.tools).toEqual(["lookup"])
          expect(turns[0]!.toolResults).toEqual([])
          expect(turns[1]!.toolResults).toEqual([{ toolCallId: api === "ollama" ? "lookup" : call.id, name: "lookup", content: `{"r":1}` }])
          expect(turns[1]!.reasoningState).toEqual(echoed[api])
        }))
    }
  }

  it.scoped("the last reply repeats; setReplies starts over", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({ replies: [{ text: "one" }, { text: "two" }] })
      const ask = LanguageModel.chat(Message.request("hi")).pipe(Effect.map((r) => r.text), Effect.provide(stackOf("chat", fake)))
      expect([yield* ask, yield* ask, yield* ask]).toEqual(["one", "two", "two"])
      yield* fake.setReplies([{ text: "again" }])
      expect(yield* ask).toBe("again")
    }))

  for (const mode of ["chat", "stream"] as const) {
    it.scoped(`anthropic (${mode}): a json_schema request is answered through the forced output tool; the reply's text is the JSON`, () =>
      Effect.gen(function* () {
        const fake = yield* Testing.FakeProvider.make({ reply: { text: `{"name":"Ada"}` } })
        const request = Message.request("Who?", {
          responseFormat: { type: "json_schema", name: "person", schema: { type: "object", properties: { name: { type: "string" } }, required: ["name"] } }
        })
        const response = yield* (mode === "chat" ? LanguageModel.chat(request) : LanguageModel.collect(LanguageModel.stream(request))).pipe(
          Effect.provide(stackOf("anthropic", fake))
        )
        expect(JSON.parse(response.text)).toEqual({ name: "Ada" })
        expect(response.toolCalls).toEqual([])
        expect(response.finishReason).toBe("stop")
        const body = (yield* fake.requests)[0]!.body as Record<string, any>
        expect(body.tool_choice).toEqual({ type: "tool", name: "person" })
      }))
  }
})
