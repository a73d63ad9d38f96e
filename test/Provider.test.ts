/**
 * A provider of the user's own, written here from public exports only: a `Provider.Spec` for
 * "Say", a wire format of this test's invention, and its `StreamParser`. It gets what every
 * built-in provider gets: keys, HTTP error mapping, Retry, Fallback, and the stream rule that
 * a failure after the first event is partial (neither retried nor fallen back).
 *
 * It can offer embeddings too: an `EmbeddingsSpec` for "Vectors", at the end.
 *
 * Say: `POST /say` with `{ model, prompt, stream }`. A reply is `{ words, done, tokens }`; a
 * stream is NDJSON lines `{ word }` ending with `{ done, tokens }`, and `{ oops }` is an error.
 */
import { describe, expect, it } from "@effect/vitest"
import { Chunk, ConfigError, Effect, Exit, Layer, Redacted, Stream } from "effect"
import { Embeddings, Fallback, KeyPool, LanguageModel, LlmError, Message, Provider, RateLimiter, Retry, Transport } from "../src/index.js"
import * as Testing from "../src/Testing.js"

// ---------------------------------------------------------------------------
// The provider
// ---------------------------------------------------------------------------

interface SayTokens {
  readonly in: number
  readonly out: number
}

const usageOf = (tokens: SayTokens): Message.Usage => ({
  inputTokens: tokens.in,
  outputTokens: tokens.out,
  totalTokens: tokens.in + tokens.out,
  estimated: false
})

class SayParser implements Provider.StreamParser {
  emittedText = ""
  settledTokens: number | undefined = undefined
  private done = false

  constructor(private readonly model: string) {}

  onData(data: string, _event: string | undefined, out: Array<Message.StreamEvent>): LlmError.LlmError | undefined {
    const line = JSON.parse(data) as { word?: string; oops?: string; done?: string; tokens?: SayTokens }
    if (line.oops !== undefined) {
      return new LlmError.StreamError({
        provider: "say",
        model: this.model,
        message: `say: ${line.oops}`,
        partial: this.emittedText.length > 0,
        partialText: this.emittedText
      })
    }
    if (line.word !== undefined) {
      this.emittedText += line.word
      Provider.pushDelta(out, "TextDelta", line.word)
    }
    if (line.done !== undefined && line.tokens !== undefined) {
      this.done = true
      const usage = usageOf(line.tokens)
      this.settledTokens = usage.totalTokens
      out.push({ _tag: "Finish", finishReason: "stop", usage, id: "say-1", model: this.model, provider: "say" })
    }
    return undefined
  }

  onEnd(): LlmError.LlmError | undefined {
    if (this.done) return undefined
    return new LlmError.StreamError({
      provider: "say",
      model: this.model,
      message: "say: the stream ended before its done line",
      partial: this.emittedText.length > 0,
      partialText: this.emittedText
    })
  }
}

const Say = (baseUrl: string): Provider.Spec => ({
  provider: "say",
  auth: (key) => ({ "x-say-key": Redacted.value(key) }),
  framing: "ndjson",
  url: () => `${baseUrl}/say`,
  body: (request, model, stream) => {
    const last = request.messages[request.messages.length - 1]
    return { model, prompt: last === undefined ? "" : Message.contentText(last), stream }
  },
  decode: (_request, model, body, status) => {
    const wire = JSON.parse(body) as { words?: ReadonlyArray<string>; tokens?: SayTokens }
    if (wire.words === undefined || wire.tokens === undefined) {
      return new LlmError.MalformedResponseError({ provider: "say", model, message: "say: no words", excerpt: body.slice(0, 200), status })
    }
    return { id: "say-1", model, provider: "say", text: wire.words.join(""), toolCalls: [], finishReason: "stop", usage: usageOf(wire.tokens) }
  },
  parser: (_request, model) => new SayParser(model)
})

/** The Say model at a fake's address, with a key of its own. */
const sayAt = (fake: Testing.FakeProviderService, model: string, key: string) =>
  Provider.layer(Say(fake.url), { model }).pipe(Layer.provide(KeyPool.layer({ providerId: "say", keys: [key] })))

/** Runs `effect` on `layer`, with no rate limit, over undici; a layer that cannot build is the test's own bug. */
const provided = <RIn>(layer: Layer.Layer<LanguageModel.LanguageModel, ConfigError.ConfigError, RIn>) =>
<A, E>(effect: Effect.Effect<A, E, LanguageModel.LanguageModel>) =>
  effect.pipe(Effect.provide(layer.pipe(Layer.provide(RateLimiter.unlimited), Layer.provide(Transport.layerUndici), Layer.orDie)))

// ---------------------------------------------------------------------------
// The fake speaks Say through `Raw` replies
// ---------------------------------------------------------------------------

const json = (words: ReadonlyArray<string>): Testing.Fault => ({
  _tag: "Raw",
  contentType: "application/json",
  body: JSON.stringify({ words, done: "complete", tokens: { in: 3, out: words.length } })
})

const ndjson = (lines: ReadonlyArray<unknown>, chunkDelayMs = 0): Testing.Fault => ({
  _tag: "Raw",
  contentType: "application/x-ndjson",
  body: lines.map((line) => JSON.stringify(line) + "\n"),
  chunkDelayMs
})

/** Answers every request in Say: `words`, as JSON or as a stream. */
const speaks = (words: ReadonlyArray<string>): Testing.Responder => (request) =>
  (request.body as { stream?: boolean }).stream === true
    ? ndjson([...words.map((word) => ({ word })), { done: "complete", tokens: { in: 3, out: words.length } }])
    : json(words)

const failureOf = <A>(exit: Exit.Exit<A, LlmError.LlmError>): LlmError.LlmError => {
  if (Exit.isSuccess(exit) || exit.cause._tag !== "Fail") throw new Error("expected a typed failure")
  return exit.cause.error
}

describe("a provider of one's own (public exports only)", () => {
  it.scoped("chats and streams over its own wire format; the stream ends with Finish and collects to the chat", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({ respond: speaks(["Hello", ", ", "world"]) })
      const run = provided(sayAt(fake, "say-1", "say-key-1"))
      const chat = yield* run(LanguageModel.chat(Message.request("greet me")))
      expect(chat).toEqual({
        id: "say-1",
        model: "say-1",
        provider: "say",
        text: "Hello, world",
        toolCalls: [],
        finishReason: "stop",
        usage: { inputTokens: 3, outputTokens: 3, totalTokens: 6, estimated: false }
      })
      const events = Chunk.toArray(yield* run(Stream.runCollect(LanguageModel.stream(Message.request("greet me")))))
      expect(events[events.length - 1]).toMatchObject({ _tag: "Finish", finishReason: "stop", provider: "say" })
      expect(events.filter((e) => e._tag === "TextDelta").map((e) => (e as Message.TextDelta).text).join("")).toBe("Hello, world")
      const collected = yield* run(LanguageModel.collect(LanguageModel.stream(Message.request("greet me"))))
      expect(collected).toEqual(chat)
      const requests = yield* fake.requests
      expect(requests.map((r) => [r.path, r.headers["x-say-key"], (r.body as { stream: boolean }).stream])).toEqual([
        ["/say", "say-key-1", false],
        ["/say", "say-key-1", true],
        ["/say", "say-key-1", true]
      ])
      expect(requests[1]!.headers.accept).toBe("application/x-ndjson")
    }))

  it.scoped("its HTTP errors are the library's typed errors, and never show its key", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({ respond: speaks(["unused"]) })
      yield* fake.inject({ _tag: "Status", status: 401, body: `{"error":"bad key say-key-secret"}` })
      const error = yield* Effect.flip(provided(sayAt(fake, "say-1", "say-key-secret"))(LanguageModel.chat(Message.request("hi"))))
      expect(error._tag).toBe("AuthenticationError")
      expect(error.provider).toBe("say")
      expect(JSON.stringify(error) + error.message).not.toContain("say-key-secret")
    }))

  it.scoped("its own error bodies, read by its readError: the class they name, and 2xx bodies that are errors", () =>
    Effect.gen(function* () {
      // Say's errors: `{ "oops": "…", "why": "…" }`, sometimes sent with 200
      const readSay = (body: string): Provider.ErrorBody | undefined => {
        const wire = JSON.parse(body) as { oops?: string; why?: string }
        if (wire.oops === undefined) return undefined
        return {
          message: wire.oops,
          type: wire.why,
          tag: wire.why === "too_long" ? "ContextLengthError" : undefined,
          status: wire.why === "busy" ? 429 : undefined
        }
      }
      const reading: Provider.Spec = { ...Say(""), readError: readSay }
      const fake = yield* Testing.FakeProvider.make({ respond: speaks(["unused"]) })
      const layer = Provider.layer({ ...reading, url: () => `${fake.url}/say` }, { model: "say-1" }).pipe(
        Layer.provide(KeyPool.layer({ providerId: "say", keys: ["k"] }))
      )
      const chat = Effect.flip(provided(layer)(LanguageModel.chat(Message.request("hi"))))
      yield* fake.inject({ _tag: "Status", status: 400, body: `{"oops":"that is a lot of words","why":"too_long"}` })
      expect(yield* chat).toMatchObject({ _tag: "ContextLengthError", status: 400, message: "say 400 too_long: that is a lot of words" })
      yield* fake.inject({ _tag: "Raw", contentType: "application/json", body: `{"oops":"slow down","why":"busy"}` })
      expect(yield* chat).toMatchObject({ _tag: "RateLimitError", status: 429, message: "say error body (sent with HTTP 200) busy: slow down" })
      // a stream request answered with a JSON error object
      yield* fake.inject({ _tag: "Raw", contentType: "application/json", body: `{"oops":"slow down","why":"busy"}` })
      const streamed = yield* Effect.flip(provided(layer)(LanguageModel.collect(LanguageModel.stream(Message.request("hi")))))
      expect(streamed._tag).toBe("RateLimitError")
      // without the reader, the generic reading: Say's bodies say nothing it knows
      yield* fake.inject({ _tag: "Status", status: 400, body: `{"oops":"that is a lot of words","why":"too_long"}` })
      const generic = yield* Effect.flip(provided(sayAt(fake, "say-1", "k"))(LanguageModel.chat(Message.request("hi"))))
      expect(generic).toMatchObject({ _tag: "InvalidRequestError", status: 400 })
    }))

  it.scoped("without a reader, a vendor's words mean nothing: the status decides", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({ respond: speaks(["unused"]) })
      yield* fake.inject({ _tag: "Status", status: 429, body: JSON.stringify({ error: { message: "You exceeded your current quota", type: "insufficient_quota" } }) })
      const error = yield* Effect.flip(provided(sayAt(fake, "say-1", "k"))(LanguageModel.chat(Message.request("hi"))))
      expect(error).toMatchObject({ _tag: "RateLimitError", message: "say 429 insufficient_quota: You exceeded your current quota" })
    }))

  it.scopedLive("Retry retries its 503, waiting its backoff", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({ respond: speaks(["after", " a retry"]) })
      yield* fake.inject({ _tag: "Status", status: 503 })
      const retried = Retry.layer(Retry.schedule({ maxRetries: 2, initialDelay: "1 millis" })).pipe(Layer.provide(sayAt(fake, "say-1", "k1")))
      expect((yield* provided(retried)(LanguageModel.chat(Message.request("hi")))).text).toBe("after a retry")
      expect((yield* fake.requests).length).toBe(2)
    }))

  it.scoped("Fallback moves to the secondary when the primary fails", () =>
    Effect.gen(function* () {
      const down = yield* Testing.FakeProvider.make({ respond: () => ({ _tag: "Status", status: 500 }) })
      const up = yield* Testing.FakeProvider.make({ respond: speaks(["from", " the secondary"]) })
      const fallback = Fallback.layer([{ model: sayAt(down, "say-primary", "k-down") }, { model: sayAt(up, "say-secondary", "k-up") }])
      const response = yield* provided(fallback)(LanguageModel.chat(Message.request("hi")))
      expect([response.text, response.model]).toEqual(["from the secondary", "say-secondary"])
      const streamed = yield* provided(fallback)(LanguageModel.collect(LanguageModel.stream(Message.request("hi"))))
      expect(streamed.text).toBe("from the secondary")
      expect([(yield* down.requests).length, (yield* up.requests).length]).toEqual([2, 2])
    }))

  it.scoped("a decode or a request mapping that throws is a typed error, never a defect", () =>
    Effect.gen(function* () {
      // Say's decode runs JSON.parse, which throws on a body that is not JSON
      const fake = yield* Testing.FakeProvider.make({ respond: () => ({ _tag: "Raw", contentType: "text/html", body: "<html>gateway</html>" }) })
      const decodeThrew = failureOf(yield* Effect.exit(provided(sayAt(fake, "say-1", "say-key-1"))(LanguageModel.chat(Message.request("hi")))))
      expect(decodeThrew).toMatchObject({ _tag: "MalformedResponseError", provider: "say", status: 200, excerpt: "<html>gateway</html>" })
      expect(decodeThrew.message).toContain("could not be decoded")

      const refuses: Provider.Spec = { ...Say(fake.url), body: () => { throw new Error("images are not spoken") } }
      const layer = Provider.layer(refuses, { model: "say-1" }).pipe(Layer.provide(KeyPool.layer({ providerId: "say", keys: ["k"] })))
      const chatThrew = failureOf(yield* Effect.exit(provided(layer)(LanguageModel.chat(Message.request("hi")))))
      expect(chatThrew).toMatchObject({ _tag: "InvalidRequestError", message: "say could not map the request: images are not spoken" })
      const streamThrew = yield* Effect.flip(provided(layer)(LanguageModel.collect(LanguageModel.stream(Message.request("hi")))))
      expect(streamThrew._tag).toBe("InvalidRequestError")
      expect((yield* fake.requests).length).toBe(1)
    }))

  it.scoped("a failure after its first event is a partial StreamError: no retry, no fallback", () =>
    Effect.gen(function* () {
      // the first word reaches the caller before the error line does
      const primary = yield* Testing.FakeProvider.make({ respond: () => ndjson([{ word: "Hel" }, { oops: "overloaded" }], 50) })
      const secondary = yield* Testing.FakeProvider.make({ respond: speaks(["never", " used"]) })
      const retried = Retry.layer(Retry.schedule({ maxRetries: 3, initialDelay: "1 millis" })).pipe(Layer.provide(sayAt(primary, "say-primary", "k1")))
      const stack = Fallback.layer([{ model: retried }, { model: sayAt(secondary, "say-secondary", "k2") }])
      const seen: Array<Message.StreamEvent> = []
      const exit = yield* provided(stack)(
        Effect.exit(Stream.runForEach(LanguageModel.stream(Message.request("hi")), (event) => Effect.sync(() => void seen.push(event))))
      )
      expect(seen).toEqual([{ _tag: "TextDelta", text: "Hel" }])
      const error = failureOf(exit)
      expect(error).toBeInstanceOf(LlmError.StreamError)
      expect(error).toMatchObject({ _tag: "StreamError", partial: true, partialText: "Hel", retryable: false })
      expect([(yield* primary.requests).length, (yield* secondary.requests).length]).toEqual([1, 0])
    }))
})

// ---------------------------------------------------------------------------
// An embeddings provider of one's own
// ---------------------------------------------------------------------------

/**
 * Vectors: `POST /vectors` with `{ model, texts, size? }`; a reply is `{ vectors, used }`, an
 * error `{ oops, why }`. It takes at most 2 texts a call, none longer than 100 characters.
 */
const Vectors = (baseUrl: string): Provider.EmbeddingsSpec => ({
  provider: "vectors",
  auth: (key) => ({ "x-vectors-key": Redacted.value(key) }),
  headers: { "x-vectors-version": "1" },
  maxBatchSize: 2,
  url: (model) => `${baseUrl}/vectors?model=${model}`,
  body: (texts, model, { dimensions }) =>
    texts.some((text) => text.length > 100)
      ? new LlmError.InvalidRequestError({ provider: "vectors", model, message: "vectors: a text is longer than 100 characters" })
      : { model, texts, size: dimensions },
  decode: (_texts, model, body, status) => {
    const wire = JSON.parse(body) as { vectors?: ReadonlyArray<ReadonlyArray<number>>; used?: number }
    if (wire.vectors === undefined) {
      return new LlmError.MalformedResponseError({ provider: "vectors", model, message: "vectors: no vectors", excerpt: body.slice(0, 200), status })
    }
    return { vectors: wire.vectors, inputTokens: wire.used }
  },
  readError: (body) => {
    const wire = JSON.parse(body) as { oops?: string; why?: string }
    return wire.oops === undefined ? undefined : { message: wire.oops, type: wire.why, tag: wire.why === "quota" ? "QuotaExceededError" : undefined }
  }
})

/** A vector per text, from its length: `[length, size]`. */
const speaksVectors: Testing.Responder = (request) => {
  const { size, texts } = request.body as { texts: ReadonlyArray<string>; size?: number }
  return {
    _tag: "Raw",
    contentType: "application/json",
    body: JSON.stringify({ vectors: texts.map((text) => [text.length, size ?? 0]), used: texts.length * 10 })
  }
}

const vectorsAt = (fake: Testing.FakeProviderService, options: Partial<Provider.EmbeddingsOptions> = {}) =>
  Provider.layerEmbeddings(Vectors(fake.url), { model: "vectors-1", ...options }).pipe(
    Layer.provide(KeyPool.layer({ providerId: "vectors", keys: ["vectors-key-secret"] })),
    Layer.provide(RateLimiter.unlimited),
    Layer.provide(Transport.layerUndici)
  )

describe("an embeddings provider of one's own (public exports only)", () => {
  it.scoped("embeds in batches under its limit, in order, with its usage, key and headers", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({ respond: speaksVectors })
      const result = yield* Embeddings.embed(["a", "bb", "ccc", "dddd", "eeeee"], { dimensions: 3 }).pipe(Effect.provide(vectorsAt(fake)))
      expect(result).toMatchObject({ provider: "vectors", model: "vectors-1" })
      expect(result.embeddings).toEqual([[1, 3], [2, 3], [3, 3], [4, 3], [5, 3]])
      expect(result.usage).toEqual({ inputTokens: 50, outputTokens: 0, totalTokens: 50, estimated: false })
      const requests = yield* fake.requests
      expect(requests.map((r) => (r.body as { texts: ReadonlyArray<string> }).texts.length).sort()).toEqual([1, 2, 2])
      for (const r of requests) {
        expect(r.path).toBe("/vectors?model=vectors-1")
        expect(r.headers["x-vectors-key"]).toBe("vectors-key-secret")
        expect(r.headers["x-vectors-version"]).toBe("1")
      }
      // the options' batch size and provider id win over the spec's
      yield* fake.clear
      const renamed = yield* Embeddings.embed(["a", "bb"]).pipe(Effect.provide(vectorsAt(fake, { maxBatchSize: 1, provider: "mine" })))
      expect(renamed.provider).toBe("mine")
      expect((yield* fake.requests).length).toBe(2)
    }))

  it.scoped("its errors: read by its readError, refused input sent nowhere, a decode that throws typed", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({ respond: speaksVectors })
      const embed = (texts: ReadonlyArray<string>) => Effect.flip(Embeddings.embed(texts)).pipe(Effect.provide(vectorsAt(fake)))
      yield* fake.inject({ _tag: "Status", status: 429, body: `{"oops":"no credit left","why":"quota"}` })
      const quota = yield* embed(["a"])
      expect(quota).toMatchObject({ _tag: "QuotaExceededError", provider: "vectors", message: "vectors 429 quota: no credit left" })
      expect(JSON.stringify(quota)).not.toContain("vectors-key-secret")
      yield* fake.inject({ _tag: "Raw", contentType: "application/json", body: `{"oops":"busy","why":"quota"}` })
      expect((yield* embed(["a"]))._tag).toBe("QuotaExceededError")
      yield* fake.clear
      const tooLong = yield* embed(["a", "x".repeat(101)])
      expect(tooLong).toMatchObject({ _tag: "InvalidRequestError", message: "vectors: a text is longer than 100 characters" })
      expect((yield* fake.requests).length).toBe(0)
      yield* fake.inject({ _tag: "Raw", contentType: "text/html", body: "<html>gateway</html>" })
      expect(yield* embed(["a"])).toMatchObject({ _tag: "MalformedResponseError", provider: "vectors", excerpt: "<html>gateway</html>" })
    }))
})
