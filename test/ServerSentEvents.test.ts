/** ServerSentEvents: a model's stream as an SSE reply of @effect/platform's HTTP server, read by a real client on loopback. */
import { HttpRouter, HttpServer } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Layer, Schema, Stream } from "effect"
import { createServer } from "node:http"
import { LanguageModel, LlmError, ServerSentEvents } from "../src/index.js"
import * as Testing from "../src/Testing.js"

interface Frame {
  readonly event: string
  readonly data: unknown
}

/** The frames of an SSE body: `event:` and one `data:` line each, separated by a blank line. */
const framesOf = (body: string): Array<Frame> =>
  body.split("\n\n").filter((block) => block.trim().length > 0).map((block) => {
    const lines = block.split("\n")
    const event = lines.find((l) => l.startsWith("event: "))!.slice(7)
    const data = lines.filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n")
    return { event, data: JSON.parse(data) }
  })

const Model = Testing.mockModel({
  steps: (request) => {
    const last = request.messages.at(-1)
    const text = last === undefined ? "" : typeof last.content === "string" ? last.content : ""
    if (text === "fail") {
      return { events: [{ _tag: "TextDelta", text: "half " }], failWith: new LlmError.StreamError({ provider: "mock", model: "mock-model", message: "cut", partial: true }) }
    }
    if (text === "object") return { object: { city: "Paris" }, chunks: 3 }
    return { text: "Hello there, friend.", chunks: 3 }
  }
})

const routes = HttpRouter.empty.pipe(
  HttpRouter.get("/text", ServerSentEvents.response(LanguageModel.streamText({ system: "Be kind.", prompt: "hi" }))),
  HttpRouter.get("/events", ServerSentEvents.response(LanguageModel.stream({ prompt: "hi" }), { headers: { "x-served-by": "test" } })),
  HttpRouter.get("/fails", ServerSentEvents.response(LanguageModel.streamText({ prompt: "fail" }))),
  HttpRouter.get("/object", ServerSentEvents.response(LanguageModel.streamObject({ prompt: "object", schema: Schema.Struct({ city: Schema.String }) })))
)

/** Serves the routes on a free loopback port, for as long as the test's scope; gives the base URL. */
const serve = Effect.gen(function* () {
  const context = yield* Layer.build(Layer.merge(NodeHttpServer.layer(createServer, { port: 0, host: "127.0.0.1" }), Model))
  yield* HttpServer.serveEffect(routes).pipe(Effect.provide(context))
  const address = (yield* HttpServer.HttpServer.pipe(Effect.provide(context))).address
  if (address._tag !== "TcpAddress") throw new Error("expected a TCP address")
  return `http://127.0.0.1:${address.port}`
})

const get = (url: string) =>
  Effect.promise(async () => {
    const response = await fetch(url)
    return { status: response.status, headers: response.headers, body: await response.text() }
  })

describe("ServerSentEvents", () => {
  it.scopedLive("streamText over a real HTTP server: one frame per event, text/event-stream, unbuffered", () =>
    Effect.gen(function* () {
      const base = yield* serve
      const reply = yield* get(`${base}/text`)
      expect(reply.status).toBe(200)
      expect(reply.headers.get("content-type")).toBe("text/event-stream")
      expect(reply.headers.get("cache-control")).toBe("no-cache")
      expect(reply.headers.get("x-accel-buffering")).toBe("no")
      const frames = framesOf(reply.body)
      expect(frames.filter((f) => f.event === "TextDelta").map((f) => (f.data as { text: string }).text).join("")).toBe("Hello there, friend.")
      expect(frames.find((f) => f.event === "TextDelta")!.data).toMatchObject({ step: 1 })
      expect(frames.at(-2)).toMatchObject({ event: "StepFinish", data: { step: 1, finishReason: "stop" } })
      expect(frames.at(-1)).toMatchObject({ event: "Finish", data: { text: "Hello there, friend.", finishReason: "stop" } })
      // the last frame is the reply's gist, not the whole transcript
      expect(Object.keys(frames.at(-1)!.data as object).sort()).toEqual(["finishReason", "text", "usage"])
    }))

  it.scopedLive("a plain stream and streamObject, with headers of one's own", () =>
    Effect.gen(function* () {
      const base = yield* serve
      const events = yield* get(`${base}/events`)
      expect(events.headers.get("x-served-by")).toBe("test")
      const frames = framesOf(events.body)
      expect(frames.map((f) => f.event)).toEqual(["TextDelta", "TextDelta", "TextDelta", "Finish"])
      expect(frames.at(-1)!.data).toMatchObject({ finishReason: "stop", provider: "mock", model: "mock-model" })
      const object = framesOf((yield* get(`${base}/object`)).body)
      expect(object.at(-1)).toEqual({ event: "Object", data: { value: { city: "Paris" }, attempts: 1 } })
      expect(object.some((f) => f.event === "Partial")).toBe(true)
    }))

  it.scopedLive("a stream that fails ends with an error frame after what it delivered", () =>
    Effect.gen(function* () {
      const base = yield* serve
      const reply = yield* get(`${base}/fails`)
      expect(reply.status).toBe(200)
      const frames = framesOf(reply.body)
      expect(frames[0]).toMatchObject({ event: "TextDelta", data: { text: "half " } })
      expect(frames.at(-1)).toEqual({ event: "error", data: { _tag: "StreamError", message: "cut", retryable: true } })
    }))

  it.effect("encode: a value JSON cannot write is an error frame, not a broken stream", () =>
    Effect.gen(function* () {
      const bytes = yield* Stream.runCollect(
        ServerSentEvents.encode(Stream.make({ _tag: "Partial", attempt: 1, value: { n: 1n } } as const, { _tag: "TextDelta", text: "after" } as const))
      )
      const text = new TextDecoder().decode(Buffer.concat(Chunk.toReadonlyArray(bytes)))
      expect(framesOf(text).map((f) => f.event)).toEqual(["error", "TextDelta"])
    }))
})
