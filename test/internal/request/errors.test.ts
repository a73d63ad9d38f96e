/**
 * Error mapping by HTTP (src/internal/request/errors.ts): status + headers + what a reader read
 * of the body → LlmError, the generic reading for providers without a reader, and the same
 * through the request path against FakeProvider; keys never appear in an error. Each API's
 * reader is tested beside it (test/internal/providers/<api>/error.test.ts).
 */
import { describe, expect, it } from "@effect/vitest"
import { Cause, Duration, Effect, Exit, Redacted, TestClock } from "effect"
import { embeddedError, fromResponse, parseGoDuration, redactSecret, retryAfterOf, streamErrorOf } from "../../../src/internal/request/errors.js"
import { readErrorBody } from "../../../src/internal/request/errorBody.js"
import { LanguageModel, LlmError, Message } from "../../../src/index.js"
import type * as Testing from "../../../src/Testing.js"
import { fakeProvider, stack } from "../../support/openaiStack.js"

const openAiError = (message: string, type: string, code: string | null) => JSON.stringify({ error: { message, type, param: null, code } })

const map = (status: number, body: string, headers: Record<string, string> = {}, now = 0) =>
  fromResponse({ provider: "openai", model: "gpt-x", status, headers, body, now })

describe("fromResponse", () => {
  it("maps statuses to classes; the generic reading knows no vendor's words", () => {
    const cases: ReadonlyArray<readonly [number, string, LlmError.LlmError["_tag"], boolean]> = [
      [401, "{}", "AuthenticationError", false],
      [403, "{}", "PermissionError", false],
      [429, "{}", "RateLimitError", true],
      // OpenAI's quota code is OpenAI's reader's to know (openaiChat/error.ts)
      [429, openAiError("You exceeded your current quota", "insufficient_quota", "insufficient_quota"), "RateLimitError", true],
      [400, JSON.stringify({ error: "bad" }), "InvalidRequestError", false],
      [404, "", "InvalidRequestError", false],
      [408, "{}", "TimeoutError", true],
      [409, "{}", "InvalidRequestError", true],
      [422, "{}", "InvalidRequestError", false],
      [500, "{}", "ServerError", true],
      [502, "<html>Bad gateway</html>", "ServerError", true],
      [529, "{}", "ServerError", true]
    ]
    for (const [status, body, tag, retryable] of cases) {
      const error = map(status, body)
      expect({ status, tag: error._tag, retryable: error.retryable }).toEqual({ status, tag, retryable })
      if (tag !== "TimeoutError") expect("status" in error ? error.status : undefined).toBe(status)
    }
  })

  it("a reader names the class where the body says more than the status, and may give a wait", () => {
    const read = (tag: "QuotaExceededError" | "ContextLengthError" | "ContentFilterError") => () => ({ message: "m", type: "t", tag })
    expect(fromResponse({ provider: "p", model: "m", status: 429, headers: {}, body: "{}", now: 0 }, read("QuotaExceededError"))).toMatchObject({
      _tag: "QuotaExceededError",
      status: 429,
      retryable: false,
      message: "p 429 t: m"
    })
    expect(fromResponse({ provider: "p", model: "m", status: 400, headers: {}, body: "{}", now: 0 }, read("ContextLengthError"))._tag).toBe("ContextLengthError")
    expect(fromResponse({ provider: "p", model: "m", status: 400, headers: {}, body: "{}", now: 0 }, read("ContentFilterError"))._tag).toBe("ContentFilterError")
    // the body's wait counts when no header gives one; a header wins
    const waits = () => ({ retryAfter: Duration.seconds(13) })
    const limited = fromResponse({ provider: "p", model: "m", status: 429, headers: {}, body: "{}", now: 0 }, waits)
    expect(limited._tag === "RateLimitError" && Duration.toMillis(limited.retryAfter!)).toBe(13_000)
    const header = fromResponse({ provider: "p", model: "m", status: 429, headers: { "retry-after": "2" }, body: "{}", now: 0 }, waits)
    expect(header._tag === "RateLimitError" && Duration.toMillis(header.retryAfter!)).toBe(2000)
    // x-should-retry still overrides a class the body named
    const forced = fromResponse({ provider: "p", model: "m", status: 429, headers: { "x-should-retry": "true" }, body: "{}", now: 0 }, read("QuotaExceededError"))
    expect(forced.retryable).toBe(true)
  })

  it("a reader that knows nothing of a body, or throws, leaves it to the generic reading", () => {
    const body = openAiError("Invalid value for 'temperature'", "invalid_request_error", "invalid_value")
    const ctx = { provider: "p", model: "m", status: 400, headers: {}, body, now: 0 }
    const expected = "p 400 invalid_request_error: Invalid value for 'temperature'"
    expect(fromResponse(ctx, () => undefined).message).toBe(expected)
    expect(fromResponse(ctx, () => { throw new Error("reader bug") }).message).toBe(expected)
    // a body that is not the common shape: its top-level fields, or an excerpt
    expect(fromResponse({ ...ctx, body: JSON.stringify({ message: "flat", type: "BadRequestError" }) }, () => undefined).message).toBe("p 400 BadRequestError: flat")
    expect(fromResponse({ ...ctx, body: "plain words" }, () => undefined).message).toBe("p 400: plain words")
  })

  it("puts the provider's message and type in the error message", () => {
    const error = map(400, openAiError("Invalid value for 'temperature'", "invalid_request_error", "invalid_value"))
    expect(error.message).toBe("openai 400 invalid_request_error: Invalid value for 'temperature'")
  })

  it("quotes a short excerpt of a body that is not JSON", () => {
    const error = map(502, "<html>" + "x".repeat(1000) + "</html>")
    expect(error._tag).toBe("ServerError")
    expect(error.message).toContain("<html>xxx")
    expect(error.message.length).toBeLessThan(260)
  })

  it("reads retry-after-ms before retry-after", () => {
    const error = map(429, "{}", { "retry-after-ms": "1500", "retry-after": "9" })
    expect(error._tag).toBe("RateLimitError")
    if (error._tag === "RateLimitError") expect(Duration.toMillis(error.retryAfter!)).toBe(1500)
  })

  it("a 503 or 529 with retry-after carries it, so Retry waits at least that long", () => {
    for (const status of [503, 529]) {
      const error = map(status, "{}", { "retry-after": "7" })
      expect(error._tag).toBe("ServerError")
      expect(Duration.toMillis((error as LlmError.ServerError).retryAfter!)).toBe(7_000)
    }
    expect((map(500, "{}") as LlmError.ServerError).retryAfter).toBeUndefined()
  })

  it("reads retry-after as seconds, fractional seconds, or an HTTP date", () => {
    expect(Duration.toMillis(retryAfterOf({ "retry-after": "20" }, 0)!)).toBe(20_000)
    expect(Duration.toMillis(retryAfterOf({ "retry-after": "0.5" }, 0)!)).toBe(500)
    const now = Date.parse("Sat, 21 Nov 2026 10:00:00 GMT")
    expect(Duration.toMillis(retryAfterOf({ "retry-after": "Sat, 21 Nov 2026 10:00:42 GMT" }, now)!)).toBe(42_000)
    // the obsolete forms HTTP still allows
    expect(Duration.toMillis(retryAfterOf({ "retry-after": "Saturday, 21-Nov-26 10:00:42 GMT" }, now)!)).toBe(42_000)
    expect(Duration.toMillis(retryAfterOf({ "retry-after": "Sat Nov 21 10:00:42 2026" }, now)!)).toBe(42_000)
  })

  it("treats a retry-after of 0, negative, unparseable or in the past as absent", () => {
    const now = Date.parse("Sat, 21 Nov 2026 10:00:00 GMT")
    for (const value of ["0", "0.0", "-1", "-0.5", "1 2", "1e3", "soon", "", "Sat, 21 Nov 2026 09:00:00 GMT", "Sat, 21 Nov 2026 10:00:00 GMT", "2026-11-21T10:00:42Z"]) {
      expect(retryAfterOf({ "retry-after": value }, now), `retry-after: ${JSON.stringify(value)}`).toBeUndefined()
    }
    for (const value of ["0", "-5", "NaN", "Infinity", "1 2"]) {
      expect(retryAfterOf({ "retry-after-ms": value }, now), `retry-after-ms: ${JSON.stringify(value)}`).toBeUndefined()
    }
    // an absent ms falls back to the seconds header
    expect(Duration.toMillis(retryAfterOf({ "retry-after-ms": "0", "retry-after": "3" }, now)!)).toBe(3000)
  })

  it("ignores malformed retry headers", () => {
    expect(retryAfterOf({ "retry-after": "soon" }, 0)).toBeUndefined()
    expect(retryAfterOf({ "retry-after-ms": "-5" }, 0)).toBeUndefined()
    const error = map(429, "{}", { "retry-after": "soon" })
    expect(error._tag).toBe("RateLimitError")
    if (error._tag === "RateLimitError") expect(error.retryAfter).toBeUndefined()
  })

  it("parses Go-style durations", () => {
    expect(parseGoDuration("6m0s")).toBe(360_000)
    expect(parseGoDuration("1h2m3.5s")).toBe(3_723_500)
    expect(parseGoDuration("250ms")).toBe(250)
    expect(parseGoDuration("13s")).toBe(13_000)
    expect(parseGoDuration("2")).toBe(2000)
    expect(parseGoDuration("6m and more")).toBeUndefined()
    expect(parseGoDuration("")).toBeUndefined()
  })

  it("honours x-should-retry", () => {
    expect(map(500, "{}", { "x-should-retry": "false" }).retryable).toBe(false)
    expect(map(400, "{}", { "x-should-retry": "true" }).retryable).toBe(true)
  })
})

describe("error bodies without a status of their own", () => {
  const head = { provider: "p", model: "m", headers: {}, now: 0 }

  it("a 2xx body is an error only when the reader says so; its status is its own, its class's, or its words'", () => {
    expect(embeddedError(head, JSON.stringify({ id: "x", choices: [] }), readErrorBody)).toBeUndefined()
    expect(embeddedError(head, "not json", readErrorBody)).toBeUndefined()
    // an `error` string beside a reply's fields is not an error object
    expect(embeddedError(head, JSON.stringify({ error: "x", choices: [] }), readErrorBody)).toBeUndefined()
    const numeric = embeddedError(head, JSON.stringify({ error: { code: 503, message: "upstream down" } }), readErrorBody)
    expect(numeric).toMatchObject({ _tag: "ServerError", status: 503, message: "p error body (sent with HTTP 200): upstream down" })
    const words = embeddedError(head, JSON.stringify({ error: { type: "rate_limit_exceeded", message: "slow" } }), readErrorBody)
    expect(words?._tag).toBe("RateLimitError")
    expect(embeddedError(head, JSON.stringify({ error: "model 'nope' not found" }), readErrorBody)?._tag).toBe("InvalidRequestError")
    expect(embeddedError(head, JSON.stringify({ error: { message: "boom" } }), readErrorBody)).toMatchObject({ _tag: "ServerError", status: 500 })
    expect(embeddedError(head, "{}", () => ({ tag: "QuotaExceededError" }))).toMatchObject({ _tag: "QuotaExceededError", status: 429 })
    expect(embeddedError(head, "{}", () => ({ status: 401 }))?._tag).toBe("AuthenticationError")
    // a status that is no HTTP error status is not taken
    expect(embeddedError(head, "{}", () => ({ status: 200, message: "x" }))).toMatchObject({ _tag: "ServerError", status: 500 })
    expect(embeddedError(head, "{}", () => { throw new Error("reader bug") })).toBeUndefined()
  })

  it("a stream's error event is a StreamError, retryable as the same error would be as a reply", () => {
    const error = streamErrorOf("p", "m", { type: "invalid_request_error", message: "bad" }, "so far", true)
    expect(error).toMatchObject({ _tag: "StreamError", partial: true, partialText: "so far", retryable: false })
    expect(error.message).toBe("p stream error invalid_request_error: bad")
    expect(streamErrorOf("p", "m", { type: "overloaded_error", message: "Overloaded" }, "", false).retryable).toBe(true)
    expect(streamErrorOf("p", "m", { tag: "QuotaExceededError" }, "", false)).toMatchObject({ retryable: false, message: "p stream error: unknown error" })
    expect(streamErrorOf("p", "m", { message: "boom" }, "", false).retryable).toBe(true)
    expect(streamErrorOf("p", "m", { status: 401 }, "", false).retryable).toBe(false)
  })
})

describe("redactSecret", () => {
  it("masks the key in message, excerpt and partial text, and keeps the class and fields", () => {
    const key = Redacted.make("sk-live-ABCDEF0123456789")
    const error = new LlmError.MalformedResponseError({
      provider: "p",
      model: "m",
      message: "bad body for sk-live-ABCDEF0123456789",
      excerpt: "Bearer sk-live-ABCDEF0123456789",
      status: 200
    })
    const masked = redactSecret(error, key)
    expect(masked).toBeInstanceOf(LlmError.MalformedResponseError)
    expect(masked.message).toBe("bad body for [redacted]")
    expect(masked.excerpt).toBe("Bearer [redacted]")
    expect(masked.status).toBe(200)
    expect(JSON.stringify(masked)).not.toContain("ABCDEF0123456789")
  })

  it("returns the same error when nothing leaks", () => {
    const error = new LlmError.NetworkError({ provider: "p", model: "m", message: "refused" })
    expect(redactSecret(error, Redacted.make("sk-x"))).toBe(error)
    expect(redactSecret(error, undefined)).toBe(error)
  })
})

// ---------------------------------------------------------------------------
// Through the request path
// ---------------------------------------------------------------------------

const request = Message.request("hello")

const chatFails = (fault: Testing.Fault, keys?: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const fake = yield* fakeProvider()
    yield* fake.inject(fault)
    return yield* Effect.flip(LanguageModel.chat(request).pipe(Effect.provide(stack(fake.baseUrl, { keys: keys ?? ["sk-one"] }))))
  })

describe("errors over the wire", () => {
  it.scoped("401 → AuthenticationError, 403 → PermissionError", () =>
    Effect.gen(function* () {
      expect((yield* chatFails({ _tag: "Status", status: 401 }))._tag).toBe("AuthenticationError")
      expect((yield* chatFails({ _tag: "Status", status: 403 }))._tag).toBe("PermissionError")
    }))

  it.scoped("429 → RateLimitError with retryAfter from retry-after-ms or retry-after", () =>
    Effect.gen(function* () {
      const ms = yield* chatFails({ _tag: "RateLimit", retryAfterMs: 2500 })
      expect(ms._tag).toBe("RateLimitError")
      if (ms._tag === "RateLimitError") expect(Duration.toMillis(ms.retryAfter!)).toBe(2500)
      const seconds = yield* chatFails({ _tag: "RateLimit", retryAfterSeconds: 7 })
      if (seconds._tag === "RateLimitError") expect(Duration.toMillis(seconds.retryAfter!)).toBe(7000)
      else expect.fail(seconds._tag)
    }))

  it.scoped("429 with an HTTP date, read against the clock", () =>
    Effect.gen(function* () {
      yield* TestClock.setTime(Date.parse("Sat, 21 Nov 2026 10:00:00 GMT"))
      const error = yield* chatFails({
        _tag: "Status",
        status: 429,
        headers: { "retry-after": "Sat, 21 Nov 2026 10:00:30 GMT" },
        body: openAiError("Rate limit reached", "requests", "rate_limit_exceeded")
      })
      if (error._tag === "RateLimitError") expect(Duration.toMillis(error.retryAfter!)).toBe(30_000)
      else expect.fail(error._tag)
    }))

  it.scoped("429 insufficient_quota → QuotaExceededError", () =>
    Effect.gen(function* () {
      const error = yield* chatFails({ _tag: "RateLimit", insufficientQuota: true, retryAfterSeconds: 1 })
      expect(error._tag).toBe("QuotaExceededError")
      expect(error.retryable).toBe(false)
    }))

  it.scoped("context_length_exceeded → ContextLengthError; 400/404/422 → InvalidRequestError", () =>
    Effect.gen(function* () {
      const context = yield* chatFails({
        _tag: "Status",
        status: 400,
        body: openAiError("This model's maximum context length is 8192 tokens.", "invalid_request_error", "context_length_exceeded")
      })
      expect(context._tag).toBe("ContextLengthError")
      for (const status of [400, 404, 422]) {
        const error = yield* chatFails({ _tag: "Status", status })
        expect(error._tag).toBe("InvalidRequestError")
        expect(error.message).toContain(`fake ${status}`)
      }
    }))

  it.scoped("500 and 503 → ServerError with the status", () =>
    Effect.gen(function* () {
      for (const status of [500, 503]) {
        const error = yield* chatFails({ _tag: "Status", status })
        expect(error._tag).toBe("ServerError")
        if (error._tag === "ServerError") expect(error.status).toBe(status)
        expect(error.retryable).toBe(true)
      }
    }))

  it.scoped("a reset connection and a refused connection → NetworkError", () =>
    Effect.gen(function* () {
      const reset = yield* chatFails({ _tag: "Reset" })
      expect(reset._tag).toBe("NetworkError")
      expect(reset.retryable).toBe(true)
      const refused = yield* Effect.flip(LanguageModel.chat(request).pipe(Effect.provide(stack("http://127.0.0.1:1/v1"))))
      expect(refused._tag).toBe("NetworkError")
      expect(refused.message).toContain("connection failed")
    }))

  it.scoped("an undecodable 200 body → MalformedResponseError with a short excerpt", () =>
    Effect.gen(function* () {
      const error = yield* chatFails({ _tag: "MalformedJson" })
      expect(error._tag).toBe("MalformedResponseError")
      if (error._tag !== "MalformedResponseError") return
      expect(error.excerpt).toContain(`"object":"chat.completion"`)
      expect(error.excerpt.length).toBeLessThanOrEqual(201)
      const shape = yield* chatFails({ _tag: "Raw", body: JSON.stringify({ id: "x", choices: [] }), contentType: "application/json" })
      expect(shape._tag).toBe("MalformedResponseError")
      expect(shape.message).toContain("choices")
    }))
})

describe("no key in any error", () => {
  const key = "sk-LEAKCHECK-7f3a91c2e8d4b605"
  const echo = (status: number) =>
    ({
      _tag: "Status",
      status,
      // some compatible servers quote the credential they rejected
      body: openAiError(`Invalid Authorization header: Bearer ${key}`, "invalid_request_error", "invalid_api_key")
    }) as const

  const everyText = (error: LlmError.LlmError, cause: Cause.Cause<unknown>) =>
    [JSON.stringify(error), String(error), error.message, error.stack ?? "", Cause.pretty(cause)].join("\n")

  it.scoped("errors from every fault, including bodies that echo the key", () =>
    Effect.gen(function* () {
      const fake = yield* fakeProvider()
      const layer = stack(fake.baseUrl, { keys: [key] })
      const faults: ReadonlyArray<Testing.Fault> = [
        echo(401),
        echo(400),
        echo(500),
        { _tag: "RateLimit", retryAfterMs: 1 },
        { _tag: "RateLimit", insufficientQuota: true },
        { _tag: "Status", status: 503 },
        { _tag: "Reset" },
        { _tag: "MalformedJson" },
        { _tag: "Raw", body: `not json, but ${key}`, contentType: "application/json" }
      ]
      const seen: Array<string> = []
      for (const fault of faults) {
        yield* fake.inject(fault)
        const exit = yield* Effect.exit(LanguageModel.chat(request).pipe(Effect.provide(layer)))
        expect(Exit.isFailure(exit)).toBe(true)
        if (Exit.isFailure(exit)) {
          const error = Cause.failureOption(exit.cause)
          expect(error._tag).toBe("Some")
          if (error._tag === "Some") seen.push(everyText(error.value, exit.cause))
        }
      }
      // streams: an error event that quotes the key, and a cut stream
      const streamFaults: ReadonlyArray<Testing.Fault> = [
        { _tag: "Raw", body: `data: {"error":{"message":"bad key ${key}","type":"invalid_request_error"}}\n\n` },
        { _tag: "Raw", body: `event: error\ndata: bad key ${key}\n\n` },
        { _tag: "CutStream", afterChunks: 3 },
        echo(401)
      ]
      for (const fault of streamFaults) {
        yield* fake.inject(fault)
        const exit = yield* Effect.exit(LanguageModel.collect(LanguageModel.stream(request)).pipe(Effect.provide(layer)))
        expect(Exit.isFailure(exit)).toBe(true)
        if (Exit.isFailure(exit)) {
          const error = Cause.failureOption(exit.cause)
          if (error._tag === "Some") seen.push(everyText(error.value as LlmError.LlmError, exit.cause))
          else expect.fail(Cause.pretty(exit.cause))
        }
      }
      expect(seen).toHaveLength(faults.length + streamFaults.length)
      for (const text of seen) {
        expect(text).not.toContain(key)
        expect(text).not.toContain("LEAKCHECK")
      }
      // the echoes did reach the error, masked: the test would see a leak
      expect(seen[0]).toContain("Bearer [redacted]")
      expect(seen.some((t) => t.includes("bad key [redacted]"))).toBe(true)
      // and the key did go out on the wire, so the check above is not vacuous
      const requests = yield* fake.requests
      expect(requests.every((r) => r.headers.authorization === `Bearer ${key}`)).toBe(true)
    }))
})
