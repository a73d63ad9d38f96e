import { NodeFileSystem } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Exit, Layer, Option } from "effect"
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { LanguageModel, Message, ProviderConfig, Testing, Transport } from "../src/index.js"

const writeTemp = (content: string) => {
  const dir = mkdtempSync(join(tmpdir(), "provider-json-"))
  const path = join(dir, "provider.json")
  writeFileSync(path, content)
  return path
}

const withEnv = (env: Record<string, string>) => Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))

const failureOf = <A>(exit: Exit.Exit<A, ProviderConfig.ProviderConfigError>) => {
  if (Exit.isSuccess(exit)) throw new Error("expected a failure")
  const error = exit.cause._tag === "Fail" ? exit.cause.error : undefined
  if (error === undefined) throw new Error(`expected a typed failure, got ${exit.cause._tag}`)
  return error
}

describe("ProviderConfig", () => {
  it.effect("decodes the common layout and shares one pool per provider", () =>
    Effect.gen(function* () {
      const registry = yield* ProviderConfig.fromJson({
        openai: [
          { model_name: "gpt-4o", api_keys: ["k1", "k2"], base_url: "https://api.openai.com/v1", max_retries: 5, retry_delay: 1.0, rate_limit_capacity: 20, rate_limit_refill_rate: 3.0, context_window: 128000 },
          { model_name: "gpt-4o-mini", api_keys: ["k3"], unknown_field: true }
        ],
        anthropic: [{ model_name: "claude-3-5-sonnet-latest", api_keys: ["a1"] }]
      })
      expect(registry.providers).toEqual(["openai", "anthropic"])
      const gpt4o = Option.getOrThrow(registry.models.get("openai", "gpt-4o"))
      expect(gpt4o).toMatchObject({ api: "chat", maxRetries: 5, retryDelaySeconds: 1, contextWindow: 128000, rateLimit: { capacity: 20, refillPerSecond: 3 } })
      expect(Option.getOrThrow(registry.models.get("anthropic", "claude-3-5-sonnet-latest")).api).toBe("anthropic")
      const pool = Option.getOrThrow(registry.keyPool("openai"))
      const status = yield* pool.status
      // keys of every model of the provider land in the one pool
      expect(status.map((s) => s.keyId)).toHaveLength(3)
      expect(JSON.stringify(status)).not.toContain("k1")
    }))

  it.effect("a bad field names its JSON path", () =>
    Effect.gen(function* () {
      const exit = yield* Effect.exit(ProviderConfig.fromJson({ openai: [{ model_name: "gpt-4o", api_keys: ["k"], max_retries: -1 }] }, "provider.json"))
      const error = failureOf(exit)
      expect(error._tag).toBe("ProviderConfigError")
      expect(error.jsonPath).toBe("$.openai[0].max_retries")
      expect(error.path).toBe("provider.json")
      // one clean sentence: no repeated path, no noise from the optional field's undefined branch
      expect(error.message).toBe("provider.json at $.openai[0].max_retries: Expected a non-negative number, actual -1")
    }))

  it.effect("a file that is not an object of arrays fails at the root path", () =>
    Effect.gen(function* () {
      const error = failureOf(yield* Effect.exit(ProviderConfig.fromJson({ openai: { model_name: "x" } })))
      expect(error.jsonPath).toBe("$.openai")
    }))

  it.effect("an unknown provider without api or base_url is a typed error", () =>
    Effect.gen(function* () {
      const error = failureOf(yield* Effect.exit(ProviderConfig.fromJson({ mystery: [{ model_name: "m", api_keys: ["k"] }] })))
      expect(error.jsonPath).toBe("$.mystery[0]")
      expect(error.message).toContain('unknown provider "mystery"')
    }))

  it.effect("an unknown provider with a base_url is treated as OpenAI-compatible", () =>
    Effect.gen(function* () {
      const registry = yield* ProviderConfig.fromJson({ mystery: [{ model_name: "m", api_keys: ["k"], base_url: "https://llm.example/v1" }] })
      expect(Option.getOrThrow(registry.models.get("mystery", "m")).api).toBe("chat")
    }))

  it.effect("a missing key is a typed error naming the env var", () =>
    Effect.gen(function* () {
      const error = failureOf(yield* Effect.exit(ProviderConfig.fromJson({ groq: [{ model_name: "llama-3.1-8b-instant" }] }).pipe(withEnv({}))))
      expect(error.jsonPath).toBe("$.groq[0].api_keys")
      expect(error.message).toContain("GROQ_API_KEY")
    }))

  it.effect("keys come from env vars, comma-separated lists included", () =>
    Effect.gen(function* () {
      const registry = yield* ProviderConfig.fromJson({ openrouter: [{ model_name: "openai/gpt-4o" }] }).pipe(
        withEnv({ OPENROUTER_API_KEYS: "r1, r2 ,r3" })
      )
      const status = yield* Option.getOrThrow(registry.keyPool("openrouter")).status
      expect(status).toHaveLength(3)
      const single = yield* ProviderConfig.fromJson({ deepseek: [{ model_name: "deepseek-chat" }] }).pipe(withEnv({ DEEPSEEK_API_KEY: "d1" }))
      expect(yield* Option.getOrThrow(single.keyPool("deepseek")).status).toHaveLength(1)
    }))

  it.effect("local Ollama needs no key", () =>
    Effect.gen(function* () {
      const registry = yield* ProviderConfig.fromJson({ ollama: [{ model_name: "llama3.2" }] }).pipe(withEnv({}))
      expect(Option.getOrThrow(registry.models.get("ollama", "llama3.2"))).toMatchObject({ api: "ollama", baseUrl: "http://localhost:11434" })
    }))

  it("detects the provider from the model name", () => {
    expect(ProviderConfig.detectProvider("gpt-4o-mini")).toEqual(Option.some("openai"))
    expect(ProviderConfig.detectProvider("o1-preview")).toEqual(Option.some("openai"))
    expect(ProviderConfig.detectProvider("o3-mini")).toEqual(Option.some("openai"))
    expect(ProviderConfig.detectProvider("claude-3-5-sonnet-latest")).toEqual(Option.some("anthropic"))
    expect(ProviderConfig.detectProvider("gemini-2.0-flash")).toEqual(Option.some("gemini"))
    expect(ProviderConfig.detectProvider("meta-llama/llama-3-70b")).toEqual(Option.some("openrouter"))
    expect(ProviderConfig.detectProvider("deepseek-chat")).toEqual(Option.some("deepseek"))
    expect(ProviderConfig.detectProvider("my-local-model")).toEqual(Option.none())
  })

  it.effect("forModel fails clearly for an undetectable model", () =>
    Effect.gen(function* () {
      const exit = yield* Effect.exit(
        Layer.build(ProviderConfig.forModel("my-local-model")).pipe(Effect.scoped, Effect.provide(Transport.layerUndici))
      )
      expect(Exit.isFailure(exit)).toBe(true)
      expect(JSON.stringify(exit)).toContain("cannot tell the provider")
    }))

  it.scoped("load reads a file and the registry's stack talks to the provider", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({ reply: { text: "configured reply" } })
      const path = writeTemp(
        JSON.stringify({ openai: [{ model_name: "gpt-4o", api_keys: ["sk-config-key-1"], base_url: fake.baseUrl, rate_limit_capacity: 5, rate_limit_refill_rate: 5 }] })
      )
      const registry = yield* ProviderConfig.load(path)
      const response = yield* LanguageModel.chat(Message.request("hi")).pipe(
        Effect.provide(registry.models.layer("openai", "gpt-4o").pipe(Layer.provide(Transport.layerUndici)))
      )
      expect(response.text).toBe("configured reply")
      const requests = yield* fake.requests
      expect(requests[0]?.headers.authorization).toBe("Bearer sk-config-key-1")
      expect(yield* Option.getOrThrow(registry.keyPool("openai")).status).toMatchObject([{ successes: 1, inFlight: 0 }])
    }).pipe(Effect.provide(NodeFileSystem.layer)))

  it.effect("load names the file when it is missing or not JSON", () =>
    Effect.gen(function* () {
      const missing = failureOf(yield* Effect.exit(ProviderConfig.load("/nonexistent/provider.json")))
      expect(missing.path).toBe("/nonexistent/provider.json")
      expect(missing.message).toContain("cannot read")
      const broken = failureOf(yield* Effect.exit(ProviderConfig.load(writeTemp("{ not json"))))
      expect(broken.message).toContain("not valid JSON")
    }).pipe(Effect.provide(NodeFileSystem.layer)))

  it.effect("an unknown model asked of the registry fails as a typed layer error", () =>
    Effect.gen(function* () {
      const registry = yield* ProviderConfig.fromJson({ openai: [{ model_name: "gpt-4o", api_keys: ["k"] }] })
      const exit = yield* Effect.exit(
        LanguageModel.chat(Message.request("hi")).pipe(
          Effect.provide(registry.models.layer("openai", "gpt-5").pipe(Layer.provide(Transport.layerUndici)))
        )
      )
      expect(JSON.stringify(exit)).toContain('unknown model \\"gpt-5\\"')
    }))

  it.scoped("every api value builds its adapter, which talks its own wire format", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({ reply: { text: "from the fake" } })
      const cases = [
        { provider: "openai", api: "chat", base: fake.baseUrl, path: "/v1/chat/completions" },
        { provider: "openai-responses", api: "responses", base: fake.baseUrl, path: "/v1/responses" },
        { provider: "anthropic", api: "anthropic", base: fake.url, path: "/v1/messages" },
        { provider: "gemini", api: "gemini", base: `${fake.url}/v1beta`, path: "/v1beta/models/m-gemini:generateContent" },
        { provider: "ollama", api: "ollama", base: fake.url, path: "/api/chat" }
      ] as const
      for (const c of cases) {
        const model = c.api === "gemini" ? "m-gemini" : `m-${c.api}`
        const registry = yield* ProviderConfig.fromJson({ [c.provider]: [{ model_name: model, api: c.api, api_keys: ["k-cfg"], base_url: c.base }] })
        yield* fake.clear
        const response = yield* LanguageModel.chat(Message.request("hi")).pipe(
          Effect.provide(registry.models.layer(c.provider, model).pipe(Layer.provide(Transport.layerUndici)))
        )
        expect(response.text).toBe("from the fake")
        expect(response.provider).toBe(c.provider)
        const [request] = yield* fake.requests
        expect(request?.path.split("?")[0]).toBe(c.path)
      }
    }))

  it.scopedLive("max_retries and retry_delay feed the stack's retry", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({ reply: { text: "after a retry" } })
      const registry = yield* ProviderConfig.fromJson({
        openai: [
          { model_name: "retried", api_keys: ["k1"], base_url: fake.baseUrl, max_retries: 2, retry_delay: 0.001 },
          { model_name: "unretried", api_keys: ["k1"], base_url: fake.baseUrl, max_retries: 0 }
        ]
      })
      const chat = (model: string) =>
        LanguageModel.chat(Message.request("hi")).pipe(
          Effect.provide(registry.models.layer("openai", model).pipe(Layer.provide(Transport.layerUndici))),
          Effect.either
        )
      yield* fake.inject({ _tag: "Status", status: 503 }, { _tag: "Status", status: 500 })
      const retried = yield* chat("retried")
      expect(retried._tag === "Right" && retried.right.text).toBe("after a retry")
      expect((yield* fake.requests).length).toBe(3)
      yield* fake.inject({ _tag: "Status", status: 503 })
      const unretried = yield* chat("unretried")
      expect(unretried._tag === "Left" && unretried.left._tag).toBe("ServerError")
      expect((yield* fake.requests).length).toBe(4)
    }))
})
