import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Redacted } from "effect"
import { createHmac } from "node:crypto"
import * as zhipu from "../../../../src/internal/providers/openaiChat/zhipu.js"
import { KeyPool, LanguageModel, Message, OpenAiCompatible, RateLimiter, Transport } from "../../../../src/index.js"
import * as Testing from "../../../../src/Testing.js"

const KEY = "4f2a1c.s3cr3t-Value"

const decodePart = (part: string) => JSON.parse(Buffer.from(part, "base64url").toString("utf8")) as Record<string, unknown>

const zhipuStack = (baseUrl: string, auth: "bearer" | "zhipu") =>
  OpenAiCompatible.layer({ model: "glm-4-flash", baseUrl, provider: "zhipu", auth }).pipe(
    Layer.provide(KeyPool.layer({ providerId: "zhipu", keys: [KEY] })),
    Layer.provide(RateLimiter.unlimited),
    Layer.provide(Transport.layerUndici)
  )

describe("Zhipu signed tokens", () => {
  it("a token is HS256 over header {alg, sign_type} and payload {api_key, exp, timestamp} in ms, signed with the secret", () => {
    const token = zhipu.token("4f2a1c", "s3cr3t-Value", 1_700_000_000_000, 60_000)
    const [head, payload, signature] = token.split(".")
    expect(decodePart(head!)).toEqual({ alg: "HS256", sign_type: "SIGN" })
    expect(decodePart(payload!)).toEqual({ api_key: "4f2a1c", exp: 1_700_000_060_000, timestamp: 1_700_000_000_000 })
    expect(signature).toBe(createHmac("sha256", "s3cr3t-Value").update(`${head}.${payload}`).digest("base64url"))
    expect(token).not.toContain("s3cr3t")
  })

  it("a token is cached per key until shortly before it expires, then made anew", () => {
    let now = 1_000_000
    const auth = zhipu.auth({ ttlMs: 60_000, renewBeforeMs: 10_000, now: () => now })
    const first = auth(Redacted.make(KEY)).authorization
    now += 49_999
    expect(auth(Redacted.make(KEY)).authorization).toBe(first)
    expect(auth(Redacted.make("other.key")).authorization).not.toBe(first)
    now += 1
    const renewed = auth(Redacted.make(KEY)).authorization
    expect(renewed).not.toBe(first)
    expect(decodePart(renewed!.slice(7).split(".")[1]!)).toMatchObject({ timestamp: now, exp: now + 60_000 })
    // nothing to sign without a dot: the raw key, as the API accepts
    expect(auth(Redacted.make("rawkey")).authorization).toBe("Bearer rawkey")
  })

  it("verify refuses a wrong secret, a tampered payload, an expired token and a raw key", () => {
    const now = 2_000_000
    const good = `Bearer ${zhipu.token("4f2a1c", "s3cr3t-Value", now, 60_000)}`
    expect(zhipu.verify(good, [KEY], now)).toBeUndefined()
    expect(zhipu.verify(good, ["4f2a1c.wrong"], now)).toBe("bad signature")
    expect(zhipu.verify(good, ["other.s3cr3t-Value"], now)).toBe("unknown api_key")
    expect(zhipu.verify(good, [KEY], now + 60_000)).toBe("token expired")
    const [head, , signature] = good.slice(7).split(".")
    const forged = Buffer.from(JSON.stringify({ api_key: "4f2a1c", exp: now * 10, timestamp: now })).toString("base64url")
    expect(zhipu.verify(`Bearer ${head}.${forged}.${signature}`, [KEY], now)).toBe("bad signature")
    expect(zhipu.verify(`Bearer ${KEY}`, [KEY], now)).toBe("not a JWT")
  })

  it.scoped("auth: \"zhipu\" sends a token the fake verifies with the secret, on chat and stream; the secret never travels", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({ zhipuKeys: [KEY], reply: { text: "ni hao" } })
      const model = zhipuStack(fake.baseUrl, "zhipu")
      const reply = yield* LanguageModel.chat(Message.request("hi")).pipe(Effect.provide(model))
      expect(reply.text).toBe("ni hao")
      const streamed = yield* LanguageModel.collect(LanguageModel.stream(Message.request("hi"))).pipe(Effect.provide(model))
      expect(streamed.text).toBe("ni hao")
      const requests = yield* fake.requests
      expect(requests).toHaveLength(2)
      for (const request of requests) {
        const authorization = String(request.headers.authorization)
        expect(authorization).not.toContain("s3cr3t")
        expect(decodePart(authorization.slice(7).split(".")[1]!)).toMatchObject({ api_key: "4f2a1c" })
      }
    }))

  it.scoped("the raw key as a Bearer token is refused by a fake that checks Zhipu tokens", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({ zhipuKeys: [KEY] })
      const error = yield* LanguageModel.chat(Message.request("hi")).pipe(Effect.provide(zhipuStack(fake.baseUrl, "bearer")), Effect.flip)
      expect(error._tag).toBe("AuthenticationError")
      expect(error.message).toContain("zhipu token refused")
      expect(JSON.stringify(error)).not.toContain("s3cr3t")
    }))
})
