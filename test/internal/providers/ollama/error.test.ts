/** Ollama's bare error body (src/internal/providers/ollama/error.ts), through the request path's HTTP mapping. */
import { describe, expect, it } from "@effect/vitest"
import { readError, readOllamaError } from "../../../../src/internal/providers/ollama/error.js"
import { embeddedError, fromResponse } from "../../../../src/internal/request/errors.js"

const head = { provider: "ollama", model: "llama", headers: {}, now: 0 }

describe("Ollama error bodies", () => {
  it("its words in the error's message; the status picks the class", () => {
    const error = fromResponse({ ...head, status: 404, body: JSON.stringify({ error: "model 'llama9' not found" }) }, readError)
    expect(error).toMatchObject({ _tag: "InvalidRequestError", message: "ollama 404: model 'llama9' not found" })
  })

  it("a 200 carrying one stands for what its words say, else a server error", () => {
    expect(embeddedError(head, JSON.stringify({ error: "model 'nope' not found" }), readError)).toMatchObject({ _tag: "InvalidRequestError", status: 404 })
    expect(embeddedError(head, JSON.stringify({ error: "unexpected EOF" }), readError)).toMatchObject({ _tag: "ServerError", status: 500 })
    expect(embeddedError(head, JSON.stringify({ model: "llama", message: { role: "assistant", content: "hi" }, done: true }), readError)).toBeUndefined()
  })

  it("reads nothing into an empty error or a reply", () => {
    expect(readOllamaError({ error: "" })).toBeUndefined()
    expect(readOllamaError({ model: "m", done: false })).toBeUndefined()
  })
})
