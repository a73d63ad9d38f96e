/**
 * Every Chat Completions body that any test sends to a FakeProvider must validate against
 * `CreateChatCompletionRequest` of OpenAI's OpenAPI document — not only in the suites that
 * check it explicitly. A body that does not fails the test that sent it.
 */
import { afterEach } from "vitest"
import type { RecordedRequest } from "../../src/Testing.js"
import { assertValid } from "../support/openapi.js"

const violations: Array<string> = []

;(globalThis as { [key: symbol]: unknown })[Symbol.for("effect-llm/Testing/onFakeRequest")] = (request: RecordedRequest) => {
  if (request.method !== "POST" || !request.path.split("?")[0]!.endsWith("/chat/completions")) return
  if (typeof request.body !== "object" || request.body === null) return
  try {
    assertValid("CreateChatCompletionRequest", request.body)
  } catch (error) {
    violations.push((error as Error).message)
  }
}

afterEach(() => {
  if (violations.length > 0) {
    const found = violations.splice(0)
    throw new Error(`${found.length} Chat Completions request(s) did not match the OpenAPI schema:\n${found[0]}`)
  }
})
