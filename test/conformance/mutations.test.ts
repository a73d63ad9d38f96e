/**
 * Every recorded stream in ../shared/fixtures, broken on purpose, through the provider that
 * speaks it: each JSON value of each event replaced by `null` (one at a time), and the body
 * truncated at every event boundary. Whatever the damage, a stream ends with its `Finish` or
 * with a typed error, never as a success without `Finish`, and never with a defect. A failure
 * after events were delivered is a partial `StreamError` whose text is what was delivered.
 *
 * The streams run through the whole provider path (limiter, key lease, framing, parsing,
 * deadlines) over an in-memory transport: the events before the damaged one arrive in one
 * read and the rest in another, so the first batch is delivered before the damage is met.
 * `test/internal/request/faults.test.ts` covers the same faults over real sockets.
 */
import { describe, expect, it } from "@effect/vitest"
import { Cause, type Context, Effect, Exit, Layer, Stream } from "effect"
import { readdirSync } from "node:fs"
import { join } from "node:path"
import { parse } from "yaml"
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
  Transport
} from "../../src/index.js"
import { fixturesDir, hasFixtures, readFixture } from "../support/fixtures.js"

if (!hasFixtures) console.warn("[conformance/mutations] skipped: the recorded fixtures are absent")

type Api = "chat" | "responses" | "anthropic" | "gemini" | "ollama"

/** One event of a stream: the JSON payload, and how the API frames it around that payload. */
interface Event {
  readonly payload: string
  readonly frame: (payload: string) => string
}

interface Recorded {
  readonly name: string
  readonly api: Api
  readonly events: ReadonlyArray<Event>
  /** What the API sends after the last event (`data: [DONE]`), if anything. */
  readonly trailer: string
}

const dataFrame = (eol: string) => (payload: string) => `data: ${payload}${eol}${eol}`
const ndjsonFrame = (payload: string) => `${payload}\n`
const typedFrame = (payload: string) => {
  const type = (JSON.parse(payload) as { type?: unknown } | null)?.type
  return `${typeof type === "string" ? `event: ${type}\n` : ""}data: ${payload}\n\n`
}

const linesOf = (file: string) => readFixture(file).split(/\r?\n/).filter((line) => line.trim().length > 0)

/** The `data:` payloads of a raw SSE body (framing intact), JSON ones only; `[DONE]` is the trailer. */
const sseEvents = (body: string, frame: (payload: string) => string): Array<Event> =>
  body.split(/\r?\n\r?\n/).flatMap((block) => {
    const data = block.split(/\r?\n/).filter((line) => line.startsWith("data:")).map((line) => line.slice(5).trimStart()).join("\n")
    return data.length === 0 || data === "[DONE]" ? [] : [{ payload: data, frame }]
  })

const recordedStreams = (): Array<Recorded> => {
  if (!hasFixtures) return []
  const out: Array<Recorded> = []
  const folder = (name: string) => readdirSync(join(fixturesDir, name)).sort()
  for (const file of folder("openai-chat").filter((f) => f.endsWith(".chunks.txt"))) {
    out.push({ name: `openai-chat/${file}`, api: "chat", events: linesOf(`openai-chat/${file}`).map((payload) => ({ payload, frame: dataFrame("\n") })), trailer: "data: [DONE]\n\n" })
  }
  out.push({
    name: "openai-chat/openai_artifact_call.txt",
    api: "chat",
    events: sseEvents(readFixture("openai-chat/openai_artifact_call.txt"), dataFrame("\n")),
    trailer: "data: [DONE]\n\n"
  })
  for (const file of folder("openai-compatible").filter((f) => f.endsWith(".chunks.txt"))) {
    out.push({ name: `openai-compatible/${file}`, api: "chat", events: linesOf(`openai-compatible/${file}`).map((payload) => ({ payload, frame: dataFrame("\n") })), trailer: "data: [DONE]\n\n" })
  }
  for (const file of folder("openai-responses").filter((f) => f.endsWith(".chunks.txt"))) {
    out.push({ name: `openai-responses/${file}`, api: "responses", events: linesOf(`openai-responses/${file}`).map((payload) => ({ payload, frame: typedFrame })), trailer: "" })
  }
  for (const file of folder("anthropic").filter((f) => f.endsWith(".chunks.txt"))) {
    out.push({ name: `anthropic/${file}`, api: "anthropic", events: linesOf(`anthropic/${file}`).map((payload) => ({ payload, frame: typedFrame })), trailer: "" })
  }
  for (const file of folder("gemini").filter((f) => f.endsWith(".chunks.txt"))) {
    out.push({ name: `gemini/${file}`, api: "gemini", events: linesOf(`gemini/${file}`).map((payload) => ({ payload, frame: dataFrame("\r\n") })), trailer: "" })
  }
  out.push({
    name: "ollama/chat_completion_test_response_stream.txt",
    api: "ollama",
    events: linesOf("ollama/chat_completion_test_response_stream.txt").map((payload) => ({ payload, frame: ndjsonFrame })),
    trailer: ""
  })
  // the cassettes' streamed replies, framing intact
  const apiOf: Record<string, Api> = { "openai-chat": "chat", "openai-compatible": "chat", "openai-responses": "responses", anthropic: "anthropic", gemini: "gemini" }
  for (const dir of folder("multi-turn")) {
    for (const file of folder(join("multi-turn", dir))) {
      const cassette = parse(readFixture(join("multi-turn", dir, file))) as {
        interactions: Array<{ response: { body?: { string?: string } } }>
      }
      cassette.interactions.forEach((interaction, i) => {
        const body = interaction.response.body?.string
        if (typeof body !== "string" || !body.includes("data:")) return
        const eol = body.includes("\r\n") ? "\r\n" : "\n"
        const api = apiOf[dir]!
        out.push({
          name: `multi-turn/${dir}/${file}#${i}`,
          api,
          events: sseEvents(body, api === "responses" ? typedFrame : dataFrame(eol)),
          trailer: body.includes("[DONE]") ? `data: [DONE]${eol}${eol}` : ""
        })
      })
    }
  }
  return out
}

/** Every way to replace one value of `json` (the whole payload included) by `null`. */
const nullMutations = (payload: string): Array<string> => {
  const root = JSON.parse(payload) as unknown
  const paths: Array<Array<string | number>> = [[]]
  const walk = (value: unknown, path: Array<string | number>) => {
    if (Array.isArray(value)) value.forEach((item, i) => { paths.push([...path, i]); walk(item, [...path, i]) })
    else if (typeof value === "object" && value !== null) {
      for (const [key, item] of Object.entries(value)) { paths.push([...path, key]); walk(item, [...path, key]) }
    }
  }
  walk(root, [])
  return paths.flatMap((path) => {
    if (path.length === 0) return root === null ? [] : ["null"]
    const copy = structuredClone(root) as Record<string | number, unknown>
    let at: Record<string | number, unknown> = copy
    for (const key of path.slice(0, -1)) at = at[key] as Record<string | number, unknown>
    if (at[path[path.length - 1]!] === null) return []
    at[path[path.length - 1]!] = null
    return [JSON.stringify(copy)]
  })
}

/** The in-memory transport: each stream call replays `current`, one piece per read. */
let current: ReadonlyArray<Uint8Array> = []
const encoder = new TextEncoder()
const memory = Layer.succeed(Transport.Transport, {
  text: () => Effect.succeed({ status: 200, headers: {}, body: "{}" }),
  stream: () =>
    Effect.sync(() => {
      const pieces = current
      let next = 0
      const pull = Effect.sync(() => (next < pieces.length ? [pieces[next++]!] : undefined))
      // every piece is there at once: no deadline can pass while it is read
      return { status: 200, headers: { "content-type": "text/event-stream" }, pull, pullWithin: () => pull }
    }),
  timeouts: true
})

const over = <E>(model: Layer.Layer<LanguageModel.LanguageModel, E, any>, providerId: string) =>
  model.pipe(
    Layer.provide(KeyPool.layer({ providerId, keys: ["sk-mutation-test"] })),
    Layer.provide(RateLimiter.unlimited),
    Layer.provide(memory),
    Layer.provide(Transport.layerUndici)
  ) as Layer.Layer<LanguageModel.LanguageModel>

const base = "http://127.0.0.1:1"
const stacks: Record<Api, Layer.Layer<LanguageModel.LanguageModel>> = {
  chat: over(OpenAiCompatible.layer({ model: "m", baseUrl: `${base}/v1` }), "openai"),
  responses: over(OpenAiResponses.layer({ model: "m", baseUrl: `${base}/v1` }), "openai"),
  anthropic: over(Anthropic.layer({ model: "m", baseUrl: base }), "anthropic"),
  gemini: over(Gemini.layer({ model: "m", baseUrl: `${base}/v1beta` }), "gemini"),
  ollama: over(Ollama.layer({ model: "m", baseUrl: base }), "ollama")
}

/** What went wrong with one run, or undefined when it ended as it must. */
const judge = (events: ReadonlyArray<Message.StreamEvent>, exit: Exit.Exit<void, LlmError.LlmError>): string | undefined => {
  if (Exit.isSuccess(exit)) return events.at(-1)?._tag === "Finish" ? undefined : "ended as a success without Finish"
  const failure = Cause.failureOption(exit.cause)
  if (failure._tag === "None") return `ended with a defect or interruption: ${Cause.pretty(exit.cause).slice(0, 300)}`
  const error = failure.value
  if (!LlmError.isLlmError(error)) return `failed with an untyped error: ${String(error)}`
  if (events.length === 0) return undefined
  if (error._tag !== "StreamError" || !error.partial) return `failed after ${events.length} events with ${error._tag}, not a partial StreamError`
  const delivered = events.map((e) => (e._tag === "TextDelta" ? e.text : "")).join("")
  return error.partialText === delivered ? undefined : "partialText differs from the text delivered"
}

const request = Message.request("hi")

const run = (stack: Context.Context<LanguageModel.LanguageModel>, body: ReadonlyArray<string>) =>
  Effect.suspend(() => {
    current = body.map((piece) => encoder.encode(piece))
    const events: Array<Message.StreamEvent> = []
    return LanguageModel.stream(request).pipe(
      Stream.runForEach((event) => Effect.sync(() => void events.push(event))),
      Effect.exit,
      Effect.map((exit) => judge(events, exit)),
      Effect.provide(stack)
    )
  })

describe.skipIf(!hasFixtures)("conformance: damaged recorded streams", () => {
  for (const recorded of recordedStreams()) {
    it.scoped(`${recorded.name}: every null, every truncation`, () =>
      Effect.gen(function* () {
        // built once: providing a layer per run would build the stack per run
        const stack = yield* Layer.build(stacks[recorded.api])
        const framed = recorded.events.map((event) => event.frame(event.payload))
        const problems: Array<string> = []
        // the intact stream ends with Finish
        expect(yield* run(stack, [...framed, recorded.trailer])).toBeUndefined()
        let runs = 0
        for (let i = 0; i < recorded.events.length; i++) {
          const event = recorded.events[i]!
          // two reads: the events before the damaged one, then it and the rest
          const before = framed.slice(0, i).join("")
          const after = framed.slice(i + 1).join("") + recorded.trailer
          for (const mutated of nullMutations(event.payload)) {
            const body = [before, event.frame(mutated) + after]
            const problem = yield* run(stack, body)
            runs++
            if (problem !== undefined && problems.length < 5) problems.push(`event ${i} as ${mutated.slice(0, 160)}: ${problem}`)
          }
        }
        for (let k = 0; k < recorded.events.length; k++) {
          const problem = yield* run(stack, [framed.slice(0, k).join("")])
          runs++
          if (problem !== undefined && problems.length < 5) problems.push(`truncated after ${k} events: ${problem}`)
        }
        expect(problems).toEqual([])
        expect(runs).toBeGreaterThan(recorded.events.length)
      }), 120_000)
  }
})
