/**
 * A PDF and an image in one user message, sent to each wire API's fake: every API takes them
 * in its own shape (Chat Completions `file` and `image_url`, Responses `input_file` and
 * `input_image`, Anthropic `document` and `image` blocks, Gemini `inlineData`), and the fake
 * answers with what it received. Ollama takes images only: the PDF is refused before anything
 * is sent, with a typed error naming the part. No key needed.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Console, Effect, Layer } from "effect"
import { deflateSync } from "node:zlib"
import { Anthropic, Gemini, KeyPool, LanguageModel, Message, Ollama, OpenAiCompatible, OpenAiResponses, RateLimiter, Transport } from "../src/index.js"
import * as Testing from "../src/Testing.js"

// a one-page PDF and a 2×2 PNG, made here so the example needs no files
const pdf = Buffer.from("%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n2 0 obj << /Type /Pages /Kids [3 0 R] /Count 1 >> endobj\n3 0 obj << /Type /Page /Parent 2 0 R >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n", "latin1")
const png = (() => {
  const chunk = (type: string, data: Buffer) => {
    const length = Buffer.alloc(4)
    length.writeUInt32BE(data.length)
    // the CRC is not checked by the fake; a zero one keeps the example short
    return Buffer.concat([length, Buffer.from(type, "latin1"), data, Buffer.alloc(4)])
  }
  const header = Buffer.from([0, 0, 0, 2, 0, 0, 0, 2, 8, 0, 0, 0, 0])
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk("IHDR", header), chunk("IDAT", deflateSync(Buffer.alloc(6))), chunk("IEND", Buffer.alloc(0))])
})()

const request = Message.request([
  Message.user([
    Message.text("Summarise the report and describe the chart."),
    Message.file(pdf, { filename: "report.pdf" }),
    Message.image(png, { mediaType: "image/png" })
  ])
])

const program = Effect.gen(function* () {
  const fake = yield* Testing.FakeProvider.make({})
  const keyed = <E, R>(providerId: string, model: Layer.Layer<LanguageModel.LanguageModel, E, R>) =>
    model.pipe(Layer.provide(KeyPool.layer({ providerId, keys: ["fake-key"] })), Layer.provide(RateLimiter.unlimited), Layer.provide(Transport.layerUndici))
  const apis = [
    ["Chat Completions", keyed("openai", OpenAiCompatible.layer({ model: "gpt-4o", baseUrl: fake.baseUrl }))],
    ["Responses", keyed("openai", OpenAiResponses.layer({ model: "gpt-4o", baseUrl: fake.baseUrl }))],
    ["Anthropic", keyed("anthropic", Anthropic.layer({ model: "claude-sonnet-4-5", baseUrl: fake.url }))],
    ["Gemini", keyed("gemini", Gemini.layer({ model: "gemini-2.5-flash", baseUrl: `${fake.url}/v1beta` }))],
    ["Ollama", keyed("ollama", Ollama.layer({ model: "llava", baseUrl: fake.url }))]
  ] as const
  for (const [name, model] of apis) {
    const answer = yield* LanguageModel.chat(request).pipe(
      Effect.map((response) => response.text),
      Effect.catchTag("InvalidRequestError", (error) => Effect.succeed(`refused before sending: ${error.message}`)),
      Effect.provide(model)
    )
    yield* Console.log(`${name}: ${answer}`)
  }
  yield* Console.log(`requests the fake received: ${(yield* fake.requests).length}`)
})

NodeRuntime.runMain(Effect.scoped(program))
