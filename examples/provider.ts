/**
 * A provider of your own: a `Provider.Spec` for "Echo", an invented wire format (POST /chat →
 * `{ text }`, or NDJSON lines `{ delta }` then `{ done: true }` when streamed), given the key
 * pool, limits, deadlines, error mapping and stream guarantees of the built-in providers; and
 * a `Provider.EmbeddingsSpec` for its `/embed` (`{ texts }` → `{ vectors, tokens }`), given
 * batching and the same pool and limits. The fake provider speaks Echo here through `Raw` replies.
 */
import { Effect, Layer, Redacted, Stream } from "effect"
import { Embeddings, KeyPool, LanguageModel, LlmError, Message, Provider, RateLimiter, Retry, Transport } from "../src/index.js"
import * as Testing from "../src/Testing.js"

const usage: Message.Usage = { inputTokens: 0, outputTokens: 0, totalTokens: 0, estimated: true }

class EchoParser implements Provider.StreamParser {
  emittedText = ""
  settledTokens = undefined
  done = false
  constructor(readonly model: string) {}
  onData(data: string, _event: string | undefined, out: Array<Message.StreamEvent>) {
    const line = JSON.parse(data) as { delta?: string; done?: boolean }
    if (line.delta !== undefined) {
      this.emittedText += line.delta
      Provider.pushDelta(out, "TextDelta", line.delta)
    }
    if (line.done === true) {
      this.done = true
      out.push({ _tag: "Finish", finishReason: "stop", usage, id: "echo", model: this.model, provider: "echo" })
    }
    return undefined
  }
  // a stream that ends without its done line is cut: partial once text was delivered
  onEnd() {
    if (this.done) return undefined
    const partial = this.emittedText.length > 0
    return new LlmError.StreamError({ provider: "echo", model: this.model, message: "cut", partial, partialText: this.emittedText })
  }
}

const Echo = (baseUrl: string): Provider.Spec => ({
  provider: "echo",
  auth: (key) => ({ authorization: `Bearer ${Redacted.value(key)}` }),
  framing: "ndjson",
  url: () => `${baseUrl}/chat`,
  body: (request, model, stream) => ({ model, stream, prompt: request.messages.map(Message.contentText).join("\n") }),
  // a throw here (JSON.parse of a body that is not JSON) becomes a MalformedResponseError
  decode: (_request, model, body) => ({
    id: "echo",
    model,
    provider: "echo",
    text: String((JSON.parse(body) as { text: unknown }).text),
    toolCalls: [],
    finishReason: "stop",
    usage
  }),
  parser: (_request, model) => new EchoParser(model),
  // Echo's errors are `{ "problem": "…" }`; a reader tells the library what they say
  readError: (body) => {
    const problem = (JSON.parse(body) as { problem?: string }).problem
    return problem === undefined ? undefined : { message: problem, tag: problem.includes("too long") ? "ContextLengthError" : undefined }
  }
})

// embeddings: at most 2 texts a call, each vector the text's length and its count of spaces
const EchoEmbeddings = (baseUrl: string): Provider.EmbeddingsSpec => ({
  provider: "echo",
  auth: (key) => ({ authorization: `Bearer ${Redacted.value(key)}` }),
  maxBatchSize: 2,
  url: () => `${baseUrl}/embed`,
  body: (texts, model) => ({ model, texts }),
  decode: (_texts, _model, body) => {
    const reply = JSON.parse(body) as { vectors: Array<Array<number>>; tokens: number }
    return { vectors: reply.vectors, inputTokens: reply.tokens }
  }
})

// the fake answers in Echo: JSON, or NDJSON when the body asks for a stream, or vectors
const speaksEcho: Testing.Responder = (request) => {
  if (request.path === "/embed") {
    const { texts } = request.body as { texts: Array<string> }
    const vectors = texts.map((text) => [text.length, text.split(" ").length - 1])
    return { _tag: "Raw", contentType: "application/json", body: JSON.stringify({ vectors, tokens: texts.length }) }
  }
  const { prompt, stream } = request.body as { prompt: string; stream: boolean }
  return stream
    ? { _tag: "Raw", contentType: "application/x-ndjson", body: [...prompt.split(" ").map((w) => JSON.stringify({ delta: w + " " }) + "\n"), "{\"done\":true}\n"] }
    : { _tag: "Raw", contentType: "application/json", body: JSON.stringify({ text: `echo: ${prompt}` }) }
}

const program = Effect.gen(function* () {
  const fake = yield* Testing.FakeProvider.make({ respond: speaksEcho })
  yield* fake.inject({ _tag: "Status", status: 503 })
  const EchoModel = Retry.layer(Retry.schedule({ initialDelay: "10 millis" })).pipe(
    Layer.provide(Provider.layer(Echo(fake.url), { model: "echo-1" })),
    Layer.provide(KeyPool.layer({ providerId: "echo", keys: ["echo-key"] })),
    Layer.provide(RateLimiter.unlimited),
    Layer.provide(Transport.layerUndici)
  )
  yield* Effect.gen(function* () {
    const reply = yield* LanguageModel.chat(Message.request("hello there"))
    console.log(`chat (after a retried 503): ${reply.text}`)
    const streamed = yield* Stream.runFold(LanguageModel.stream(Message.request("one two three")), "", (text, event) =>
      event._tag === "TextDelta" ? text + event.text : text)
    console.log(`stream: ${streamed.trim()}`)
    yield* fake.inject({ _tag: "Status", status: 400, body: JSON.stringify({ problem: "the prompt is too long" }) })
    const error = yield* Effect.flip(LanguageModel.chat(Message.request("a very long prompt")))
    console.log(`an Echo error body, read by readError: ${error._tag}: ${error.message}`)
  }).pipe(Effect.provide(EchoModel))

  const EchoVectors = Provider.layerEmbeddings(EchoEmbeddings(fake.url), { model: "echo-embed-1" }).pipe(
    Layer.provide(KeyPool.layer({ providerId: "echo", keys: ["echo-key"] })),
    Layer.provide(RateLimiter.unlimited),
    Layer.provide(Transport.layerUndici)
  )
  const { embeddings, usage } = yield* Embeddings.embed(["one", "two words", "three short words"]).pipe(Effect.provide(EchoVectors))
  const calls = (yield* fake.requests).filter((request) => request.path === "/embed").length
  console.log(`embeddings (${calls} calls): ${JSON.stringify(embeddings)}, ${usage.inputTokens} tokens`)
})

Effect.runPromise(Effect.scoped(program))
