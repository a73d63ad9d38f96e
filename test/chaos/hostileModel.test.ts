/**
 * The chaos suite's hostile model: servers that speak each wire format (Chat Completions,
 * Responses, Anthropic, Gemini, Ollama), as JSON and as a stream, and answer with what a
 * buggy or hostile model writes: tool arguments nested 3 000 and 10 000 levels deep, tool
 * input that is not a JSON object (an array, a string, null, a number, text cut off by
 * max_tokens), and structured output nested as deep.
 *
 * Every run ends in a success or a typed `LlmError`, never a defect or a hang. Arguments the
 * wire carries go back to the model as a tool error and the loop goes on to the model's next
 * reply; arguments too deep for a parser to carry may instead end the call with a typed error.
 * Structured output too deep is a `StructuredOutputError`.
 */
import { describe, expect, it } from "@effect/vitest"
import { Cause, Chunk, ConfigError, Effect, Exit, Layer, Option, Schema, Stream } from "effect"
import {
  Anthropic,
  Gemini,
  KeyPool,
  LanguageModel,
  LlmError,
  Message,
  Ollama,
  OpenAiCompatible,
  OpenAiResponses,
  RateLimiter,
  Tool,
  Toolkit,
  Transport
} from "../../src/index.js"
import * as Testing from "../../src/Testing.js"

type Api = "chat" | "responses" | "anthropic" | "gemini" | "ollama"
const apis: ReadonlyArray<Api> = ["chat", "responses", "anthropic", "gemini", "ollama"]

const layerOf = (api: Api, fake: Testing.FakeProviderService): Layer.Layer<LanguageModel.LanguageModel, ConfigError.ConfigError> => {
  const model = {
    chat: () => OpenAiCompatible.layer({ model: "gpt-4o-mini", baseUrl: fake.baseUrl }),
    responses: () => OpenAiResponses.layer({ model: "gpt-5-mini", baseUrl: fake.baseUrl }),
    anthropic: () => Anthropic.layer({ model: "claude-sonnet-4-5", baseUrl: fake.url }),
    gemini: () => Gemini.layer({ model: "gemini-2.5-flash", baseUrl: `${fake.url}/v1beta` }),
    ollama: () => Ollama.layer({ model: "llama3.2", baseUrl: fake.url })
  }[api]()
  return model.pipe(
    Layer.provide(KeyPool.layer({ providerId: api, keys: ["k-1"] })),
    Layer.provide(RateLimiter.unlimited),
    Layer.provide(Transport.layerUndici)
  )
}

const deep = (levels: number) => `{"text":${"[".repeat(levels)}${"]".repeat(levels)}}`

/** Tool arguments as the model wrote them; `text`: only a format that carries arguments as text can send it. */
const hostileArguments: ReadonlyArray<{ readonly name: string; readonly args: string; readonly text?: boolean; readonly tooDeepToCarry?: boolean }> = [
  { name: "nested 3 000 deep", args: deep(3000) },
  { name: "nested 10 000 deep", args: deep(10_000), tooDeepToCarry: true },
  { name: "an array", args: "[1, 2]" },
  { name: "a string", args: "\"hello\"" },
  { name: "null", args: "null" },
  { name: "a number", args: "42" },
  { name: "cut off by max_tokens", args: "{\"text\": \"cut off in the mid", text: true }
]

const sse = (frames: ReadonlyArray<string>) => frames.map((f) => `data: ${f}\n\n`).join("")
const namedSse = (events: ReadonlyArray<Record<string, unknown>>) =>
  events.map((e) => `event: ${String(e.type)}\ndata: ${JSON.stringify(e)}\n\n`).join("")
/** `text` in three pieces, as a stream carries it. */
const thirds = (text: string) => {
  const a = Math.floor(text.length / 3)
  return [text.slice(0, a), text.slice(a, 2 * a), text.slice(2 * a)]
}

/** A reply calling `echo` with `args`, in `api`'s wire format; undefined when the format cannot carry them. */
const toolCallBody = (api: Api, stream: boolean, args: string, text: boolean): Testing.Fault | undefined => {
  const json = (body: string): Testing.Fault => ({ _tag: "Raw", body, contentType: "application/json" })
  const events = (body: string, contentType = "text/event-stream"): Testing.Fault => ({ _tag: "Raw", body, contentType })
  const usage = "\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":5,\"total_tokens\":10}"
  switch (api) {
    case "chat": {
      if (!stream) {
        return json(
          `{"id":"c1","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_h","type":"function","function":{"name":"echo","arguments":${
            JSON.stringify(args)
          }}}]},"finish_reason":"tool_calls"}],${usage}}`
        )
      }
      const frame = (delta: unknown, finish: string | null = null) => JSON.stringify({ id: "c1", model: "m", choices: [{ index: 0, delta, finish_reason: finish }] })
      return events(sse([
        frame({ role: "assistant", tool_calls: [{ index: 0, id: "call_h", type: "function", function: { name: "echo", arguments: "" } }] }),
        ...thirds(args).map((piece) => frame({ tool_calls: [{ index: 0, function: { arguments: piece } }] })),
        frame({}, "tool_calls"),
        "[DONE]"
      ]))
    }
    case "responses": {
      const item = (a: string) => ({ type: "function_call", id: "fc_1", call_id: "call_h", name: "echo", arguments: a, status: "completed" })
      const usageObject = { input_tokens: 5, output_tokens: 5, total_tokens: 10 }
      if (!stream) {
        return json(JSON.stringify({ id: "resp_1", object: "response", status: "completed", model: "m", output: [item(args)], usage: usageObject }))
      }
      return events(sse([
        JSON.stringify({ type: "response.created", response: { id: "resp_1", model: "m", status: "in_progress" } }),
        JSON.stringify({ type: "response.output_item.added", output_index: 0, item: { ...item(""), status: "in_progress" } }),
        ...thirds(args).map((delta) => JSON.stringify({ type: "response.function_call_arguments.delta", output_index: 0, item_id: "fc_1", delta })),
        JSON.stringify({ type: "response.function_call_arguments.done", output_index: 0, item_id: "fc_1", arguments: args }),
        JSON.stringify({ type: "response.output_item.done", output_index: 0, item: item(args) }),
        JSON.stringify({ type: "response.completed", response: { id: "resp_1", model: "m", status: "completed", output: [item(args)], usage: usageObject } })
      ]))
    }
    case "anthropic": {
      if (!stream) {
        if (text) return undefined
        return json(
          `{"id":"msg_1","type":"message","role":"assistant","model":"m","content":[{"type":"tool_use","id":"call_h","name":"echo","input":${args}}],"stop_reason":"tool_use","usage":{"input_tokens":5,"output_tokens":5}}`
        )
      }
      return events(namedSse([
        { type: "message_start", message: { id: "msg_1", type: "message", role: "assistant", model: "m", content: [], usage: { input_tokens: 5, output_tokens: 1 } } },
        { type: "content_block_start", index: 0, content_block: { type: "tool_use", id: "call_h", name: "echo", input: {} } },
        ...thirds(args).map((partial_json) => ({ type: "content_block_delta", index: 0, delta: { type: "input_json_delta", partial_json } })),
        { type: "content_block_stop", index: 0 },
        { type: "message_delta", delta: { stop_reason: text ? "max_tokens" : "tool_use" }, usage: { output_tokens: 9 } },
        { type: "message_stop" }
      ]))
    }
    case "gemini": {
      if (text) return undefined
      const chunk = `{"candidates":[{"content":{"role":"model","parts":[{"functionCall":{"name":"echo","args":${args}}}]},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":5,"candidatesTokenCount":5,"totalTokenCount":10},"responseId":"g1"}`
      return stream ? events(`data: ${chunk}\n\n`) : json(chunk)
    }
    case "ollama": {
      if (text) return undefined
      const call = `{"model":"m","created_at":"2026-01-01T00:00:00Z","message":{"role":"assistant","content":"","tool_calls":[{"function":{"name":"echo","arguments":${args}}}]},`
      const done = "\"done_reason\":\"stop\",\"prompt_eval_count\":5,\"eval_count\":5"
      return stream
        ? events(`${call}"done":false}\n{"model":"m","created_at":"2026-01-01T00:00:01Z","message":{"role":"assistant","content":""},"done":true,${done}}\n`, "application/x-ndjson")
        : json(`${call}"done":true,${done}}`)
    }
  }
}

const isStream = (api: Api, request: Testing.RecordedRequest): boolean =>
  api === "gemini" ? request.path.includes("streamGenerateContent") : (request.body as { stream?: unknown }).stream === true

const Echo = Tool.make("echo", { parameters: Schema.Struct({ text: Schema.String }), success: Schema.String })
const Kit = Toolkit.make(Echo)
const handlers = Kit.toLayer({ echo: ({ text }) => Effect.succeed(text) })

/** How one run ended. */
type Outcome =
  | { readonly _tag: "Done"; readonly toolError: string | undefined }
  | { readonly _tag: "Typed"; readonly error: LlmError.LlmError }
  | { readonly _tag: "Defect"; readonly cause: string }
  | { readonly _tag: "Hang" }

const outcomeOf = <A>(exit: Exit.Exit<A, unknown>, done: (a: A) => Outcome): Outcome => {
  if (Exit.isSuccess(exit)) return done(exit.value)
  const failure = Option.getOrUndefined(Cause.failureOption(exit.cause))
  if (failure !== undefined && (failure as { _tag?: unknown })._tag === "TimeoutException") return { _tag: "Hang" }
  if (failure !== undefined && LlmError.isLlmError(failure)) return { _tag: "Typed", error: failure }
  return { _tag: "Defect", cause: Cause.pretty(exit.cause).slice(0, 400) }
}

/** A run may take this long before it counts as a hang; no check reads it as a time. */
const hangAfter = "30 seconds"

describe("chaos: a hostile model on every wire format", () => {
  it.scopedLive("tool arguments nested deep or not a JSON object go back as tool errors, or end in a typed error; never a defect or a hang", () =>
    Effect.gen(function*() {
      const problems: Array<string> = []
      let toolErrors = 0
      for (const api of apis) {
        for (const hostile of hostileArguments) {
          for (const stream of [false, true]) {
            const body = toolCallBody(api, stream, hostile.args, hostile.text === true)
            if (body === undefined) continue
            const fake = yield* Testing.FakeProvider.make({
              respond: (request, turn) => (turn.turn === 0 ? toolCallBody(api, isStream(api, request), hostile.args, hostile.text === true) : { text: "done" })
            })
            const layer = Layer.merge(layerOf(api, fake), handlers)
            const request = { request: Message.request("echo something"), toolkit: Kit, maxSteps: 3 }
            const run = stream
              ? Effect.map(Stream.runCollect(LanguageModel.streamText(request)), (events) => {
                const last = Chunk.toArray(events).at(-1)
                if (last?._tag !== "Finish") throw new Error("the stream ended without Finish")
                return last.result
              })
              : LanguageModel.generateText(request)
            const exit = yield* run.pipe(Effect.provide(layer), Effect.timeout(hangAfter), Effect.exit)
            const outcome = outcomeOf(exit, (result): Outcome => {
              const first = result.steps[0]?.toolResults[0]
              return { _tag: "Done", toolError: first?.isError === true && result.text === "done" && typeof first.content === "string" ? first.content : undefined }
            })
            const where = `${api} ${stream ? "stream" : "chat"}, arguments ${hostile.name}`
            if (outcome._tag === "Defect" || outcome._tag === "Hang") problems.push(`${where}: ${outcome._tag} ${outcome._tag === "Defect" ? outcome.cause : ""}`)
            else if (outcome._tag === "Done") {
              if (outcome.toolError === undefined) problems.push(`${where}: succeeded without sending a tool error back`)
              else toolErrors++
              // what went back to the model: the tool error, for the call it answers
              const sent = yield* fake.requests
              if (sent.length !== 2) problems.push(`${where}: ${sent.length} requests, expected the call and the answer`)
            } else if (hostile.tooDeepToCarry !== true) {
              problems.push(`${where}: ${outcome.error._tag} (${outcome.error.message.slice(0, 200)}) instead of a tool error`)
            } else if (outcome.error._tag !== "MalformedResponseError" && outcome.error._tag !== "StreamError") {
              problems.push(`${where}: ${outcome.error._tag} for arguments too deep to carry`)
            }
          }
        }
      }
      expect(problems).toEqual([])
      expect(toolErrors).toBeGreaterThan(40)
    }), 300_000)

  it.scopedLive("structured output nested deep is a StructuredOutputError in generateObject and streamObject; never a defect or a hang", () =>
    Effect.gen(function*() {
      interface Tree {
        readonly children: ReadonlyArray<Tree>
      }
      const Tree: Schema.Schema<Tree> = Schema.Struct({ children: Schema.Array(Schema.suspend(() => Tree)) }).annotations({ identifier: "Tree" })
      const cases = [
        { name: "a recursive schema, 3 000 levels", schema: Tree as Schema.Schema<unknown, unknown>, text: "{\"children\":[".repeat(1200) + "]}".repeat(1200) },
        { name: "an Unknown field, 10 000 levels", schema: Schema.Struct({ data: Schema.Unknown }) as Schema.Schema<unknown, unknown>, text: `{"data":${"[".repeat(10_000)}${"]".repeat(10_000)}}` }
      ]
      const problems: Array<string> = []
      for (const api of apis) {
        for (const c of cases) {
          // Anthropic's structured output is a forced tool's input: the fake parses the text to send it
          if (api === "anthropic" && c.text.length > 10_000) continue
          const fake = yield* Testing.FakeProvider.make({ reply: { text: c.text, chunks: 8 } })
          const layer = layerOf(api, fake)
          const options = { request: Message.request("a tree"), schema: c.schema, repairAttempts: 1 }
          const generated = yield* LanguageModel.generateObject(options).pipe(Effect.provide(layer), Effect.timeout(hangAfter), Effect.exit)
          const streamed = yield* Stream.runDrain(LanguageModel.streamObject(options)).pipe(Effect.provide(layer), Effect.timeout(hangAfter), Effect.exit)
          for (const [mode, exit] of [["generateObject", generated], ["streamObject", streamed]] as const) {
            const outcome = outcomeOf(exit as Exit.Exit<unknown, unknown>, () => ({ _tag: "Done", toolError: undefined }))
            const where = `${api} ${mode}, ${c.name}`
            if (outcome._tag !== "Typed") problems.push(`${where}: ${outcome._tag}${outcome._tag === "Defect" ? ` ${outcome.cause}` : ""}`)
            else if (outcome.error._tag !== "StructuredOutputError") problems.push(`${where}: ${outcome.error._tag}: ${outcome.error.message.slice(0, 200)}`)
          }
        }
      }
      expect(problems).toEqual([])
    }), 300_000)
})
