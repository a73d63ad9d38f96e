/**
 * The one reader of keys from the environment (src/internal/envKeys.ts): its rule, and every
 * path that reads keys (KeyPool.layerConfig, ProviderConfig.envKeys and fromJson, the presets,
 * layerFromEnv) giving the same answer for the same variable. The CLI's path is in cli.test.ts.
 */
import { describe, expect, it } from "@effect/vitest"
import { Config, ConfigProvider, Effect, Layer, Option, Redacted } from "effect"
import * as envKeys from "../../src/internal/envKeys.js"
import { Anthropic, KeyPool, OpenAiCompatible, ProviderConfig, RateLimiter, Transport } from "../../src/index.js"

const withEnv = (env: Record<string, string>) => Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))

/** What a path made of the variable: the distinct keys it holds, or its error's text. */
type Outcome = { readonly keys: number } | { readonly error: string }

const distinct = (keys: ReadonlyArray<Redacted.Redacted<string>>): Outcome => ({ keys: new Set(keys.map(Redacted.value)).size })

const buildOnly = <A, E>(layer: Layer.Layer<A, E, never>) =>
  Effect.match(Effect.scoped(Layer.build(layer)), { onFailure: (error): Outcome => ({ error: String(error) }), onSuccess: (): Outcome => ({ keys: -1 }) })

/** Each path, reading GROQ_API_KEY (Anthropic's layerFromEnv reads ANTHROPIC_API_KEY). */
const paths: Record<string, { readonly variable: string; readonly run: Effect.Effect<Outcome> }> = {
  "KeyPool.layerConfig": {
    variable: "GROQ_API_KEY",
    run: Effect.match(KeyPool.status.pipe(Effect.provide(KeyPool.layerConfig({ providerId: "groq", keys: Config.redacted("GROQ_API_KEY") }))), {
      onFailure: (error): Outcome => ({ error: String(error) }),
      onSuccess: (status): Outcome => ({ keys: status.length })
    })
  },
  "ProviderConfig.envKeys": {
    variable: "GROQ_API_KEY",
    run: Effect.match(ProviderConfig.envKeys("groq"), { onFailure: (error): Outcome => ({ error: error.message }), onSuccess: distinct })
  },
  "ProviderConfig.fromJson": {
    variable: "GROQ_API_KEY",
    // the file loads whatever the variable holds; the model's entry fails when it is asked for
    run: Effect.match(
      Effect.flatMap(ProviderConfig.fromJson({ groq: [{ model_name: "llama-3.1-8b-instant" }] }), (registry) =>
        Option.match(registry.keyPool("groq"), {
          onSome: (pool): Effect.Effect<number, { readonly message: string }> => Effect.map(pool.status, (status) => status.length),
          onNone: () =>
            Effect.as(
              Effect.scoped(Layer.build(registry.models.layer("groq", "llama-3.1-8b-instant").pipe(Layer.provide(Transport.layerUndici)))),
              0
            )
        })),
      { onFailure: (error): Outcome => ({ error: error.message }), onSuccess: (keys): Outcome => ({ keys }) }
    )
  },
  "OpenAiCompatible.layerPreset": {
    variable: "GROQ_API_KEY",
    run: buildOnly(OpenAiCompatible.layerPreset("groq", { model: "llama-3.1-8b-instant" }).pipe(Layer.provide(Layer.mergeAll(RateLimiter.unlimited, Transport.layerUndici))))
  },
  "Anthropic.layerFromEnv (Provider.withEnvKeys)": {
    variable: "ANTHROPIC_API_KEY",
    run: buildOnly(Anthropic.layerFromEnv({ model: "claude-sonnet-4-5" }).pipe(Layer.provide(Layer.mergeAll(RateLimiter.unlimited, Transport.layerUndici))))
  }
}

describe("envKeys: one rule", () => {
  it("splits on commas, trims, and drops blank entries", () => {
    expect(envKeys.split(" k1, k2 ,,k3 ,")).toEqual(["k1", "k2", "k3"])
    expect(envKeys.split(" , ")).toEqual([])
  })

  it.effect("a variable that is missing, set but empty, or holds a key that cannot be sent is an error naming it", () =>
    Effect.gen(function* () {
      const read = (env: Record<string, string>) => Effect.flip(envKeys.readVariable("GROQ_API_KEY", false)).pipe(withEnv(env), Effect.map(envKeys.describe))
      expect(yield* read({})).toBe("set GROQ_API_KEY to an API key, or a comma-separated list of keys")
      expect(yield* read({ GROQ_API_KEY: " , " })).toBe("GROQ_API_KEY is set but empty: set it to an API key, or a comma-separated list of keys")
      const bad = yield* read({ GROQ_API_KEY: "gsk-fine,gsk-pasted\nline" })
      expect(bad).toBe("GROQ_API_KEY: key 2 of 2 contains a line break at character 11, so it cannot go in an HTTP header")
      expect(bad).not.toContain("pasted")
      // the plural is not a second place keys come from; the message says so
      expect(yield* read({ GROQ_API_KEYS: "gsk-1,gsk-2" })).toContain("GROQ_API_KEYS is not read: move its keys to GROQ_API_KEY")
    }))

  it.effect("a provider that takes no key reads a missing or blank variable as none, and a set one as its keys", () =>
    Effect.gen(function* () {
      const read = (env: Record<string, string>) => envKeys.readVariable("VLLM_API_KEY", true).pipe(withEnv(env), Effect.map((keys) => keys.length))
      expect(yield* read({})).toBe(0)
      expect(yield* read({ VLLM_API_KEY: " " })).toBe(0)
      expect(yield* read({ VLLM_API_KEY: "v1,v2" })).toBe(2)
    }))

  it.effect("every path that reads keys gives the same answer for the same variable", () =>
    Effect.gen(function* () {
      const cases: ReadonlyArray<{ readonly env: (variable: string) => Record<string, string>; readonly expected: (variable: string) => string | number }> = [
        { env: () => ({}), expected: (v) => `set ${v} to an API key, or a comma-separated list of keys` },
        { env: (v) => ({ [v]: "" }), expected: (v) => `${v} is set but empty` },
        { env: (v) => ({ [v]: " , " }), expected: (v) => `${v} is set but empty` },
        { env: (v) => ({ [v]: "k1,bad\u0007key" }), expected: (v) => `${v}: key 2 of 2 contains a control character at character 4` },
        { env: (v) => ({ [`${v}S`]: "k1,k2" }), expected: (v) => `${v}S is not read` },
        { env: (v) => ({ [v]: "k1, k2,,k1" }), expected: () => 2 }
      ]
      for (const [name, path] of Object.entries(paths)) {
        for (const c of cases) {
          const env = c.env(path.variable)
          const expected = c.expected(path.variable)
          const outcome = yield* path.run.pipe(withEnv(env))
          const seen = { path: name, env, outcome: "error" in outcome ? "error" : "keys" }
          if (typeof expected === "number") {
            expect(seen).toEqual({ path: name, env, outcome: "keys" })
            // the layers that only build cannot count keys; the others must see two distinct ones
            if ("keys" in outcome && outcome.keys >= 0) expect({ path: name, keys: outcome.keys }).toEqual({ path: name, keys: expected })
          } else {
            expect(seen).toEqual({ path: name, env, outcome: "error" })
            if ("error" in outcome) expect({ path: name, error: outcome.error }).toEqual({ path: name, error: expect.stringContaining(expected) })
          }
        }
      }
    }))
})
