/**
 * OpenAI's error bodies (src/internal/providers/openaiChat/error.ts), read for Chat
 * Completions and every compatible server, through the request path's HTTP mapping.
 */
import { describe, expect, it } from "@effect/vitest"
import { readError, readOpenAiError } from "../../../../src/internal/providers/openaiChat/error.js"
import { embeddedError, fromResponse } from "../../../../src/internal/request/errors.js"
import type { LlmError } from "../../../../src/index.js"
import { hasFixtures, readFixture } from "../../../support/fixtures.js"

const openAiError = (message: string, type: string, code: string | null) => JSON.stringify({ error: { message, type, param: null, code } })

const map = (status: number, body: string, headers: Record<string, string> = {}, now = 0) =>
  fromResponse({ provider: "openai", model: "gpt-x", status, headers, body, now }, readError)

const head = { provider: "openai", model: "gpt-x", headers: {}, now: 0 }

describe("OpenAI error bodies", () => {
  it("maps statuses to tags", () => {
    const cases: ReadonlyArray<readonly [number, string, LlmError.LlmError["_tag"], boolean]> = [
      [401, openAiError("Incorrect API key provided", "invalid_request_error", "invalid_api_key"), "AuthenticationError", false],
      [403, openAiError("Country not supported", "invalid_request_error", "unsupported_country_region_territory"), "PermissionError", false],
      [429, openAiError("Rate limit reached", "requests", "rate_limit_exceeded"), "RateLimitError", true],
      [429, openAiError("You exceeded your current quota", "insufficient_quota", "insufficient_quota"), "QuotaExceededError", false],
      [400, openAiError("This model's maximum context length is 128000 tokens", "invalid_request_error", "context_length_exceeded"), "ContextLengthError", false],
      [400, openAiError("Invalid value for 'temperature'", "invalid_request_error", "invalid_value"), "InvalidRequestError", false],
      [404, openAiError("The model `gpt-9` does not exist", "invalid_request_error", "model_not_found"), "InvalidRequestError", false],
      [422, openAiError("Unprocessable", "invalid_request_error", null), "InvalidRequestError", false],
      [500, openAiError("The server had an error", "server_error", null), "ServerError", true],
      [502, "<html>Bad gateway</html>", "ServerError", true],
      [503, openAiError("The engine is currently overloaded", "server_error", null), "ServerError", true]
    ]
    for (const [status, body, tag, retryable] of cases) {
      const error = map(status, body)
      expect({ status, tag: error._tag, retryable: error.retryable }).toEqual({ status, tag, retryable })
      expect(error.provider).toBe("openai")
      expect(error.model).toBe("gpt-x")
      expect("status" in error ? error.status : undefined).toBe(status)
    }
  })

  it("a context length by its message alone, a filtered prompt, a hard billing limit", () => {
    // vLLM and gateways relaying OpenAI say it in words, without the code
    expect(map(400, openAiError("This model's maximum context length is 4096 tokens. However, you requested 5000", "BadRequestError", null))._tag)
      .toBe("ContextLengthError")
    expect(map(400, openAiError("Your request was rejected as a result of our safety system.", "invalid_request_error", "content_policy_violation"))._tag)
      .toBe("ContentFilterError")
    // Azure OpenAI's
    expect(map(400, openAiError("The response was filtered", "invalid_request_error", "content_filter"))._tag).toBe("ContentFilterError")
    expect(map(400, openAiError("Billing hard limit has been reached", "invalid_request_error", "billing_hard_limit_reached"))._tag)
      .toBe("QuotaExceededError")
  })

  it("a 200 carrying an error object: a gateway's numeric code, OpenAI's codes, else the words", () => {
    expect(embeddedError(head, JSON.stringify({ error: { code: 429, message: "Rate limit exceeded: free-models-per-min" } }), readError))
      .toMatchObject({ _tag: "RateLimitError", status: 429 })
    expect(embeddedError(head, openAiError("Incorrect API key provided", "invalid_request_error", "invalid_api_key"), readError)?._tag)
      .toBe("AuthenticationError")
    expect(embeddedError(head, openAiError("You exceeded your current quota", "insufficient_quota", "insufficient_quota"), readError))
      .toMatchObject({ _tag: "QuotaExceededError", status: 429 })
    expect(embeddedError(head, openAiError("The server had an error", "server_error", null), readError)?._tag).toBe("ServerError")
    expect(embeddedError(head, JSON.stringify({ id: "chatcmpl-1", object: "chat.completion", choices: [] }), readError)).toBeUndefined()
  })

  it("reads only error bodies: a reply, an array or a bare value is none", () => {
    expect(readOpenAiError({ id: "x", choices: [] })).toBeUndefined()
    expect(readOpenAiError([{ error: { message: "x" } }])).toBeUndefined()
    expect(readOpenAiError("error")).toBeUndefined()
    expect(readOpenAiError({ error: null })).toBeUndefined()
  })

})

describe.skipIf(!hasFixtures)(`OpenAI error bodies, recorded${hasFixtures ? "" : ": skipped, fixtures absent"}`, () => {
  it("the recorded quota error (openai-responses/openai-error.1.json)", () => {
    const error = map(429, readFixture("openai-responses/openai-error.1.json"))
    expect(error).toMatchObject({ _tag: "QuotaExceededError", status: 429, retryable: false })
    expect(error.message).toContain("openai 429 insufficient_quota: You exceeded your current quota")
  })

  it("the recorded legacy-parameter error (openai-chat/reasoning-model-legacy-parameter-error.json)", () => {
    const error = map(400, readFixture("openai-chat/reasoning-model-legacy-parameter-error.json"))
    expect(error).toMatchObject({ _tag: "InvalidRequestError", status: 400, retryable: false })
    expect(error.message).toContain("openai 400 invalid_request_error: Unsupported parameter: 'max_tokens'")
  })
})
