/**
 * The rate limiter's estimate counts media by each API's documented rule, not by the length
 * of their base64.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { Anthropic, Gemini, KeyPool, LanguageModel, Message, OpenAiCompatible, RateLimiter, Transport } from "../../src/index.js"
import * as Testing from "../../src/Testing.js"
import { audioSeconds, imageSize, mediaTokens, pdfPages } from "../../src/internal/mediaTokens.js"
import { pdf, png, wav } from "../support/media.js"

const b64 = (bytes: Buffer) => bytes.toString("base64")

describe("media tokens", () => {
  it("reads sizes from the bytes: PNG, JPEG, GIF, WebP dimensions; PDF pages; WAV seconds", () => {
    expect(imageSize(b64(png(1024, 768)))).toEqual({ width: 1024, height: 768 })
    // a JPEG's start-of-frame after an APP0 segment
    const jpeg = Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x04, 0x00, 0x00, 0xff, 0xc0, 0x00, 0x11, 0x08, 0x01, 0xe0, 0x02, 0x80, 0x03])
    expect(imageSize(b64(jpeg))).toEqual({ width: 640, height: 480 })
    const gif = Buffer.from("GIF89a\x20\x03\x58\x02\x00\x00", "latin1")
    expect(imageSize(b64(gif))).toEqual({ width: 800, height: 600 })
    expect(imageSize(b64(Buffer.from("not an image")))).toBeUndefined()
    expect(pdfPages(b64(pdf(7)))).toBe(7)
    expect(audioSeconds(b64(wav(3)))).toBeCloseTo(3, 3)
  })

  it("each API's rule: OpenAI tiles, Anthropic w*h/750, Gemini 258 per image or tile and per page", () => {
    const photo = Message.image(png(1024, 1024))
    // OpenAI: 1024² scales to 768², 2×2 tiles of 512: 85 + 4·170
    expect(mediaTokens(photo, "openai")).toBe(765)
    expect(mediaTokens(Message.image(png(1024, 1024), { detail: "low" }), "openai")).toBe(85)
    // Anthropic: 1024·1024/750
    expect(mediaTokens(photo, "anthropic")).toBe(Math.ceil((1024 * 1024) / 750))
    // Gemini: over 384 on a side, 768² tiles: 2×2 of them
    expect(mediaTokens(photo, "gemini")).toBe(258 * 4)
    expect(mediaTokens(Message.image(png(300, 200)), "gemini")).toBe(258)
    const doc = Message.file(pdf(3))
    expect(mediaTokens(doc, "gemini")).toBe(258 * 3)
    expect(mediaTokens(doc, "anthropic")).toBe(3_000 * 3)
    expect(mediaTokens(Message.audio(wav(2)), "gemini")).toBe(64)
    // a URL's bytes are not at hand: a 1024² image
    expect(mediaTokens(Message.image("https://example.com/a.png"), "anthropic")).toBe(Math.ceil((1024 * 1024) / 750))
  })

  it.scoped("the limiter is asked for the rule's tokens, not the base64's length", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({ reply: { text: "ok" } })
      // a noisy 1200×900 image: over a megabyte of base64
      const big = png(1200, 900, true)
      const request = Message.request([Message.user([Message.text("what is this?"), Message.image(big), Message.file(pdf(2))])])
      const admitted: Array<number> = []
      const recording = Layer.effect(
        RateLimiter.RateLimiter,
        Effect.map(Effect.orDie(RateLimiter.make({ capacity: 1e9, refillPerSecond: 1e9 })), (limiter) => ({
          ...limiter,
          admit: (cost: RateLimiter.Cost) => Effect.zipRight(Effect.sync(() => admitted.push(cost.tokens ?? 0)), limiter.admit(cost))
        }))
      )
      const base = Layer.mergeAll(KeyPool.layer({ providerId: "p", keys: ["k"] }), recording, Transport.layerUndici)
      yield* LanguageModel.chat(request).pipe(Effect.provide(Anthropic.layer({ model: "claude-sonnet-4-5", baseUrl: fake.url }).pipe(Layer.provide(base))))
      yield* LanguageModel.chat(request).pipe(Effect.provide(Gemini.layer({ model: "gemini-2.5-flash", baseUrl: `${fake.url}/v1beta` }).pipe(Layer.provide(base))))
      yield* LanguageModel.chat(request).pipe(Effect.provide(OpenAiCompatible.layer({ model: "gpt-4o", baseUrl: fake.baseUrl }).pipe(Layer.provide(base))))
      const base64Chars = b64(big).length
      expect(base64Chars).toBeGreaterThan(100_000)
      const [claude, google, openai] = admitted as [number, number, number]
      // the image fitted into 1568 on its long side, w*h/750; two PDF pages at 3000
      expect(claude).toBeGreaterThan(Math.ceil((1200 * 900) / 750) + 6_000)
      expect(claude).toBeLessThan(Math.ceil((1200 * 900) / 750) + 6_000 + 100)
      // 2×2 tiles of 768, two pages at 258
      expect(google).toBeGreaterThan(258 * 4 + 258 * 2)
      expect(google).toBeLessThan(258 * 6 + 100)
      // 1200×900 scales to 1024×768, 4 tiles; two pages of a page image and text
      expect(openai).toBeGreaterThan(765 + 2 * 1265)
      expect(openai).toBeLessThan(765 + 2 * 1265 + 100)
      for (const tokens of admitted) expect(tokens).toBeLessThan(base64Chars / 4 / 10)
    }))
})
