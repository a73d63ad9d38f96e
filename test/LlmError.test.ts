/**
 * Each error kind's classification lives beside the classes, in one table with a row per kind
 * (a kind without a row does not compile); these check that every consumer reads its column.
 */
import { describe, expect, it } from "@effect/vitest"
import { Duration, Schema } from "effect"
import { CircuitBreaker, Fallback, KeyPool, LlmError } from "../src/index.js"

const common = { provider: "p", model: "m", message: "boom" }
/** One instance of every kind, built from its schema's own fields. */
const instances: ReadonlyArray<LlmError.LlmError> = [
  new LlmError.AuthenticationError(common),
  new LlmError.PermissionError(common),
  new LlmError.QuotaExceededError(common),
  new LlmError.RateLimitError({ ...common, retryAfter: Duration.seconds(3) }),
  new LlmError.InvalidRequestError(common),
  new LlmError.InvalidRequestError({ ...common, retryable: true }),
  new LlmError.ContextLengthError(common),
  new LlmError.ContentFilterError(common),
  new LlmError.ServerError({ ...common, status: 503 }),
  new LlmError.TimeoutError({ ...common, phase: "request" }),
  new LlmError.NetworkError(common),
  new LlmError.StreamError({ ...common, partial: false }),
  new LlmError.StreamError({ ...common, partial: true, partialText: "he" }),
  new LlmError.MalformedResponseError({ ...common, excerpt: "{" }),
  new LlmError.ResponseTooLargeError({ ...common, part: "body", limit: 10 }),
  new LlmError.NoKeyAvailableError(common),
  new LlmError.RateLimitExceededError(common),
  new LlmError.BudgetExceededError(common),
  new LlmError.CircuitOpenError(common),
  new LlmError.AllModelsFailedError({ ...common, attempts: [] }),
  new LlmError.StoreUnavailableError({ ...common, store: "KeyPool", operation: "keypool take" }),
  new LlmError.StructuredOutputError({ ...common, text: "{}", issues: ["at name: is missing"], attempts: 2 })
]

describe("LlmError classification", () => {
  it("has a row for every kind, and the union decodes every kind", () => {
    const kinds = new Set(instances.map((e) => e._tag))
    expect([...kinds].sort()).toEqual(Object.keys(LlmError.classification).sort())
    for (const error of instances) {
      expect(LlmError.isLlmError(error)).toBe(true)
      expect(Schema.is(LlmError.LlmError)(error)).toBe(true)
    }
  })

  it("KeyPool reads the key column", () => {
    const expected = { rateLimited: "RateLimited", rejected: "Rejected", quotaExceeded: "QuotaExceeded", failure: "Failure", none: undefined }
    for (const error of instances) {
      expect(KeyPool.outcomeOf(error)?._tag, error._tag).toBe(expected[LlmError.classify(error).key])
    }
    expect(KeyPool.outcomeOf(instances[3]!)).toMatchObject({ _tag: "RateLimited", retryAfter: Duration.seconds(3) })
  })

  it("CircuitBreaker reads the breaker column", () => {
    for (const error of instances) expect(CircuitBreaker.defaultClassify(error), error._tag).toBe(LlmError.classify(error).breaker)
  })

  it("Fallback reads the fallback column, with the error's own flags where the row says so", () => {
    for (const error of instances) {
      const rule = LlmError.classify(error).fallback
      const expected = rule === "always" ? true : rule === "never" ? false : rule === "ifRetryable" ? error.retryable : !(error._tag === "StreamError" && error.partial)
      expect(Fallback.defaultWhen(error), `${error._tag} ${JSON.stringify(error)}`).toBe(expected)
    }
    // the rows that depend on the instance
    expect(Fallback.defaultWhen(new LlmError.InvalidRequestError(common))).toBe(false)
    expect(Fallback.defaultWhen(new LlmError.InvalidRequestError({ ...common, retryable: true }))).toBe(true)
    expect(Fallback.defaultWhen(new LlmError.StreamError({ ...common, partial: true }))).toBe(false)
    expect(Fallback.defaultWhen(new LlmError.StreamError({ ...common, partial: false }))).toBe(true)
  })

  it("only key-specific kinds are re-tried at once on another key", () => {
    const another = instances.filter((e) => LlmError.classify(e).anotherKey).map((e) => e._tag)
    expect(another.sort()).toEqual(["AuthenticationError", "PermissionError", "QuotaExceededError", "RateLimitError"])
  })
})
