/** Google's error bodies (src/internal/providers/gemini/error.ts), through the request path's HTTP mapping. */
import { describe, expect, it } from "@effect/vitest"
import { Duration } from "effect"
import { readError, readGeminiError } from "../../../../src/internal/providers/gemini/error.js"
import { embeddedError, fromResponse } from "../../../../src/internal/request/errors.js"
import { hasFixtures, readFixture } from "../../../support/fixtures.js"

const body = (code: number | undefined, status: string, message: string, details: ReadonlyArray<unknown> = []) =>
  JSON.stringify({ error: { ...(code === undefined ? {} : { code }), message, status, details } })

const map = (status: number, text: string, headers: Record<string, string> = {}) =>
  fromResponse({ provider: "gemini", model: "gemini-x", status, headers, body: text, now: 0 }, readError)

const head = { provider: "gemini", model: "gemini-x", headers: {}, now: 0 }

const retryInfo = (delay: string) => ({ "@type": "type.googleapis.com/google.rpc.RetryInfo", retryDelay: delay })

describe("Gemini error bodies", () => {
  it("the RPC status in the message; RetryInfo's delay when no header gives one", () => {
    const limited = map(429, body(429, "RESOURCE_EXHAUSTED", "slow down", [retryInfo("13s")]))
    expect(limited).toMatchObject({ _tag: "RateLimitError", message: "gemini 429 RESOURCE_EXHAUSTED: slow down" })
    expect(limited._tag === "RateLimitError" && Duration.toMillis(limited.retryAfter!)).toBe(13_000)
    const header = map(429, body(429, "RESOURCE_EXHAUSTED", "slow down", [retryInfo("13s")]), { "retry-after": "2" })
    expect(header._tag === "RateLimitError" && Duration.toMillis(header.retryAfter!)).toBe(2000)
    // a delay of nothing is no delay
    const zero = map(429, body(429, "RESOURCE_EXHAUSTED", "slow down", [retryInfo("0s")]))
    expect(zero._tag === "RateLimitError" && zero.retryAfter).toBeUndefined()
    expect(map(503, body(503, "UNAVAILABLE", "The model is overloaded."))).toMatchObject({ _tag: "ServerError", retryable: true })
  })

  it("an input over the model's window is a ContextLengthError", () => {
    const error = map(400, body(400, "INVALID_ARGUMENT", "The input token count (3475108) exceeds the maximum number of tokens allowed (1048576)."))
    expect(error._tag).toBe("ContextLengthError")
    expect(map(400, body(400, "INVALID_ARGUMENT", "Invalid JSON payload received."))._tag).toBe("InvalidRequestError")
  })

  it("a body without its own status stands for its numeric code, else its RPC status", () => {
    expect(embeddedError(head, body(429, "RESOURCE_EXHAUSTED", "slow down"), readError)?._tag).toBe("RateLimitError")
    expect(embeddedError(head, body(undefined, "PERMISSION_DENIED", "no"), readError)?._tag).toBe("PermissionError")
    expect(embeddedError(head, body(undefined, "UNAUTHENTICATED", "no"), readError)?._tag).toBe("AuthenticationError")
    expect(embeddedError(head, body(undefined, "DEADLINE_EXCEEDED", "late"), readError)).toMatchObject({ _tag: "ServerError", status: 504 })
    expect(embeddedError(head, JSON.stringify({ candidates: [] }), readError)).toBeUndefined()
  })

  it("an error a stream without alt=sse wraps in an array", () => {
    expect(readGeminiError(JSON.parse(`[${body(429, "RESOURCE_EXHAUSTED", "slow down")}]`))).toMatchObject({ status: 429, type: "RESOURCE_EXHAUSTED" })
  })
})

describe.skipIf(!hasFixtures)(`Gemini error bodies, recorded${hasFixtures ? "" : ": skipped, fixtures absent"}`, () => {
  it("the recorded 429 with RetryInfo (gemini/google-429-retry-info.json)", () => {
    const error = map(429, readFixture("gemini/google-429-retry-info.json"))
    expect(error).toMatchObject({ _tag: "RateLimitError", retryable: true })
    expect(error._tag === "RateLimitError" && Duration.toMillis(error.retryAfter!)).toBe(34_400)
    expect(error.message).toContain("RESOURCE_EXHAUSTED")
  })
})
