/**
 * Content parts, prompt-cache breakpoints and provider options on every wire API: the body each
 * sends, and the typed refusal (naming the message and part) of what an API cannot take.
 */
import { describe, expect, it } from "@effect/vitest"
import { LlmError, Message } from "../../../src/index.js"
import type { Spec } from "../../../src/Provider.js"
import { spec as anthropic } from "../../../src/internal/providers/anthropic/spec.js"
import { spec as gemini } from "../../../src/internal/providers/gemini/spec.js"
import { spec as ollama } from "../../../src/internal/providers/ollama/spec.js"
import { spec as chat } from "../../../src/internal/providers/openaiChat/spec.js"
import { spec as responses } from "../../../src/internal/providers/openaiResponses/spec.js"
import { pdf, png, wav } from "../../support/media.js"
import { assertValid } from "../../support/openapi.js"

const pngBytes = png(4, 4)
const pdfBytes = pdf(2)
const wavBytes = wav(1)
const b64 = (bytes: Buffer) => bytes.toString("base64")

const image = Message.image(pngBytes, { mediaType: "image/png", detail: "high" })
const imageUrl = Message.image("https://example.com/cat.png")
const pdfData = Message.file(pdfBytes, { filename: "report.pdf" })
const pdfUrl = Message.file("https://example.com/report.pdf")
const textFile = Message.file({ base64: b64(Buffer.from("a,b\n1,2")) }, { mediaType: "text/plain", filename: "t.txt" })
const audio = Message.audio(wavBytes)

const bodyOf = (spec: Spec, request: Message.ChatRequest, model = "m"): Record<string, any> => {
  const body = spec.body(request, model, false)
  if (LlmError.isLlmError(body)) throw new Error(`unexpected refusal: ${body.message}`)
  return body as Record<string, any>
}

const refusal = (spec: Spec, request: Message.ChatRequest): LlmError.InvalidRequestError => {
  const body = spec.body(request, "m", false)
  expect(LlmError.isLlmError(body)).toBe(true)
  expect((body as LlmError.LlmError)._tag).toBe("InvalidRequestError")
  return body as LlmError.InvalidRequestError
}

const withParts = (...parts: ReadonlyArray<Message.UserContentPart>) => Message.request([Message.user([Message.text("look"), ...parts])])

/** A tool call answered by a result with parts. */
const toolResult = (content: ReadonlyArray<Message.ToolResultPart>) =>
  Message.request([
    Message.user("chart it"),
    Message.assistant("", { toolCalls: [{ id: "c1", name: "chart", arguments: "{}" }] }),
    Message.tool("c1", content, "chart")
  ])

describe("content parts", () => {
  it("constructors: bytes and base64 become data: URLs of the media type; URLs stay", () => {
    expect(image).toEqual({ type: "image", url: `data:image/png;base64,${b64(pngBytes)}`, mediaType: "image/png", detail: "high" })
    expect(pdfData).toEqual({ type: "file", url: `data:application/pdf;base64,${b64(pdfBytes)}`, mediaType: "application/pdf", filename: "report.pdf" })
    expect(pdfUrl).toEqual({ type: "file", url: "https://example.com/report.pdf", mediaType: "application/pdf" })
    expect(audio).toEqual({ type: "audio", url: `data:audio/wav;base64,${b64(wavBytes)}`, mediaType: "audio/wav" })
    expect(Message.cached(Message.system("s"), "1h")).toEqual({ role: "system", content: "s", cache: { ttl: "1h" } })
  })

  it("Chat Completions: image_url, file (data), input_audio; valid against OpenAI's spec", () => {
    const body = bodyOf(chat({}), withParts(image, imageUrl, pdfData, audio))
    expect(body.messages[0].content).toEqual([
      { type: "text", text: "look" },
      { type: "image_url", image_url: { url: image.url, detail: "high" } },
      { type: "image_url", image_url: { url: "https://example.com/cat.png" } },
      { type: "file", file: { file_data: pdfData.url, filename: "report.pdf" } },
      { type: "input_audio", input_audio: { data: b64(wavBytes), format: "wav" } }
    ])
    assertValid("CreateChatCompletionRequest", body)
    // a file without a name gets one from its type
    expect(bodyOf(chat({}), withParts(Message.file(pdfBytes))).messages[0].content[1].file.filename).toBe("document.pdf")
  })

  it("Chat Completions refuses, by message and part: file URLs, other audio, a tool result's file URL", () => {
    expect(refusal(chat({}), withParts(imageUrl, pdfUrl)).message).toContain("messages[0].content[2]")
    expect(refusal(chat({}), withParts(Message.audio(wavBytes, { mediaType: "audio/ogg" }))).message).toMatch(/messages\[0\]\.content\[1\].*WAV or MP3/)
    expect(refusal(chat({}), toolResult([Message.text("done"), image, pdfUrl])).message).toContain("messages[2].content[2]")
    // text parts in a tool result are its text
    const ok = bodyOf(chat({}), toolResult([Message.text("a"), Message.text("b")]))
    expect(ok.messages[2]).toEqual({ role: "tool", tool_call_id: "c1", content: "ab" })
  })

  it("Chat Completions: a tool result's images and documents follow the run of tool messages in one user message", () => {
    const request = Message.request([
      Message.user("chart both"),
      Message.assistant("", { toolCalls: [{ id: "c1", name: "chart", arguments: "{}" }, { id: "c2", name: "chart", arguments: "{}" }] }),
      Message.tool("c1", [Message.text("done"), image], "chart"),
      Message.tool("c2", [pdfData, imageUrl], "chart"),
      Message.user("compare them")
    ])
    const body = bodyOf(chat({}), request)
    expect(body.messages.slice(2)).toEqual([
      { role: "tool", tool_call_id: "c1", content: "done\n\n[1 attachment follows in the next message]" },
      { role: "tool", tool_call_id: "c2", content: "[2 attachments follow in the next message]" },
      {
        role: "user",
        content: [
          { type: "text", text: "Attached to the result of tool call c1:" },
          { type: "image_url", image_url: { url: image.url, detail: "high" } },
          { type: "text", text: "Attached to the result of tool call c2:" },
          { type: "file", file: { file_data: pdfData.url, filename: "report.pdf" } },
          { type: "image_url", image_url: { url: "https://example.com/cat.png" } }
        ]
      },
      { role: "user", content: "compare them" }
    ])
    assertValid("CreateChatCompletionRequest", body)
    // at the end of the conversation too
    expect(bodyOf(chat({}), toolResult([image])).messages.at(-1).role).toBe("user")
  })

  it("Responses: input_image, input_file by data or URL, parts in a function_call_output; valid against OpenAI's spec", () => {
    const body = bodyOf(responses({}), withParts(image, pdfData, pdfUrl))
    const content = [
      { type: "input_text", text: "look" },
      { type: "input_image", image_url: image.url, detail: "high" },
      { type: "input_file", filename: "report.pdf", file_data: pdfData.url },
      { type: "input_file", file_url: "https://example.com/report.pdf" }
    ]
    expect(body.input).toEqual([{ role: "user", content }])
    // a user message with a content list matches two of the spec's `oneOf` branches: validate the item alone
    assertValid("InputMessage", body.input[0])
    const result = bodyOf(responses({}), toolResult([Message.text("chart:"), image, pdfData]))
    expect(result.input[2]).toEqual({
      type: "function_call_output",
      call_id: "c1",
      output: [{ type: "input_text", text: "chart:" }, { type: "input_image", image_url: image.url, detail: "high" }, content[2]]
    })
    assertValid("CreateResponse", { ...result, input: result.input.slice(1) })
    expect(refusal(responses({}), withParts(audio)).message).toMatch(/messages\[0\]\.content\[1\].*no audio/)
  })

  it("Anthropic: image and document sources (base64, url, text), in tool_result content too", () => {
    const body = bodyOf(anthropic({}), withParts(image, imageUrl, pdfData, pdfUrl, textFile))
    expect(body.messages[0].content).toEqual([
      { type: "text", text: "look" },
      { type: "image", source: { type: "base64", media_type: "image/png", data: b64(pngBytes) } },
      { type: "image", source: { type: "url", url: "https://example.com/cat.png" } },
      { type: "document", source: { type: "base64", media_type: "application/pdf", data: b64(pdfBytes) }, title: "report.pdf" },
      { type: "document", source: { type: "url", url: "https://example.com/report.pdf" } },
      { type: "document", source: { type: "text", media_type: "text/plain", data: "a,b\n1,2" }, title: "t.txt" }
    ])
    const result = bodyOf(anthropic({}), toolResult([Message.text("chart:"), image]))
    expect(result.messages[2].content).toEqual([{
      type: "tool_result",
      tool_use_id: "c1",
      content: [{ type: "text", text: "chart:" }, { type: "image", source: { type: "base64", media_type: "image/png", data: b64(pngBytes) } }]
    }])
    expect(refusal(anthropic({}), withParts(audio)).message).toMatch(/messages\[0\]\.content\[1\].*no audio/)
    expect(refusal(anthropic({}), withParts(Message.file(Buffer.from("x"), { mediaType: "application/zip" }))).message).toContain("messages[0].content[1]")
  })

  it("Gemini: inlineData for bytes, fileData for URLs, a tool result's media after its functionResponse", () => {
    const body = bodyOf(gemini({}), withParts(image, pdfUrl, audio))
    expect(body.contents[0].parts).toEqual([
      { text: "look" },
      { inlineData: { mimeType: "image/png", data: b64(pngBytes) } },
      { fileData: { mimeType: "application/pdf", fileUri: "https://example.com/report.pdf" } },
      { inlineData: { mimeType: "audio/wav", data: b64(wavBytes) } }
    ])
    const result = bodyOf(gemini({}), toolResult([Message.text("{\"ok\":true}"), pdfData]))
    expect(result.contents[2]).toEqual({
      role: "user",
      parts: [
        { functionResponse: { id: "c1", name: "chart", response: { ok: true } } },
        { inlineData: { mimeType: "application/pdf", data: b64(pdfBytes) } }
      ]
    })
    expect(refusal(gemini({}), withParts(Message.file("ftp://x/y.pdf"))).message).toContain("messages[0].content[1]")
  })

  it("Ollama: images (data only), in tool results too; refuses documents, audio and image URLs", () => {
    const body = bodyOf(ollama({}), withParts(image))
    expect(body.messages[0]).toEqual({ role: "user", content: "look", images: [b64(pngBytes)] })
    expect(bodyOf(ollama({}), toolResult([Message.text("see"), image])).messages[2]).toEqual({ role: "tool", content: "see", tool_name: "chart", images: [b64(pngBytes)] })
    expect(refusal(ollama({}), withParts(pdfData)).message).toMatch(/messages\[0\]\.content\[1\].*images only/)
    expect(refusal(ollama({}), withParts(audio)).message).toContain("messages[0].content[1]")
    expect(refusal(ollama({}), withParts(imageUrl)).message).toContain("data: URLs only")
  })
})

describe("prompt-cache breakpoints", () => {
  const tool: Message.ToolDefinition = { name: "lookup", parameters: { type: "object" }, cache: { ttl: "1h" } }
  const cachedRequest = Message.request(
    [
      Message.system("You are a librarian.", { cache: { ttl: "1h" } }),
      Message.system("Be brief."),
      Message.user([Message.cached(Message.file(pdfBytes)), Message.text("Summarise it.")]),
      Message.assistant("", { toolCalls: [{ id: "c1", name: "lookup", arguments: "{}" }] }),
      Message.tool("c1", "found", "lookup", { cache: {} })
    ],
    { tools: [tool] }
  )

  it("Anthropic: cache_control on the tool, the system block, the part and the tool result; 1h and 5m", () => {
    const body = bodyOf(anthropic({}), cachedRequest)
    expect(body.tools[0]).toEqual({ name: "lookup", input_schema: { type: "object" }, cache_control: { type: "ephemeral", ttl: "1h" } })
    expect(body.system).toEqual([
      { type: "text", text: "You are a librarian.", cache_control: { type: "ephemeral", ttl: "1h" } },
      { type: "text", text: "Be brief." }
    ])
    expect(body.messages[0].content[0]).toEqual({
      type: "document",
      source: { type: "base64", media_type: "application/pdf", data: b64(pdfBytes) },
      cache_control: { type: "ephemeral" }
    })
    expect(body.messages[2].content[0]).toEqual({ type: "tool_result", tool_use_id: "c1", content: "found", cache_control: { type: "ephemeral" } })
    // without a breakpoint, the system prompts stay one string
    expect(bodyOf(anthropic({}), Message.request([Message.system("a"), Message.system("b"), Message.user("hi")])).system).toBe("a\n\nb")
  })

  it("Anthropic: more than 4 breakpoints, or a 1h one after a 5m one, is refused before sending", () => {
    const five = Message.request([Message.user([1, 2, 3, 4, 5].map((n) => Message.text(`part ${n}`, { cache: {} })))])
    const tooMany = refusal(anthropic({}), five)
    expect(tooMany.message).toContain("5 prompt-cache breakpoints")
    expect(tooMany.message).toContain("at most 4")
    const order = Message.request([Message.system("s", { cache: {} }), Message.user([Message.text("u", { cache: { ttl: "1h" } })])])
    expect(refusal(anthropic({}), order).message).toContain("1-hour prompt-cache breakpoint comes after a 5-minute one")
  })

  it("OpenAI, Gemini and Ollama cache on their own: breakpoints change nothing in their bodies", () => {
    const plain = Message.request([Message.system("You are a librarian."), Message.user("hi")], { tools: [{ name: "lookup", parameters: { type: "object" } }] })
    const marked = Message.request([Message.cached(Message.system("You are a librarian.")), Message.user([Message.text("hi", { cache: {} })])], {
      tools: [{ name: "lookup", parameters: { type: "object" }, cache: {} }]
    })
    for (const spec of [chat({}), responses({}), gemini({}), ollama({})]) {
      const a = bodyOf(spec, plain)
      const b = bodyOf(spec, marked)
      // a single text part is a list on the wire, a string is a string: compare what they say
      expect(JSON.stringify(b).includes("cache")).toBe(false)
      expect(Object.keys(b).sort()).toEqual(Object.keys(a).sort())
    }
  })

  it("OpenRouter passes breakpoints on as cache_control on text parts", () => {
    const body = bodyOf(chat({ provider: "openrouter" }), Message.request([Message.cached(Message.system("Long rules.")), Message.user("hi")]))
    expect(body.messages[0]).toEqual({ role: "system", content: [{ type: "text", text: "Long rules.", cache_control: { type: "ephemeral" } }] })
    assertValid("CreateChatCompletionRequest", body)
  })
})

describe("providerOptions", () => {
  const options: Message.ProviderOptions = {
    openai: { prompt_cache_key: "tenant-7", prompt_cache_retention: "24h", service_tier: "flex" },
    openrouter: { provider: { order: ["anthropic", "openai"], allow_fallbacks: false, sort: "price" }, models: ["openai/gpt-4o"] },
    anthropic: { metadata: { user_id: "u1" }, thinking: { type: "enabled", budget_tokens: 2048 } },
    gemini: { generationConfig: { candidateCount: 1 }, cachedContent: "cachedContents/abc" },
    ollama: { options: { num_ctx: 8192 }, keep_alive: "5m" }
  }
  const request = Message.request("hi", { temperature: 0.5, user: "someone", providerOptions: options, extra: { top_level: true } })

  it("each API's body gets its own options, deep-merged, and extra on top; none of the others'", () => {
    const openai = bodyOf(chat({}), request)
    expect(openai).toMatchObject({ prompt_cache_key: "tenant-7", prompt_cache_retention: "24h", service_tier: "flex", temperature: 0.5, top_level: true })
    expect(openai).not.toHaveProperty("provider")
    assertValid("CreateChatCompletionRequest", { ...openai, top_level: undefined })

    const router = bodyOf(chat({ provider: "openrouter" }), request)
    expect(router).toMatchObject({ prompt_cache_key: "tenant-7", provider: { order: ["anthropic", "openai"], allow_fallbacks: false, sort: "price" }, models: ["openai/gpt-4o"] })

    const resp = bodyOf(responses({}), request)
    expect(resp).toMatchObject({ prompt_cache_key: "tenant-7", prompt_cache_retention: "24h" })

    const claude = bodyOf(anthropic({}), request)
    // merged into the mapped metadata, not replacing the rest
    expect(claude.metadata).toEqual({ user_id: "u1" })
    expect(claude.thinking).toEqual({ type: "enabled", budget_tokens: 2048 })
    expect(claude).not.toHaveProperty("prompt_cache_key")

    const google = bodyOf(gemini({}), request)
    expect(google.generationConfig).toEqual({ temperature: 0.5, candidateCount: 1 })
    expect(google.cachedContent).toBe("cachedContents/abc")

    const local = bodyOf(ollama({}), request)
    expect(local.options).toEqual({ temperature: 0.5, num_ctx: 8192 })
    expect(local.keep_alive).toBe("5m")
    for (const body of [claude, google, local]) {
      expect(body).not.toHaveProperty("prompt_cache_key")
      expect(body.top_level).toBe(true)
    }
  })
})
