/**
 * The three clients of the HTTP suite, each doing the same work per request: send the chat
 * request, read the whole reply (JSON body, or every SSE event of the stream), and return
 * its text, which the driver checks.
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import { NodeHttpClient } from "@effect/platform-node"
import { Effect, Layer, ManagedRuntime, Redacted, Stream } from "effect"
import { Agent } from "undici"
import { KeyPool, LanguageModel, Message, OpenAiCompatible, RateLimiter, Retry, Transport, Usage } from "../src/index.js"
import { type ClientName, type Mode, MODEL, REPLY_TEXT, SYSTEM_PROMPT, USER_PROMPT } from "./workload.js"

export interface BenchClient {
  /** Sends `count` requests, `concurrency` at a time; rejects if any reply is wrong. */
  readonly runBatch: (count: number, concurrency: number) => Promise<void>
  readonly close: () => Promise<void>
}

const API_KEY = "sk-bench-not-a-real-key"

const check = (text: string | null | undefined): void => {
  if (text !== REPLY_TEXT) throw new Error(`wrong reply: ${JSON.stringify(text).slice(0, 120)}`)
}

/** A promise worker pool: `concurrency` loops that each send requests until `count` are done. */
const promisePool = async (count: number, concurrency: number, one: () => Promise<string | null | undefined>) => {
  let started = 0
  const worker = async () => {
    while (started < count) {
      started++
      check(await one())
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker))
}

// ---------------------------------------------------------------------------
// (a) raw undici: the floor
// ---------------------------------------------------------------------------

const rawUndici = (url: string, mode: Mode): BenchClient & { readonly one: () => Promise<string | undefined> } => {
  // an Agent with undici's defaults (keep-alive), as NodeHttpClient.layerUndici builds one
  const agent = new Agent()
  const stream = mode === "stream"
  const headers: Record<string, string> = { "content-type": "application/json", authorization: `Bearer ${API_KEY}` }
  if (stream) headers.accept = "text/event-stream"

  const one = async (): Promise<string | undefined> => {
    const body = JSON.stringify({
      model: MODEL,
      messages: [{ role: "system", content: SYSTEM_PROMPT }, { role: "user", content: USER_PROMPT }],
      ...(stream ? { stream: true, stream_options: { include_usage: true } } : {})
    })
    const response = await agent.request({ origin: url, path: "/v1/chat/completions", method: "POST", headers, body })
    if (response.statusCode !== 200) throw new Error(`status ${response.statusCode}: ${await response.body.text()}`)
    if (!stream) {
      const json = JSON.parse(await response.body.text()) as { choices: Array<{ message: { content: string } }> }
      return json.choices[0]?.message.content
    }
    // SSE by hand: split on newlines, keep `data:` lines, JSON.parse each event
    const decoder = new TextDecoder()
    let buffer = ""
    let text = ""
    for await (const bytes of response.body) {
      buffer += decoder.decode(bytes as Uint8Array, { stream: true })
      let newline = buffer.indexOf("\n")
      while (newline >= 0) {
        const line = buffer.slice(0, newline)
        buffer = buffer.slice(newline + 1)
        if (line.startsWith("data: ") && line !== "data: [DONE]") {
          const event = JSON.parse(line.slice(6)) as { choices?: Array<{ delta?: { content?: string } }> }
          const content = event.choices?.[0]?.delta?.content
          if (typeof content === "string") text += content
        }
        newline = buffer.indexOf("\n")
      }
    }
    return text
  }
  return { runBatch: (count, concurrency) => promisePool(count, concurrency, one), close: () => agent.close(), one }
}

// ---------------------------------------------------------------------------
// (a') raw undici in one Effect.promise per request: the floor of any Effect client
// ---------------------------------------------------------------------------

const effectUndici = (url: string, mode: Mode): BenchClient => {
  const raw = rawUndici(url, mode)
  const runtime = ManagedRuntime.make(Layer.empty)
  const checked = Effect.flatMap(Effect.promise(raw.one), (text) => Effect.try(() => check(text)))
  return {
    runBatch: (count, concurrency) => runtime.runPromise(Effect.forEach(Array.from({ length: count }), () => checked, { concurrency, discard: true })),
    close: async () => {
      await runtime.dispose()
      await raw.close()
    }
  }
}

// ---------------------------------------------------------------------------
// (b) effect-llm: the provider layer, built once
// ---------------------------------------------------------------------------

/** The provider layer alone: one key, no limiter. */
const providerStack = (url: string) =>
  OpenAiCompatible.layer({ model: MODEL, baseUrl: `${url}/v1` }).pipe(
    Layer.provide(KeyPool.layer({ providerId: "openai", keys: [Redacted.make(API_KEY)] })),
    Layer.provide(RateLimiter.unlimited),
    Layer.provide(Transport.layerUndici)
  )

/**
 * The full stack the targets are about: two keys, a token-bucket limiter set high enough
 * never to bind (but still admitting, observing and settling every request), Retry with
 * its default schedule, and usage tracking.
 */
export const fullStack = (url: string, http: Layer.Layer<HttpClient.HttpClient> = Transport.layerUndici) =>
  Retry.layer(Retry.schedule()).pipe(
    Layer.provideMerge(OpenAiCompatible.layer({ model: MODEL, baseUrl: `${url}/v1` })),
    Layer.provide(KeyPool.layer({ providerId: "openai", keys: [Redacted.make(API_KEY), Redacted.make(`${API_KEY}-2`)] })),
    Layer.provide(RateLimiter.layer({ requestsPerMinute: 100_000_000, tokensPerMinute: 100_000_000_000 })),
    Layer.provide(Usage.layer()),
    Layer.provide(http)
  )

const effectLlm = (stack: (url: string) => Layer.Layer<LanguageModel.LanguageModel, unknown>) => (url: string, mode: Mode): BenchClient => {
  const runtime = ManagedRuntime.make(stack(url))
  const request = () => Message.request([Message.system(SYSTEM_PROMPT), Message.user(USER_PROMPT)])
  const one: Effect.Effect<string, unknown, LanguageModel.LanguageModel> = mode === "json"
    ? Effect.map(Effect.suspend(() => LanguageModel.chat(request())), (response) => response.text)
    : Stream.runFold(
      Stream.suspend(() => LanguageModel.stream(request())),
      "",
      (text, event) => (event._tag === "TextDelta" ? text + event.text : text)
    )
  const checked = Effect.flatMap(one, (text) => Effect.try(() => check(text)))
  return {
    // how an Effect program sends many requests: one fiber per request, bounded concurrency
    runBatch: (count, concurrency) =>
      runtime.runPromise(Effect.forEach(Array.from({ length: count }), () => checked, { concurrency, discard: true })),
    close: () => runtime.dispose()
  }
}

// ---------------------------------------------------------------------------
// (d) @effect/platform's HttpClient alone: the floor for anything built on it
// ---------------------------------------------------------------------------

const effectPlatform = (url: string, mode: Mode): BenchClient => {
  const runtime = ManagedRuntime.make(NodeHttpClient.layerUndici)
  const stream = mode === "stream"
  const headers: Record<string, string> = { authorization: `Bearer ${API_KEY}` }
  if (stream) headers.accept = "text/event-stream"
  const request = () =>
    HttpClientRequest.post(`${url}/v1/chat/completions`).pipe(
      HttpClientRequest.setHeaders(headers),
      HttpClientRequest.bodyText(
        JSON.stringify({
          model: MODEL,
          messages: [{ role: "system", content: SYSTEM_PROMPT }, { role: "user", content: USER_PROMPT }],
          ...(stream ? { stream: true, stream_options: { include_usage: true } } : {})
        }),
        "application/json"
      )
    )
  // the same hand-written SSE split as the raw client, over the response's Stream of bytes
  const sseText = (bytes: Stream.Stream<Uint8Array, unknown>) =>
    Effect.suspend(() => {
      const decoder = new TextDecoder()
      let buffer = ""
      let text = ""
      return Effect.map(
        Stream.runForEachChunk(bytes, (chunk) =>
          Effect.sync(() => {
            for (const piece of chunk) {
              buffer += decoder.decode(piece, { stream: true })
              let newline = buffer.indexOf("\n")
              while (newline >= 0) {
                const line = buffer.slice(0, newline)
                buffer = buffer.slice(newline + 1)
                if (line.startsWith("data: ") && line !== "data: [DONE]") {
                  const event = JSON.parse(line.slice(6)) as { choices?: Array<{ delta?: { content?: string } }> }
                  const content = event.choices?.[0]?.delta?.content
                  if (typeof content === "string") text += content
                }
                newline = buffer.indexOf("\n")
              }
            }
          })),
        () => text
      )
    })
  const one = Effect.flatMap(HttpClient.HttpClient, (client) =>
    Effect.flatMap(Effect.suspend(() => client.execute(request())), (response) =>
      stream
        ? sseText(response.stream)
        : Effect.map(response.text, (body) => (JSON.parse(body) as { choices: Array<{ message: { content: string } }> }).choices[0]?.message.content)))
  const checked = Effect.flatMap(one, (text) => Effect.try(() => check(text)))
  return {
    runBatch: (count, concurrency) =>
      runtime.runPromise(Effect.forEach(Array.from({ length: count }), () => checked, { concurrency, discard: true })),
    close: () => runtime.dispose()
  }
}

// ---------------------------------------------------------------------------
// (c) the official openai SDK
// ---------------------------------------------------------------------------

const openAiSdk = async (url: string, mode: Mode): Promise<BenchClient> => {
  const { default: OpenAI } = await import("openai")
  const client = new OpenAI({ apiKey: API_KEY, baseURL: `${url}/v1`, maxRetries: 0 })
  const messages = () => [
    { role: "system" as const, content: SYSTEM_PROMPT },
    { role: "user" as const, content: USER_PROMPT }
  ]
  const one = mode === "json"
    ? async () => (await client.chat.completions.create({ model: MODEL, messages: messages() })).choices[0]?.message.content
    : async () => {
      const stream = await client.chat.completions.create({
        model: MODEL,
        messages: messages(),
        stream: true,
        stream_options: { include_usage: true }
      })
      let text = ""
      for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? ""
      return text
    }
  return { runBatch: (count, concurrency) => promisePool(count, concurrency, one), close: async () => {} }
}

// ---------------------------------------------------------------------------
// (e) the Vercel AI SDK (ai v5 with @ai-sdk/openai v2, the last with Node 20 support)
// ---------------------------------------------------------------------------

const aiSdk = async (url: string, mode: Mode): Promise<BenchClient> => {
  const { createOpenAI } = await import("@ai-sdk/openai")
  const { generateText, streamText } = await import("ai")
  const model = createOpenAI({ apiKey: API_KEY, baseURL: `${url}/v1` }).chat(MODEL)
  // `system` rather than a system message: the same wire body, without the SDK's warning
  const messages = () => [{ role: "user" as const, content: USER_PROMPT }]
  const one = mode === "json"
    ? async () => (await generateText({ model, system: SYSTEM_PROMPT, messages: messages(), maxRetries: 0 })).text
    : async () => {
      const result = streamText({
        model,
        system: SYSTEM_PROMPT,
        messages: messages(),
        maxRetries: 0,
        onError: () => {}
      })
      let text = ""
      for await (const piece of result.textStream) text += piece
      return text
    }
  return { runBatch: (count, concurrency) => promisePool(count, concurrency, one), close: async () => {} }
}

// the SDKs are imported when their client is made, so no process carries another's modules
export const makeClient: Record<ClientName, (url: string, mode: Mode) => BenchClient | Promise<BenchClient>> = {
  "undici": rawUndici,
  "effect-undici": effectUndici,
  "effect-llm": effectLlm(providerStack),
  "effect-llm-full": effectLlm((url) => fullStack(url)),
  "effect-llm-full-httpclient": effectLlm((url) => fullStack(url, NodeHttpClient.layerUndici)),
  "openai-sdk": openAiSdk,
  "ai-sdk": aiSdk,
  "effect-platform": effectPlatform
}
