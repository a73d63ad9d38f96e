/** The Responses API's errors (src/internal/providers/openaiResponses/error.ts): bodies, error events, failed responses. */
import { describe, expect, it } from "@effect/vitest"
import { readError, readResponsesError } from "../../../../src/internal/providers/openaiResponses/error.js"
import { fromResponse, streamErrorOf } from "../../../../src/internal/request/errors.js"
import { fixtureLines, hasFixtures } from "../../../support/fixtures.js"

const stream = (payload: unknown) => streamErrorOf("openai", "gpt-x", readResponsesError(payload)!, "", false)

describe("Responses errors", () => {
  it("the meaning is in code: it is the type shown, and it names the class", () => {
    const body = JSON.stringify({ error: { message: "slow down", type: "requests", param: null, code: "rate_limit_exceeded" } })
    const error = fromResponse({ provider: "openai", model: "gpt-x", status: 429, headers: {}, body, now: 0 }, readError)
    expect(error).toMatchObject({ _tag: "RateLimitError", message: "openai 429 rate_limit_exceeded: slow down" })
  })

  it("an error event, flat or nested, and a failed response's error", () => {
    expect(stream({ type: "error", code: "server_error", message: "boom", param: null })).toMatchObject({
      retryable: true,
      message: "openai stream error server_error: boom"
    })
    expect(stream({ type: "error", error: { type: "insufficient_quota", code: "insufficient_quota", message: "no credit" } }).retryable).toBe(false)
    expect(stream({ error: { code: "rate_limit_exceeded", message: "slow down" } })).toMatchObject({
      retryable: true,
      message: "openai stream error rate_limit_exceeded: slow down"
    })
    // an error event without a code shows no type rather than "error"
    expect(stream({ type: "error", message: "boom" }).message).toBe("openai stream error: boom")
  })
})

describe.skipIf(!hasFixtures)(`Responses errors, recorded${hasFixtures ? "" : ": skipped, fixtures absent"}`, () => {
  it("the recorded error event (openai-responses/openai-error.1.chunks.txt)", () => {
    const event = fixtureLines("openai-responses/openai-error.1.chunks.txt").map((line) => JSON.parse(line)).find((e) => e.type === "error")
    expect(stream(event)).toMatchObject({ retryable: false, message: expect.stringContaining("insufficient_quota: You exceeded your current quota") })
  })
})
