/**
 * Stream framing (src/internal/request/framing.ts, driven by stream.ts) with the Chat
 * Completions state machine on top:
 * hand-framed SSE bodies served by FakeProvider's `Raw` fault, split at awkward points,
 * and every two-way split of a body through an in-memory client.
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Either, Layer, Stream } from "effect"
import { KeyPool, LanguageModel, Message, OpenAiCompatible, RateLimiter } from "../../../src/index.js"
import type * as Testing from "../../../src/Testing.js"
import { sseFramer } from "../../../src/internal/request/framing.js"
import { fakeProvider, stack } from "../../support/openaiStack.js"

const TEXT = "Héllo, wörld 🌍 — 世界!"
const encoder = new TextEncoder()

const chunk = (delta: Record<string, unknown>, finish: string | null = null) =>
  JSON.stringify({ id: "chatcmpl-sse", object: "chat.completion.chunk", created: 1, model: "gpt-sse", choices: [{ index: 0, delta, finish_reason: finish }] })
const usageChunk = JSON.stringify({
  id: "chatcmpl-sse",
  object: "chat.completion.chunk",
  created: 1,
  model: "gpt-sse",
  choices: [],
  usage: { prompt_tokens: 11, completion_tokens: 7, total_tokens: 18 }
})

/** The payloads of a small reply: role, the text in three deltas, finish, usage. */
const payloads = [
  chunk({ role: "assistant", content: "" }),
  chunk({ content: "Héllo, " }),
  chunk({ content: "wörld 🌍" }),
  chunk({ content: " — 世界!" }),
  chunk({}, "stop"),
  usageChunk
]

const sse = (events: ReadonlyArray<string>, eol = "\n", done = true) =>
  events.map((data) => `data: ${data}${eol}${eol}`).join("") + (done ? `data: [DONE]${eol}${eol}` : "")

const request = Message.request("say hello")

/** Serves `body` (in pieces) once and streams it through the OpenAI-compatible model. */
const serve = (body: string | ReadonlyArray<string | Uint8Array>, extra?: Partial<Extract<Testing.Fault, { _tag: "Raw" }>>) =>
  Effect.gen(function* () {
    const fake = yield* fakeProvider()
    yield* fake.inject({ _tag: "Raw", body, chunkDelayMs: typeof body === "string" ? 0 : 3, ...extra })
    return yield* Effect.gen(function* () {
      const events = yield* Stream.runCollect(LanguageModel.stream(request)).pipe(Effect.map(Chunk.toArray))
      const response = yield* LanguageModel.collect(Stream.fromIterable(events))
      return { events, response }
    }).pipe(Effect.provide(stack(fake.baseUrl)))
  })

const expectComplete = (response: Message.ChatResponse) => {
  expect(response.text).toBe(TEXT)
  expect(response.id).toBe("chatcmpl-sse")
  expect(response.model).toBe("gpt-sse")
  expect(response.finishReason).toBe("stop")
  expect(response.usage).toEqual({ inputTokens: 11, outputTokens: 7, totalTokens: 18, estimated: false })
}

/** Cuts a string's UTF-8 bytes at the given byte offsets. */
const cutBytes = (text: string, offsets: ReadonlyArray<number>): Array<Uint8Array> => {
  const bytes = encoder.encode(text)
  const out: Array<Uint8Array> = []
  let from = 0
  for (const at of offsets) {
    out.push(bytes.slice(from, at))
    from = at
  }
  out.push(bytes.slice(from))
  return out
}

describe("SSE framing over the wire", () => {
  it.scoped("plain LF framing", () =>
    Effect.gen(function* () {
      const { events, response } = yield* serve(sse(payloads))
      expectComplete(response)
      expect(events.at(-1)?._tag).toBe("Finish")
    }))

  it.scoped("CRLF line ends", () =>
    Effect.gen(function* () {
      const body = sse(payloads, "\r\n")
      expect(body).toContain("\r\n\r\n")
      expectComplete((yield* serve(body)).response)
    }))

  it.scoped("bare CR line ends", () =>
    Effect.gen(function* () {
      expectComplete((yield* serve(sse(payloads, "\r"))).response)
    }))

  it.scoped("comment and keep-alive lines, id and retry fields, empty data frames", () =>
    Effect.gen(function* () {
      const body = ": OPENROUTER PROCESSING\n\n" +
        payloads.slice(0, 3).map((p) => `:keep-alive\nid: 7\ndata: ${p}\n\n`).join("") +
        "retry: 3000\n\n:\n\ndata:\n\n" +
        payloads.slice(3).map((p) => `data: ${p}\n\n: ping\n\n`).join("") +
        "data: [DONE]\n\n"
      expectComplete((yield* serve(body)).response)
    }))

  it.scoped("event: lines name the event without changing its data", () =>
    Effect.gen(function* () {
      const body = payloads.map((p) => `event: message\ndata: ${p}\n\n`).join("") + "event: done\ndata: [DONE]\n\n"
      expectComplete((yield* serve(body)).response)
    }))

  it.scoped("one event's data split across several data: lines", () =>
    Effect.gen(function* () {
      // JSON allows a newline between tokens; the lines join with "\n"
      const split = (json: string) => {
        const at = json.indexOf(",")
        return `data: ${json.slice(0, at + 1)}\ndata: ${json.slice(at + 1)}\n\n`
      }
      const body = payloads.map(split).join("") + "data: [DONE]\n\n"
      expect(body.split("\n").filter((l) => l.startsWith("data:")).length).toBe(2 * payloads.length + 1)
      expectComplete((yield* serve(body)).response)
    }))

  it.scoped("a missing [DONE] still finishes, with the usage that came", () =>
    Effect.gen(function* () {
      const { events, response } = yield* serve(sse(payloads, "\n", false))
      expectComplete(response)
      expect(events.filter((e) => e._tag === "Finish")).toHaveLength(1)
    }))

  it.scoped("a last event without its blank line still counts", () =>
    Effect.gen(function* () {
      const body = payloads.map((p) => `data: ${p}`).join("\n\n") // no terminator at all
      expectComplete((yield* serve(body)).response)
      const withLf = payloads.map((p) => `data: ${p}\n`).join("\n") // the last event ends in one LF
      expectComplete((yield* serve(withLf)).response)
    }))

  it.scoped("pieces split mid-line, mid-\"data:\", between CR and LF, and inside a UTF-8 character", () =>
    Effect.gen(function* () {
      const body = sse(payloads, "\r\n")
      const bytes = encoder.encode(body)
      const dataAt = body.indexOf("data:", 10) + 2 // "da|ta:"
      const crAt = encoder.encode(body.slice(0, body.indexOf("\r\n", dataAt))).length + 1 // "\r|\n"
      const emoji = encoder.encode(body.slice(0, body.indexOf("🌍"))).length + 2 // inside the 4 bytes of 🌍
      const han = encoder.encode(body.slice(0, body.indexOf("世"))).length + 1 // inside the 3 bytes of 世
      const midLine = encoder.encode(body.slice(0, body.indexOf("chat.completion.chunk", crAt))).length + 5
      const offsets = [dataAt, crAt, midLine, emoji, han].sort((a, b) => a - b)
      expect(new Set(offsets).size).toBe(offsets.length)
      expect(offsets.at(-1)!).toBeLessThan(bytes.length)
      // each cut point really falls where it claims
      expect(String.fromCharCode(bytes[crAt - 1]!, bytes[crAt]!)).toBe("\r\n")
      expect(body.slice(dataAt - 2, dataAt + 3)).toBe("data:")
      expect(bytes[emoji]! & 0xc0).toBe(0x80) // a continuation byte starts the next piece
      expect(bytes[han]! & 0xc0).toBe(0x80)
      const { response } = yield* serve(cutBytes(body, offsets))
      expectComplete(response)
    }))

  it.scoped("one byte at a time", () =>
    Effect.gen(function* () {
      const bytes = encoder.encode(sse(payloads.slice(0, 3), "\r\n", false) + `data: ${payloads[4]}\r\n\r\n`)
      const pieces = Array.from(bytes, (b) => Uint8Array.of(b))
      const { response } = yield* serve(pieces, { chunkDelayMs: 0 })
      expect(response.text).toBe("Héllo, wörld 🌍")
      expect(response.usage.estimated).toBe(true)
    }))
})

describe("stream errors", () => {
  it.scoped("data: {\"error\": …} mid-stream becomes a partial StreamError with the text so far", () =>
    Effect.gen(function* () {
      const body = sse(payloads.slice(0, 3), "\n", false) +
        `data: ${JSON.stringify({ error: { message: "The server had an error", type: "server_error", code: null } })}\n\n`
      const result = yield* Effect.either(serve(body))
      expect(Either.isLeft(result)).toBe(true)
      const error = Either.getLeft(result).pipe((o) => o._tag === "Some" ? o.value : undefined)
      expect(error?._tag).toBe("StreamError")
      if (error?._tag !== "StreamError") return
      expect(error.partial).toBe(true)
      expect(error.partialText).toBe("Héllo, wörld 🌍")
      expect(error.message).toContain("The server had an error")
      expect(error.message).toContain("server_error")
      expect(error.provider).toBe("openai")
    }))

  it.scoped("event: error with a JSON body, before any output, is a non-partial StreamError", () =>
    Effect.gen(function* () {
      const body = `event: error\ndata: ${JSON.stringify({ error: { message: "overloaded", type: "overloaded_error" } })}\n\n`
      const error = yield* Effect.flip(serve(body))
      expect(error._tag).toBe("StreamError")
      if (error._tag !== "StreamError") return
      expect(error.partial).toBe(false)
      expect(error.message).toContain("overloaded")
    }))

  it.scoped("event: error with plain-text data is a StreamError too", () =>
    Effect.gen(function* () {
      const body = sse(payloads.slice(0, 2), "\n", false) + "event: error\ndata: upstream went away\n\n"
      const error = yield* Effect.flip(serve(body))
      expect(error._tag).toBe("StreamError")
      if (error._tag !== "StreamError") return
      expect(error.message).toContain("upstream went away")
      expect(error.partial).toBe(true)
      expect(error.partialText).toBe("Héllo, ")
    }))

  it.scoped("events before the error are delivered, then the stream fails", () =>
    Effect.gen(function* () {
      const fake = yield* fakeProvider()
      const body = sse(payloads.slice(0, 3), "\n", false) + `data: {"error":{"message":"boom"}}\n\n`
      yield* fake.inject({ _tag: "Raw", body })
      const seen: Array<Message.StreamEvent> = []
      const exit = yield* LanguageModel.stream(request).pipe(
        Stream.runForEach((event) => Effect.sync(() => seen.push(event))),
        Effect.provide(stack(fake.baseUrl)),
        Effect.either
      )
      expect(Either.isLeft(exit)).toBe(true)
      expect(seen.map((e) => (e._tag === "TextDelta" ? e.text : e._tag)).join("")).toBe("Héllo, wörld 🌍")
    }))

  it.scoped("a body that ends with neither finish_reason nor [DONE] is a cut stream", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(serve(sse(payloads.slice(0, 2), "\n", false)))
      expect(error._tag).toBe("StreamError")
      if (error._tag !== "StreamError") return
      expect(error.partial).toBe(true)
      expect(error.partialText).toBe("Héllo, ")
    }))

  it.scoped("a frame that is not JSON fails as malformed before output, StreamError after", () =>
    Effect.gen(function* () {
      const before = yield* Effect.flip(serve("data: {\"id\":\"x\",\"choices\":[{\"delta\":{\"content\":\"tru\n\n"))
      expect(before._tag).toBe("MalformedResponseError")
      if (before._tag === "MalformedResponseError") expect(before.excerpt).toContain("{\"id\":\"x\"")
      const after = yield* Effect.flip(serve(sse(payloads.slice(0, 2), "\n", false) + "data: not json\n\n"))
      expect(after._tag).toBe("StreamError")
      if (after._tag === "StreamError") expect(after.partial).toBe(true)
    }))
})

// ---------------------------------------------------------------------------
// Every two-way split of a body, exactly, through an in-memory HttpClient
// ---------------------------------------------------------------------------

/** An HttpClient that answers every request with `pieces` as the body's reads, one each. */
const piecewiseClient = (pieces: () => ReadonlyArray<Uint8Array>) =>
  Layer.succeed(
    HttpClient.HttpClient,
    HttpClient.make((req) =>
      Effect.sync(() => {
        const queue = [...pieces()]
        const body = new ReadableStream<Uint8Array>({
          pull(controller) {
            const next = queue.shift()
            if (next === undefined) controller.close()
            else controller.enqueue(next)
          }
        })
        return HttpClientResponse.fromWeb(req, new Response(body, { status: 200, headers: { "content-type": "text/event-stream" } }))
      })
    )
  )

const modelOver = (pieces: () => ReadonlyArray<Uint8Array>) =>
  OpenAiCompatible.layer({ model: "gpt-sse", baseUrl: "http://127.0.0.1:9/v1" }).pipe(
    Layer.provide(KeyPool.layer({ providerId: "openai", keys: ["sk-split"] })),
    Layer.provide(RateLimiter.unlimited),
    Layer.provide(piecewiseClient(pieces))
  )

/** The same reply with only the fields the parser reads, to keep the body short. */
const compact = [
  `{"id":"chatcmpl-sse","model":"gpt-sse","choices":[{"delta":{"content":"Héllo, "}}]}`,
  `{"choices":[{"delta":{"content":"wörld 🌍"}}]}`,
  `{"choices":[{"delta":{"content":" — 世界!"},"finish_reason":"stop"}]}`,
  `{"choices":[],"usage":{"prompt_tokens":11,"completion_tokens":7,"total_tokens":18}}`
]

describe("every split point", () => {
  for (const [name, eol] of [["LF", "\n"], ["CRLF", "\r\n"]] as const) {
    it.effect(`a ${name} body split in two at every byte gives the same response`, () =>
      Effect.gen(function* () {
        const bytes = encoder.encode(`: keep-alive${eol}${eol}` + sse(compact, eol))
        let at = 0
        const model = yield* Effect.provide(LanguageModel.LanguageModel, modelOver(() => [bytes.slice(0, at), bytes.slice(at)]))
        for (at = 0; at <= bytes.length; at++) {
          const response = yield* LanguageModel.collect(model.stream(request))
          expectComplete(response)
        }
      }))
  }
})

describe("the SSE framer alone", () => {
  const framesOf = (pieces: ReadonlyArray<string>, maxChars = 1000) => {
    const frames: Array<[string, string | undefined]> = []
    let oversize = 0
    const framer = sseFramer({ onFrame: (data, event) => frames.push([data, event]), onOversize: () => oversize++ }, maxChars)
    for (const piece of pieces) framer.feed(piece)
    framer.end()
    return { frames, oversize }
  }

  it("fields without a colon or a space, empty event names, a BOM, and unknown fields", () => {
    const { frames } = framesOf(["\uFEFFdata\n\n", "data:x\nevent\n\n", "event:ping\ndata:  two spaces\nfoo: bar\nid\nretry: x\n\n", "event: \ndata: y\n\n"])
    expect(frames).toEqual([["", undefined], ["x", undefined], [" two spaces", "ping"], ["y", undefined]])
  })

  it("a blank line with no data dispatches nothing, and the event name does not outlive its event", () => {
    const { frames } = framesOf(["event: a\n\n", "data: 1\n\n", ": comment\n\n"])
    expect(frames).toEqual([["1", undefined]])
  })

  it("an event growing past the cap across pieces is reported once, and framing stops there", () => {
    const { frames, oversize } = framesOf(["data: ok\n\n", "data: " + "x".repeat(600), "x".repeat(600), "\n\ndata: late\n\n"])
    expect(frames).toEqual([["ok", undefined]])
    expect(oversize).toBe(1)
  })

  it("a CR at the end of a piece and the LF at the start of the next end one line", () => {
    const { frames } = framesOf(["data: a\r", "\ndata: b\r", "\n\r", "\n"])
    expect(frames).toEqual([["a\nb", undefined]])
  })
})
