/** Anthropic's error bodies (src/internal/providers/anthropic/error.ts), through the request path's HTTP mapping. */
import { describe, expect, it } from "@effect/vitest"
import { readAnthropicError, readError } from "../../../../src/internal/providers/anthropic/error.js"
import { embeddedError, fromResponse, streamErrorOf } from "../../../../src/internal/request/errors.js"

const body = (type: string, message: string, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ type: "error", error: { type, message, ...extra }, request_id: "req_1" })

const map = (status: number, text: string) => fromResponse({ provider: "anthropic", model: "claude", status, headers: {}, body: text, now: 0 }, readError)

const head = { provider: "anthropic", model: "claude", headers: {}, now: 0 }

describe("Anthropic error bodies", () => {
  it("its type and message in the error's message; the status picks the class", () => {
    const overloaded = map(529, body("overloaded_error", "Overloaded"))
    expect(overloaded).toMatchObject({ _tag: "ServerError", status: 529, retryable: true, message: "anthropic 529 overloaded_error: Overloaded" })
    expect(map(429, body("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit"))._tag).toBe("RateLimitError")
    expect(map(401, body("authentication_error", "invalid x-api-key"))._tag).toBe("AuthenticationError")
    expect(map(404, body("not_found_error", "model: claude-9"))._tag).toBe("InvalidRequestError")
  })

  it("says more than the status: a prompt too long, a billing error, a spend limit", () => {
    expect(map(400, body("invalid_request_error", "prompt is too long: 210000 tokens > 200000 maximum"))._tag).toBe("ContextLengthError")
    expect(map(400, body("billing_error", "Your credit balance is too low to access the Anthropic API."))._tag).toBe("QuotaExceededError")
    // a monthly spend limit is a 429 that no wait lifts
    const spent = map(429, body("rate_limit_error", "You have reached your specified API usage limits.", { details: { error_code: "enforced_spend_limit_reached" } }))
    expect(spent).toMatchObject({ _tag: "QuotaExceededError", retryable: false })
  })

  it("a 200 carrying its error envelope stands for the status its type documents", () => {
    const cases: ReadonlyArray<readonly [string, string]> = [
      ["invalid_request_error", "InvalidRequestError"],
      ["authentication_error", "AuthenticationError"],
      ["permission_error", "PermissionError"],
      ["not_found_error", "InvalidRequestError"],
      ["request_too_large", "InvalidRequestError"],
      ["rate_limit_error", "RateLimitError"],
      ["api_error", "ServerError"],
      ["overloaded_error", "ServerError"]
    ]
    for (const [type, tag] of cases) expect(embeddedError(head, body(type, "x"), readError)?._tag, type).toBe(tag)
    expect(embeddedError(head, body("overloaded_error", "Overloaded"), readError)).toMatchObject({ status: 529 })
    expect(embeddedError(head, JSON.stringify({ id: "msg_1", type: "message", content: [] }), readError)).toBeUndefined()
  })

  it("a stream's error event: retryable when overloaded, not when the request was bad", () => {
    const overloaded = streamErrorOf("anthropic", "claude", readAnthropicError(JSON.parse(body("overloaded_error", "Overloaded")))!, "", false)
    expect(overloaded).toMatchObject({ retryable: true, message: "anthropic stream error overloaded_error: Overloaded" })
    const invalid = streamErrorOf("anthropic", "claude", readAnthropicError(JSON.parse(body("invalid_request_error", "bad")))!, "", false)
    expect(invalid.retryable).toBe(false)
  })
})
