/** The Chat Completions presets (src/internal/providers/openaiChat/presets.ts), read from the provider table. */
import { describe, expect, it } from "@effect/vitest"
import { chatPresets } from "../../../../src/internal/providers/openaiChat/presets.js"
import * as registry from "../../../../src/internal/providers/registry.js"

describe("Chat Completions presets", () => {
  it("the Chat Completions presets are the rows that speak it", () => {
    const speaking = Object.entries(registry.providers).filter(([, row]) => row.api === "chat" || "chatBaseUrl" in row).map(([name]) => name)
    expect(Object.keys(chatPresets()).sort()).toEqual(speaking.sort())
  })

  it("a row's own Chat Completions settings, else the defaults", () => {
    const presets = chatPresets()
    expect(presets.openai).toEqual({ provider: "openai", baseUrl: "https://api.openai.com/v1", envVar: "OPENAI_API_KEY", maxTokensField: "max_completion_tokens" })
    expect(presets.deepseek.maxTokensField).toBe("max_tokens")
    expect(presets.ollama).toMatchObject({ baseUrl: "http://localhost:11434/v1", maxTokensField: "max_tokens", keyOptional: true })
  })
})
