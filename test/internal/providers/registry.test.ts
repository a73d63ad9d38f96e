/**
 * The provider table is the one place a provider is named: every API it lists has a spec and
 * fake routes that serve that spec's URLs, and the lookups read the rows as written.
 */
import { describe, expect, it } from "@effect/vitest"
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

  it("the Chat Completions presets are the rows that speak it", () => {
    const speaking = Object.entries(registry.providers).filter(([, row]) => row.api === "chat" || "chatBaseUrl" in row).map(([name]) => name)
    expect(Object.keys(registry.chatPresets()).sort()).toEqual(speaking.sort())
  })
})
