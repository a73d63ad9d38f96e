/**
 * The provider table is the one place a provider is named: every API it lists has a spec and
 * fake routes that serve that spec's URLs, and the lookups read the rows as written.
 */
import { describe, expect, it } from "@effect/vitest"
import { Redacted } from "effect"
import { Message } from "../../../src/index.js"
import * as registry from "../../../src/internal/providers/registry.js"
import { routes } from "../../../src/internal/testing/routes.js"

describe("provider registry", () => {
  it("every API's fake routes serve the URLs its spec calls, chat and stream", () => {
    for (const api of registry.apiNames) {
      const spec = registry.apis[api].spec({ baseUrl: registry.apis[api].baseUrl })
      for (const stream of [false, true]) {
        const path = new URL(spec.url("m", stream)).pathname
        const request = { index: 0, method: "POST", path, headers: {}, body: { stream } }
        expect(routes.filter((route) => route.matches(path, request)).length, `${api} (stream: ${stream}) at ${path}`).toBe(1)
      }
    }
  })

  it("names providers case-insensitively and by alias; unknown names get their API from the URL", () => {
    expect(registry.lookup("Anthropic")?.name).toBe("anthropic")
    expect(registry.lookup("claude")?.name).toBe("anthropic")
    expect(registry.lookup("google")?.name).toBe("gemini")
    expect(registry.lookup("nobody")).toBeUndefined()
    expect(registry.inferApi("ollama", undefined)).toBe("ollama")
    expect(registry.inferApi("ollama", "http://box:11434/v1")).toBe("chat")
    expect(registry.inferApi("mine", "https://x.anthropic.example")).toBe("anthropic")
    expect(registry.inferApi("mine", "http://box:11434")).toBe("ollama")
    expect(registry.inferApi("mine", "https://x.example/v1")).toBe("chat")
    expect(registry.inferApi("mine", undefined)).toBeUndefined()
  })

  it("base URLs: the row's, else its Chat Completions URL for chat, else the API's", () => {
    expect(registry.defaultBaseUrl("deepseek", "chat")).toBe("https://api.deepseek.com/v1")
    expect(registry.defaultBaseUrl("openai", "chat")).toBe("https://api.openai.com/v1")
    expect(registry.defaultBaseUrl("openai", "responses")).toBe("https://api.openai.com/v1")
    expect(registry.defaultBaseUrl("ollama", "ollama")).toBe("http://localhost:11434")
    expect(registry.defaultBaseUrl("ollama", "chat")).toBe("http://localhost:11434/v1")
    expect(registry.defaultBaseUrl("claude", "anthropic")).toBe("https://api.anthropic.com")
  })

  it("a spec gets its row's settings for its API, under the configured ones", () => {
    const request = Message.request("hi", { maxTokens: 5 })
    const fieldOf = (spec: ReturnType<typeof registry.specOf>) => Object.keys(spec.body(request, "m", false) as object).find((key) => key.startsWith("max_"))
    expect(fieldOf(registry.specOf("openai", "chat", undefined))).toBe("max_completion_tokens")
    expect(fieldOf(registry.specOf("openai", "chat", undefined, { maxTokensField: "max_tokens" }))).toBe("max_tokens")
    expect(fieldOf(registry.specOf("deepseek", "chat", undefined))).toBe("max_tokens")
    // Ollama's own row says nothing of Chat Completions: its /v1 takes the default
    expect(fieldOf(registry.specOf("ollama", "chat", "http://localhost:11434/v1"))).toBe("max_tokens")
    const key = Redacted.make("my-id.my-secret")
    expect(registry.specOf("zhipu", "chat", undefined).auth(key)).toEqual({ authorization: "Bearer my-id.my-secret" })
    const signed = registry.specOf("zhipu", "chat", undefined, { auth: "zhipu" }).auth(key).authorization!
    expect(signed).toMatch(/^Bearer [\w-]+\.[\w-]+\.[\w-]+$/)
    expect(signed).not.toContain("my-secret")
  })
})
