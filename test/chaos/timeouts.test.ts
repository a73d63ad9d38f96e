/**
 * Faults of time: a server that answers late, stalls before the first token, or stalls
 * mid-stream. Each must end in `TimeoutError { phase }`, and the server must see the
 * connection closed (the in-flight request is aborted, not left to run).
 */
import { describe, expect, it } from "@effect/vitest"
import { NodeHttpClient } from "@effect/platform-node"
import { Effect, Exit, Layer, Stream } from "effect"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import { KeyPool, LanguageModel, Message, OpenAiCompatible, RateLimiter, Transport } from "../../src/index.js"

type Handler = (res: http.ServerResponse) => Promise<void>

/** A loopback server that runs `handler` per request and records when a client hung up early. */
const server = (handler: Handler) =>
  Effect.acquireRelease(
    Effect.async<{ url: string; closedEarly: () => number; srv: http.Server }>((resume) => {
      let closedEarly = 0
      const srv = http.createServer((req, res) => {
        req.resume()
        res.on("close", () => {
          if (!res.writableFinished) closedEarly++
        })
        void handler(res).catch(() => undefined)
      })
      srv.listen(0, "127.0.0.1", () =>
        resume(Effect.succeed({ url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}/v1`, closedEarly: () => closedEarly, srv })))
    }),
    ({ srv }) => Effect.promise(() => new Promise<void>((done) => {
      srv.closeAllConnections()
      srv.close(() => done())
    }))
  )

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const frame = (delta: Record<string, unknown>, finish: string | null = null) =>
  `data: ${JSON.stringify({ id: "c1", object: "chat.completion.chunk", created: 1, model: "m", choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`
const sse = (res: http.ServerResponse) => res.writeHead(200, { "content-type": "text/event-stream" })

/** Both transports keep the deadlines: undici's dispatcher driven directly, and any HttpClient (no Transport). */
const transports = [
  { name: "Transport.layerUndici", layer: Transport.layerUndici },
  { name: "HttpClient (no Transport)", layer: NodeHttpClient.layerUndici }
] as const

/** Waits (briefly) until the server has seen `n` early closes. */
const sawClose = (closedEarly: () => number) =>
  Effect.promise(async () => {
    for (let i = 0; i < 100 && closedEarly() === 0; i++) await sleep(10)
    return closedEarly()
  })

const failure = <A, E>(exit: Exit.Exit<A, E>) => (Exit.isFailure(exit) && exit.cause._tag === "Fail" ? exit.cause.error : exit)

describe.each(transports)("timeouts over $name", ({ layer }) => {
  const stack = (baseUrl: string, options: Partial<OpenAiCompatible.Options>) =>
    OpenAiCompatible.layer({ model: "m", baseUrl, ...options }).pipe(
      Layer.provide(KeyPool.layer({ providerId: "openai", keys: ["sk-test"] })),
      Layer.provide(RateLimiter.unlimited),
      Layer.provide(layer)
    )

  it.live("chat: the request timeout fails with phase request and aborts the request", () =>
    Effect.gen(function* () {
      const { url, closedEarly } = yield* server(async (res) => {
        await sleep(5_000)
        res.end("{}")
      })
      const exit = yield* Effect.exit(LanguageModel.chat(Message.request("hi")).pipe(Effect.provide(stack(url, { timeout: "150 millis" }))))
      expect(failure(exit)).toMatchObject({ _tag: "TimeoutError", phase: "request", retryable: true })
      expect(yield* sawClose(closedEarly)).toBe(1)
    }).pipe(Effect.scoped))

  it.live("stream: no first event within firstTokenTimeout fails with phase firstToken and aborts", () =>
    Effect.gen(function* () {
      const { url, closedEarly } = yield* server(async (res) => {
        sse(res)
        res.write(frame({ role: "assistant", content: "" })) // bytes, but no token
        await sleep(5_000)
        res.end()
      })
      const exit = yield* Effect.exit(
        Stream.runDrain(LanguageModel.stream(Message.request("hi"))).pipe(
          Effect.provide(stack(url, { firstTokenTimeout: "150 millis", idleTimeout: "50 millis" }))
        )
      )
      expect(failure(exit)).toMatchObject({ _tag: "TimeoutError", phase: "firstToken" })
      expect(yield* sawClose(closedEarly)).toBe(1)
    }).pipe(Effect.scoped))

  it.live("stream: a stall after the first event fails with phase idle and aborts; the events before it arrived", () =>
    Effect.gen(function* () {
      const { url, closedEarly } = yield* server(async (res) => {
        sse(res)
        res.write(frame({ content: "Hello" }))
        await sleep(5_000)
        res.end()
      })
      const seen: Array<string> = []
      const exit = yield* Effect.exit(
        LanguageModel.stream(Message.request("hi")).pipe(
          Stream.runForEach((e) => Effect.sync(() => e._tag === "TextDelta" && seen.push(e.text))),
          Effect.provide(stack(url, { firstTokenTimeout: "2 seconds", idleTimeout: "150 millis" }))
        )
      )
      expect(seen).toEqual(["Hello"])
      expect(failure(exit)).toMatchObject({ _tag: "TimeoutError", phase: "idle" })
      expect(yield* sawClose(closedEarly)).toBe(1)
    }).pipe(Effect.scoped))

  it.live("stream: the total timeout covers the whole body, even when every gap is short", () =>
    Effect.gen(function* () {
      const { url, closedEarly } = yield* server(async (res) => {
        sse(res)
        for (let i = 0; i < 100; i++) {
          res.write(frame({ content: "x" }))
          await sleep(30)
        }
        res.end()
      })
      const exit = yield* Effect.exit(
        Stream.runDrain(LanguageModel.stream(Message.request("hi"))).pipe(
          Effect.provide(stack(url, { timeout: "300 millis", idleTimeout: "200 millis" }))
        )
      )
      expect(failure(exit)).toMatchObject({ _tag: "TimeoutError", phase: "request" })
      expect(yield* sawClose(closedEarly)).toBe(1)
    }).pipe(Effect.scoped))

  it.live("a slow stream within every limit completes", () =>
    Effect.gen(function* () {
      const { url, closedEarly } = yield* server(async (res) => {
        sse(res)
        await sleep(60)
        for (const piece of ["a", "b", "c"]) {
          res.write(frame({ content: piece }))
          await sleep(60)
        }
        res.write(frame({}, "stop"))
        res.end("data: [DONE]\n\n")
      })
      const response = yield* LanguageModel.collect(LanguageModel.stream(Message.request("hi"))).pipe(
        Effect.provide(stack(url, { timeout: "5 seconds", firstTokenTimeout: "1 second", idleTimeout: "1 second" }))
      )
      expect(response.text).toBe("abc")
      expect(closedEarly()).toBe(0)
    }).pipe(Effect.scoped))
})
