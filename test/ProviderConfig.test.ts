import { NodeFileSystem } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Exit, Layer, Option } from "effect"
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { LanguageModel, Message, ProviderConfig, Transport } from "../src/index.js"
import * as Testing from "../src/Testing.js"

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

/** What building one model's stack fails with (keys are a model's own problem, found when it is asked for). */
const layerFailure = (registry: ProviderConfig.Registry, provider: string, model: string) =>
  Effect.map(Effect.exit(Layer.build(registry.models.layer(provider, model)).pipe(Effect.scoped, Effect.provide(Transport.layerUndici))), failureOf)

describe("ProviderConfig", () => {
  it.effect("decodes the common layout; models with the same keys share a pool", () =>
    Effect.gen(function* () {
      const registry = yield* ProviderConfig.fromJson({
        openai: [
          { model_name: "gpt-4o", api_keys: ["k1", "k2"], base_url: "https://api.openai.com/v1", max_retries: 5, retry_delay: 1.0, rate_limit_capacity: 20, rate_limit_refill_rate: 3.0, context_window: 128000 },
          { model_name: "gpt-4o-mini", api_keys: ["k1", "k2"] }
        ],
        anthropic: [{ model_name: "claude-3-5-sonnet-latest", api_keys: ["a1"] }]
      })
      expect(registry.providers).toEqual(["openai", "anthropic"])
      const gpt4o = Option.getOrThrow(registry.models.get("openai", "gpt-4o"))
      expect(gpt4o).toMatchObject({ api: "chat", maxRetries: 5, retryDelaySeconds: 1, contextWindow: 128000, rateLimit: { capacity: 20, refillPerSecond: 3 } })
      expect(Option.getOrThrow(registry.models.get("anthropic", "claude-3-5-sonnet-latest")).api).toBe("anthropic")
      const pool = Option.getOrThrow(registry.keyPool("openai"))
      // models with the same keys share one pool (and its load accounting)
      expect(Option.getOrThrow(registry.keyPool("openai", "gpt-4o-mini"))).toBe(pool)
      const status = yield* pool.status
      expect(status.map((s) => s.keyId)).toHaveLength(2)
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
      const registry = yield* ProviderConfig.fromJson({ groq: [{ model_name: "llama-3.1-8b-instant" }] }).pipe(withEnv({}))
      const error = yield* layerFailure(registry, "groq", "llama-3.1-8b-instant")
      expect(error.jsonPath).toBe("$.groq[0].api_keys")
      expect(error.message).toContain("GROQ_API_KEY")
      expect(registry.keyPool("groq")).toEqual(Option.none())
    }))

  it.effect("keys come from env vars, comma-separated lists included", () =>
    Effect.gen(function* () {
      const registry = yield* ProviderConfig.fromJson({ openrouter: [{ model_name: "openai/gpt-4o" }] }).pipe(
        withEnv({ OPENROUTER_API_KEY: "r1, r2 ,r3" })
      )
      const status = yield* Option.getOrThrow(registry.keyPool("openrouter")).status
      expect(status).toHaveLength(3)
      const single = yield* ProviderConfig.fromJson({ deepseek: [{ model_name: "deepseek-chat" }] }).pipe(withEnv({ DEEPSEEK_API_KEY: "d1" }))
      expect(yield* Option.getOrThrow(single.keyPool("deepseek")).status).toHaveLength(1)
    }))

  it.effect("a key variable set but empty is an error naming it, not a silent fallback", () =>
    Effect.gen(function* () {
      const registry = yield* ProviderConfig.fromJson({ groq: [{ model_name: "llama-3.1-8b-instant" }] }, "provider.json").pipe(withEnv({ GROQ_API_KEY: " , " }))
      const error = yield* layerFailure(registry, "groq", "llama-3.1-8b-instant")
      expect(error.jsonPath).toBe("$.groq[0].api_keys")
      expect(error.message).toContain("GROQ_API_KEY is set but empty")
      const direct = failureOf(yield* Effect.exit(ProviderConfig.envKeys("groq").pipe(withEnv({ GROQ_API_KEY: "" }))))
      expect(direct.message).toContain("GROQ_API_KEY is set but empty")
      expect(yield* ProviderConfig.envKeys("groq").pipe(withEnv({ GROQ_API_KEY: "g1, g2" }), Effect.map((keys) => keys.length))).toBe(2)
    }))

  it.effect("a local server of a known keyless provider (vLLM) needs no key wherever it runs", () =>
    Effect.gen(function* () {
      const registry = yield* ProviderConfig.fromJson({ vllm: [{ model_name: "qwen2.5-7b", base_url: "http://gpu-box:8000/v1" }] }).pipe(withEnv({}))
      const lease = yield* Effect.scoped(Option.getOrThrow(registry.keyPool("vllm")).acquire)
      expect(lease.key).toBeUndefined()
      expect(yield* ProviderConfig.envKeys("vllm").pipe(withEnv({}))).toEqual([])
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

  it.scoped("one entry without a usable key does not stop the others: it fails when asked for, naming its entry", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({ reply: { text: "served" } })
      // the README's example: a hosted provider with keys, and a vLLM server of a name of one's own on a remote host
      const json = {
        openai: [{ model_name: "gpt-4o-mini", api_keys: ["sk-1", "sk-2"], base_url: fake.baseUrl, max_retries: 5 }],
        "my-vllm": [{ model_name: "qwen2.5-7b", base_url: "http://gpu-box:8000/v1", api: "chat" }]
      }
      const registry = yield* ProviderConfig.fromJson(json, "provider.json").pipe(withEnv({}))
      expect(registry.entries.map((e) => `${e.provider}/${e.model}`)).toEqual(["openai/gpt-4o-mini", "my-vllm/qwen2.5-7b"])
      const reply = yield* LanguageModel.chat(Message.request("hi")).pipe(
        Effect.provide(registry.models.layer("openai", "gpt-4o-mini").pipe(Layer.provide(Transport.layerUndici)))
      )
      expect(reply.text).toBe("served")
      const error = yield* layerFailure(registry, "my-vllm", "qwen2.5-7b")
      expect(error.jsonPath).toBe("$.my-vllm[0].api_keys")
      expect(error.message).toContain("provider.json at $.my-vllm[0].api_keys")
      expect(error.message).toContain("MY_VLLM_API_KEY")
      // with its variable set, the same entry serves
      const keyed = yield* ProviderConfig.fromJson(json, "provider.json").pipe(withEnv({ MY_VLLM_API_KEY: "vk-1" }))
      expect(Option.isSome(keyed.keyPool("my-vllm", "qwen2.5-7b"))).toBe(true)
    }))

  it.effect("forModel without a key names the variable to set, not a file the user never wrote", () =>
    Effect.gen(function* () {
      const error = failureOf(yield* Effect.exit(
        Layer.build(ProviderConfig.forModel("gpt-4o-mini")).pipe(Effect.scoped, Effect.provide(Transport.layerUndici), withEnv({}))
      ))
      expect(error.message).toBe(
        `ProviderConfig.forModel("gpt-4o-mini"): no API key for openai: set OPENAI_API_KEY to an API key, or a comma-separated list of keys`
      )
      expect(error.jsonPath).toBeUndefined()
      expect(error.path).toBeUndefined()
    }))

  it.scoped("models.layer's maxRetries overrides the entry's: 0 sends one request", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({ respond: () => ({ _tag: "Status", status: 503 }) })
      const registry = yield* ProviderConfig.fromJson({ local: [{ model_name: "m", api: "chat", base_url: fake.baseUrl, max_retries: 3, retry_delay: 0.001 }] })
      yield* Effect.exit(LanguageModel.chat(Message.request("hi")).pipe(
        Effect.provide(registry.models.layer("local", "m", { maxRetries: 0 }).pipe(Layer.provide(Transport.layerUndici)))
      ))
      expect(yield* fake.requests).toHaveLength(1)
    }))

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

  it.scoped("\"auth\": \"zhipu\" signs the entry's keys into tokens the fake verifies; it is refused on another API", () =>
    Effect.gen(function* () {
      const key = "7e1d.zhipu-secret"
      const fake = yield* Testing.FakeProvider.make({ zhipuKeys: [key], reply: { text: "signed" } })
      const registry = yield* ProviderConfig.fromJson({ zhipu: [{ model_name: "glm-4-flash", api_keys: [key], base_url: fake.baseUrl, auth: "zhipu" }] })
      const response = yield* LanguageModel.chat(Message.request("hi")).pipe(
        Effect.provide(registry.models.layer("zhipu", "glm-4-flash").pipe(Layer.provide(Transport.layerUndici)))
      )
      expect(response.text).toBe("signed")
      expect(String((yield* fake.requests)[0]?.headers.authorization)).not.toContain("zhipu-secret")
      const error = failureOf(yield* Effect.exit(ProviderConfig.fromJson({ gemini: [{ model_name: "gemini-2.0-flash", api_keys: ["g"], auth: "zhipu" }] })))
      expect(error.jsonPath).toBe("$.gemini[0].auth")
    }))

  it.effect("load names the file when it is missing or not JSON", () =>
    Effect.gen(function* () {
      const missing = failureOf(yield* Effect.exit(ProviderConfig.load("/nonexistent/provider.json")))
      expect(missing.path).toBe("/nonexistent/provider.json")
      expect(missing.message).toBe("/nonexistent/provider.json: cannot read the file: no such file")
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

  it.scoped("each model is served only with its own entry's keys", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({ reply: { text: "ok" } })
      const registry = yield* ProviderConfig.fromJson({
        openai: [
          { model_name: "gpt-3.5-turbo", api_keys: ["k1", "k2"], base_url: fake.baseUrl },
          { model_name: "gpt-4", api_keys: ["k3"], base_url: fake.baseUrl },
          // the same set as gpt-3.5-turbo, in another order: one pool, one load account
          { model_name: "gpt-4o", api_keys: ["k2", "k1"], base_url: fake.baseUrl }
        ]
      })
      const chat = (model: string) =>
        LanguageModel.chat(Message.request("hi")).pipe(
          Effect.provide(registry.models.layer("openai", model).pipe(Layer.provide(Transport.layerUndici)))
        )
      for (let i = 0; i < 3; i++) yield* chat("gpt-4")
      expect((yield* fake.requests).map((r) => r.headers.authorization)).toEqual(["Bearer k3", "Bearer k3", "Bearer k3"])
      yield* fake.clear
      for (let i = 0; i < 4; i++) yield* chat("gpt-3.5-turbo")
      expect((yield* fake.requests).map((r) => r.headers.authorization).filter((a) => a !== "Bearer k1" && a !== "Bearer k2")).toEqual([])
      const pool = (model: string) => Option.getOrThrow(registry.keyPool("openai", model))
      expect(pool("gpt-4o")).toBe(pool("gpt-3.5-turbo"))
      expect(pool("gpt-4")).not.toBe(pool("gpt-3.5-turbo"))
      expect(yield* pool("gpt-4").status).toHaveLength(1)
    }))

  it.scoped("a model without api_keys takes the env keys, never a sibling entry's", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({ reply: { text: "ok" } })
      const json = {
        openai: [
          { model_name: "gpt-4o", api_keys: ["k1"], base_url: fake.baseUrl },
          { model_name: "gpt-4o-mini", base_url: fake.baseUrl }
        ]
      }
      const registry = yield* ProviderConfig.fromJson(json).pipe(withEnv({ OPENAI_API_KEY: "env-key" }))
      yield* LanguageModel.chat(Message.request("hi")).pipe(
        Effect.provide(registry.models.layer("openai", "gpt-4o-mini").pipe(Layer.provide(Transport.layerUndici)))
      )
      expect((yield* fake.requests).map((r) => r.headers.authorization)).toEqual(["Bearer env-key"])
      // without env keys the keyless entry is the error, named by its own path (a remote
      // base_url: loopback servers need no key)
      const remote = { openai: [{ model_name: "gpt-4o", api_keys: ["k1"] }, { model_name: "gpt-4o-mini" }] }
      const loaded = yield* ProviderConfig.fromJson(remote, "provider.json").pipe(withEnv({}))
      const error = yield* layerFailure(loaded, "openai", "gpt-4o-mini")
      expect(error.jsonPath).toBe("$.openai[1].api_keys")
    }))

  it.effect("an unknown field is an error that suggests the known one", () =>
    Effect.gen(function* () {
      const camel = failureOf(
        yield* Effect.exit(ProviderConfig.fromJson({ openai: [{ model_name: "gpt-4o", api_keys: ["k"], baseUrl: "https://x.example/v1" }] }, "provider.json"))
      )
      expect(camel.jsonPath).toBe("$.openai[0].baseUrl")
      expect(camel.message).toBe(`provider.json at $.openai[0].baseUrl: unknown field "baseUrl"; did you mean "base_url"?`)
      const singular = failureOf(yield* Effect.exit(ProviderConfig.fromJson({ openai: [{ model_name: "gpt-4o", api_key: "k" }] })))
      expect(singular.jsonPath).toBe("$.openai[0].api_key")
      expect(singular.message).toContain(`did you mean "api_keys"?`)
      const stranger = failureOf(yield* Effect.exit(ProviderConfig.fromJson({ openai: [{ model_name: "gpt-4o", api_keys: ["k"], colour: "blue" }] })))
      expect(stranger.message).toContain(`unknown field "colour"`)
      expect(stranger.message).toContain("model_name, api_keys, base_url")
    }))

  it.effect("duplicate model_names in one provider are an error naming both paths", () =>
    Effect.gen(function* () {
      const error = failureOf(
        yield* Effect.exit(ProviderConfig.fromJson({
          openai: [
            { model_name: "gpt-4o", api_keys: ["k1"] },
            { model_name: "gpt-4o-mini", api_keys: ["k1"] },
            { model_name: "gpt-4o", api_keys: ["k2"] }
          ],
          // the same name under another provider is another model
          openrouter: [{ model_name: "gpt-4o", api_keys: ["r1"] }]
        }))
      )
      expect(error.jsonPath).toBe("$.openai[2].model_name")
      expect(error.message).toContain("$.openai[0].model_name")
      expect(error.message).toContain("$.openai[2].model_name")
    }))

  it.effect("a duplicate provider block in the file is an error naming both places", () =>
    Effect.gen(function* () {
      const text = [
        `{`,
        `  "openai": [{ "model_name": "gpt-4o", "api_keys": ["k1"] }],`,
        `  "anthropic": [{ "model_name": "claude-3-5-haiku-latest", "api_keys": ["a1"] }],`,
        `  "openai": [{ "model_name": "gpt-4o-mini", "api_keys": ["k2"] }]`,
        `}`
      ].join("\n")
      const error = failureOf(yield* Effect.exit(ProviderConfig.load(writeTemp(text))))
      expect(error.jsonPath).toBe("$.openai")
      expect(error.message).toMatch(/duplicate provider "openai".*line 2.*line 4/)
      // a duplicate field inside an entry is caught the same way
      const field = failureOf(
        yield* Effect.exit(ProviderConfig.load(writeTemp(`{ "openai": [ { "model_name": "a",\n "model_name": "b", "api_keys": ["k"] } ] }`)))
      )
      expect(field.jsonPath).toBe("$.openai[0].model_name")
      expect(field.message).toMatch(/duplicate field "model_name".*line 1.*line 2/)
    }).pipe(Effect.provide(NodeFileSystem.layer)))

  it.effect("base_url must parse as an http(s) URL", () =>
    Effect.gen(function* () {
      for (const bad of ["api.openai.com/v1", "localhost:11434", "https://"]) {
        const error = failureOf(yield* Effect.exit(ProviderConfig.fromJson({ openai: [{ model_name: "gpt-4o", api_keys: ["k"], base_url: bad }] })))
        expect(error.jsonPath).toBe("$.openai[0].base_url")
        expect(error.message).toContain("URL")
      }
    }))

  it.effect("a key a header cannot carry is refused by its path, not its value", () =>
    Effect.gen(function* () {
      const error = failureOf(yield* Effect.exit(ProviderConfig.fromJson({ openai: [{ model_name: "gpt-4o", api_keys: ["sk-fine", "sk-pasted\n"] }] })))
      expect(error.jsonPath).toBe("$.openai[0].api_keys[1]")
      expect(error.message).toContain("line break")
      expect(error.message).not.toContain("sk-pasted")
    }))

  it.effect("no configuration error echoes a key", () =>
    Effect.gen(function* () {
      const canary = "sk-CANARY-7f3a9e1d2c4b"
      const expectClean = (error: ProviderConfig.ProviderConfigError) => {
        expect(error.message).not.toContain("CANARY")
        expect(JSON.stringify(error)).not.toContain("CANARY")
        expect(String(error)).not.toContain("CANARY")
      }
      const cases: ReadonlyArray<unknown> = [
        { openai: [{ model_name: "gpt-4o", api_keys: canary }] }, // wrong type: a string, not a list
        { openai: [{ model_name: "gpt-4o", api_keys: [canary, 7] }] },
        { openai: [{ model_name: "gpt-4o", api_keys: { primary: canary } }] },
        { openai: { model_name: "gpt-4o", api_keys: [canary] } }, // an entry, not a list of entries
        { openai: [{ model_name: "gpt-4o", api_key: canary }] },
        { openai: [{ model_name: "gpt-4o", api_keys: [canary], base_url: canary }] },
        { openai: [{ model_name: "gpt-4o", api_keys: [canary], max_retries: canary }] },
        { openai: [{ model_name: "gpt-4o", api_keys: [canary] }, { model_name: "gpt-4o", api_keys: [canary] }] },
        { openai: [canary] },
        { openai: [{ model_name: "gpt-4o", api_keys: ["sk-fine", `${canary}\r\n`] }] } // a pasted line break
      ]
      for (const json of cases) {
        expectClean(failureOf(yield* Effect.exit(ProviderConfig.fromJson(json, "provider.json").pipe(withEnv({ OPENAI_API_KEY: canary })))))
      }
      const texts = [
        `{ "openai": [{ "model_name": "gpt-4o", "api_keys": [${canary}] }] }`, // unquoted: not JSON
        `{ "openai": [{ "model_name": "gpt-4o", "api_keys": ["${canary}"], }] }`, // trailing comma
        `{ "openai": [{ "model_name": "gpt-4o", "api_keys": ["${canary}"] }], "openai": [] }`,
        `{ "openai": [{ "model_name": "gpt-4o", "api_keys": "${canary}" }] }`
      ]
      for (const text of texts) {
        expectClean(failureOf(yield* Effect.exit(ProviderConfig.load(writeTemp(text)))))
      }
    }).pipe(Effect.provide(NodeFileSystem.layer)))

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
