import { describe, expect, it } from "@effect/vitest"
import { Cause, ConfigError, ConfigProvider, Duration, Effect, Exit, Layer, Redacted } from "effect"
import { createHmac } from "node:crypto"
import * as zhipu from "../../../../src/internal/providers/openaiChat/zhipu.js"
import { KeyPool, LanguageModel, Message, OpenAiCompatible, ProviderConfig, RateLimiter, Transport } from "../../../../src/index.js"
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

// ---------------------------------------------------------------------------
// Keys and options refused at build; expired tokens; tokens in errors
// ---------------------------------------------------------------------------

const stackWith = (baseUrl: string, keys: ReadonlyArray<string>, options: Partial<OpenAiCompatible.Options> = {}) =>
  OpenAiCompatible.layer({ model: "glm-4-flash", baseUrl, provider: "zhipu", auth: "zhipu", ...options }).pipe(
    Layer.provide(KeyPool.layer({ providerId: "zhipu", keys })),
    Layer.provide(RateLimiter.unlimited),
    Layer.provide(Transport.layerUndici)
  )

/** Zhipu's own answer to an expired token (business code 1003, HTTP 401). */
const expiredBody = JSON.stringify({ error: { code: "1003", message: "Authentication Token已过期，请重新生成/获取。" } })

describe("Zhipu keys and tokens, hostile cases", () => {
  it.scoped("a key with an empty id or secret is refused when the layer builds, named by position, and nothing is sent", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({ zhipuKeys: [KEY] })
      for (const bad of [".s3cr3t-Only", "4f2a1c."]) {
        const error = yield* LanguageModel.chat(Message.request("hi")).pipe(Effect.provide(stackWith(fake.baseUrl, [KEY, bad])), Effect.flip)
        expect(ConfigError.isConfigError(error)).toBe(true)
        expect(String(error)).toContain("key 2 of 2")
        expect(String(error)).toContain("id.secret")
        expect(JSON.stringify(error) + String(error)).not.toContain("s3cr3t")
      }
      expect(yield* fake.requests).toHaveLength(0)
    }))

  it("the signer never sends a key with an empty id raw, whatever reaches it", () => {
    const auth = zhipu.auth({ ttlMs: 60_000, renewBeforeMs: 10_000, now: () => 1_000 })
    for (const bad of [".s3cr3t-Only", "4f2a1c."]) {
      expect(JSON.stringify(auth(Redacted.make(bad)))).not.toContain(bad)
    }
  })

  // the file loads (its other models stay usable); the entry fails when its model is asked for
  const modelOf = (registry: ProviderConfig.Registry) =>
    Effect.exit(Effect.scoped(Layer.build(registry.models.layer("zhipu", "glm-4-flash").pipe(Layer.provide(Transport.layerUndici)))))

  it.effect("ProviderConfig refuses such a key for an entry with \"auth\": \"zhipu\", naming its place, never the key", () =>
    Effect.gen(function* () {
      const exit = yield* modelOf(
        yield* ProviderConfig.fromJson({ zhipu: [{ model_name: "glm-4-flash", api_keys: [KEY, ".s3cr3t-Only"], auth: "zhipu" }] }, "provider.json")
      )
      expect(Exit.isFailure(exit)).toBe(true)
      const error = Exit.isFailure(exit) ? Cause.squash(exit.cause) as ProviderConfig.ProviderConfigError : undefined
      expect(error?._tag).toBe("ProviderConfigError")
      expect(error?.jsonPath).toBe("$.zhipu[0].api_keys[1]")
      expect(JSON.stringify(error) + String(error?.message)).not.toContain("s3cr3t")
      // keys from the environment: the entry's auth, and the variable, are named
      const fromEnv = yield* modelOf(
        yield* ProviderConfig.fromJson({ zhipu: [{ model_name: "glm-4-flash", auth: "zhipu" }] }).pipe(
          Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["ZHIPU_API_KEY", `${KEY},4f2a1c.`]])))
        )
      )
      const envError = Exit.isFailure(fromEnv) ? Cause.squash(fromEnv.cause) as ProviderConfig.ProviderConfigError : undefined
      expect(envError?.jsonPath).toBe("$.zhipu[0].auth")
      expect(envError?.message).toContain("key 2 of 2 in ZHIPU_API_KEY")
      expect(JSON.stringify(envError) + String(envError?.message)).not.toContain("s3cr3t")
    }))

  it.scoped("zhipuTokenTtl of 0, 1 ms, negative, past a day or infinite fails the layer with a ConfigError naming it", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({ zhipuKeys: [KEY] })
      for (const ttl of [0, "1 millis", -60_000, "25 hours", Duration.infinity] as ReadonlyArray<Duration.DurationInput>) {
        const error = yield* LanguageModel.chat(Message.request("hi")).pipe(
          Effect.provide(stackWith(fake.baseUrl, [KEY], { zhipuTokenTtl: ttl })),
          Effect.flip
        )
        expect(ConfigError.isConfigError(error)).toBe(true)
        expect(ConfigError.isConfigError(error) && error._op === "InvalidData" ? error.path : []).toEqual(["zhipuTokenTtl"])
      }
      expect(yield* fake.requests).toHaveLength(0)
      // the bounds themselves are fine
      for (const ttl of ["1 minute", "24 hours"] as ReadonlyArray<Duration.DurationInput>) {
        const reply = yield* LanguageModel.chat(Message.request("hi")).pipe(Effect.provide(stackWith(fake.baseUrl, [KEY], { zhipuTokenTtl: ttl })))
        expect(reply.text.length).toBeGreaterThan(0)
      }
    }))

  it("after a 401 that says the token expired, the signer drops it and signs anew; other 401s change nothing", () => {
    let now = 1_000_000
    const auth = zhipu.auth({ ttlMs: 60_000, renewBeforeMs: 10_000, now: () => now })
    const key = Redacted.make(KEY)
    const first = auth(key).authorization
    now += 5
    expect(auth(key).authorization).toBe(first)
    expect(auth.renewAfter(key, JSON.stringify({ error: { code: "1002", message: "Authentication Token非法" } }))).toBe(false)
    expect(auth(key).authorization).toBe(first)
    expect(auth.renewAfter(key, expiredBody)).toBe(true)
    const renewed = auth(key).authorization
    expect(renewed).not.toBe(first)
    expect(decodePart(renewed!.slice(7).split(".")[1]!)).toMatchObject({ timestamp: now, exp: now + 60_000 })
    // a raw key has no token to renew
    expect(auth.renewAfter(Redacted.make("rawkey"), expiredBody)).toBe(false)
  })

  it.scoped("one 401 \"token expired\" is signed anew and sent once more on the same key, which stays healthy (chat and stream)", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({ zhipuKeys: [KEY], reply: { text: "ni hao" } })
      const pool = yield* KeyPool.make({ providerId: "zhipu", keys: [KEY] })
      const model = OpenAiCompatible.layer({ model: "glm-4-flash", baseUrl: fake.baseUrl, provider: "zhipu", auth: "zhipu" }).pipe(
        Layer.provide(Layer.succeed(KeyPool.KeyPool, pool)),
        Layer.provide(RateLimiter.unlimited),
        Layer.provide(Transport.layerUndici)
      )
      yield* fake.inject({ _tag: "Status", status: 401, body: expiredBody })
      expect((yield* LanguageModel.chat(Message.request("hi")).pipe(Effect.provide(model))).text).toBe("ni hao")
      yield* fake.inject({ _tag: "Status", status: 401, body: expiredBody })
      const streamed = yield* LanguageModel.collect(LanguageModel.stream(Message.request("hi"))).pipe(Effect.provide(model))
      expect(streamed.text).toBe("ni hao")
      expect((yield* fake.requests).filter((r) => r.method === "POST")).toHaveLength(4)
      expect((yield* pool.status).map((s) => s.state)).toEqual(["healthy"])
    }))

  it.scoped("a token refused as expired twice is the usual 401: the key is disabled after exactly two sends", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({ zhipuKeys: [KEY] })
      const pool = yield* KeyPool.make({ providerId: "zhipu", keys: [KEY] })
      const model = OpenAiCompatible.layer({ model: "glm-4-flash", baseUrl: fake.baseUrl, provider: "zhipu", auth: "zhipu" }).pipe(
        Layer.provide(Layer.succeed(KeyPool.KeyPool, pool)),
        Layer.provide(RateLimiter.unlimited),
        Layer.provide(Transport.layerUndici)
      )
      yield* fake.inject({ _tag: "Status", status: 401, body: expiredBody }, { _tag: "Status", status: 401, body: expiredBody })
      const error = yield* LanguageModel.chat(Message.request("hi")).pipe(Effect.provide(model), Effect.flip)
      expect(error._tag).toBe("AuthenticationError")
      expect(yield* fake.requests).toHaveLength(2)
      expect((yield* pool.status).map((s) => s.state)).toEqual(["disabled"])
    }))

  it.scoped("a signed token quoted back in an error is masked like the key, in a JSON reply and in a stream", () =>
    Effect.gen(function* () {
      const tokens: Array<string> = []
      const fake = yield* Testing.FakeProvider.make({
        zhipuKeys: [KEY],
        respond: (request) => {
          const authorization = String(request.headers.authorization)
          tokens.push(authorization.slice(7))
          const stream = typeof request.body === "object" && request.body !== null && (request.body as { stream?: unknown }).stream === true
          return stream
            ? { _tag: "Raw", contentType: "text/event-stream", body: `data: ${JSON.stringify({ error: { message: `bad header ${authorization}` } })}\n\n` }
            : { _tag: "Status", status: 400, body: JSON.stringify({ error: { message: `invalid header: ${authorization}`, type: "invalid_request_error" } }) }
        }
      })
      const model = zhipuStack(fake.baseUrl, "zhipu")
      const json = yield* LanguageModel.chat(Message.request("hi")).pipe(Effect.provide(model), Effect.flip)
      const streamed = yield* LanguageModel.collect(LanguageModel.stream(Message.request("hi"))).pipe(Effect.provide(model), Effect.flip)
      expect(tokens).toHaveLength(2)
      for (const [error, token] of [[json, tokens[0]!], [streamed, tokens[1]!]] as const) {
        // the server did quote it: the message says so, masked
        expect(error.message).toContain("[redacted]")
        const text = JSON.stringify(error) + error.message
        expect(text).not.toContain(token)
        expect(text).not.toContain(token.split(".")[2]!)
        expect(text).not.toContain("s3cr3t")
      }
    }))
})
