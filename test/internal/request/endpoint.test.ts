/**
 * What a provider resolves once, when its layer builds: the size caps (an invalid one is a
 * typed `ConfigError` of the layer, naming the option), and the transport (the `Transport`
 * reference: by default, the `HttpClient` the provider requires).
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { describe, expect, it } from "@effect/vitest"
import { ConfigError, Effect, Either, Layer } from "effect"
import { KeyPool, LanguageModel, Message, OpenAiCompatible, Provider, RateLimiter, Transport } from "../../../src/index.js"
import * as Testing from "../../../src/Testing.js"
import * as Http from "../../../src/internal/request/endpoint.js"

const below = Layer.mergeAll(KeyPool.layerKeyless("p"), RateLimiter.unlimited, Transport.layerUndici)

describe("size caps", () => {
  it.effect("an invalid maxResponseBytes or maxEventBytes is a ConfigError that names it", () =>
    Effect.gen(function* () {
      for (const [name, value] of [["maxResponseBytes", 0], ["maxResponseBytes", Number.NaN], ["maxEventBytes", -5], ["maxEventBytes", 0.5]] as const) {
        const result = yield* Effect.either(Http.resolveEndpoint({ provider: "p", auth: () => ({}), [name]: value }).pipe(Effect.provide(below)))
        expect(Either.isLeft(result), `${name}: ${value} was accepted`).toBe(true)
        const error = (result as Either.Left<ConfigError.ConfigError, unknown>).left
        expect(ConfigError.isConfigError(error)).toBe(true)
        expect(error).toMatchObject({ _op: "InvalidData", path: [name] })
        expect(String(error)).toContain("positive number of bytes")
      }
    }))

  it.effect("a provider layer with one fails to build with it, typed", () =>
    Effect.gen(function* () {
      const layer: Layer.Layer<LanguageModel.LanguageModel, ConfigError.ConfigError, Provider.Requirements> = OpenAiCompatible.layer({
        model: "m",
        baseUrl: "http://127.0.0.1:1/v1",
        maxResponseBytes: 0
      })
      const built = yield* Effect.either(Effect.scoped(Layer.build(layer.pipe(Layer.provide(below)))))
      expect(Either.isLeft(built) && ConfigError.isConfigError(built.left)).toBe(true)
    }))
})

describe("the transport", () => {
  it.scoped("by default a provider sends through the HttpClient it requires; a provided Transport replaces it", () =>
    Effect.gen(function* () {
      const fake = yield* Testing.FakeProvider.make({ reply: { text: "over http" } })
      let viaHttpClient = 0
      let viaTransport = 0
      const http = Layer.effect(
        HttpClient.HttpClient,
        Effect.map(HttpClient.HttpClient, HttpClient.tapRequest(() => Effect.sync(() => void viaHttpClient++)))
      ).pipe(Layer.provide(NodeHttpClient.layerUndici))
      const counting = Layer.effect(
        Transport.Transport,
        Effect.map(Transport.Transport, (real): Transport.Service => ({ ...real, text: (request) => (viaTransport++, real.text(request)) }))
      ).pipe(Layer.provide(Transport.layerUndici))
      const stack = (transport: Layer.Layer<never> | typeof counting) =>
        OpenAiCompatible.layer({ model: "m", baseUrl: fake.baseUrl }).pipe(
          Layer.provide(Layer.mergeAll(KeyPool.layer({ providerId: "p", keys: ["k"] }), RateLimiter.unlimited, transport)),
          Layer.provide(http)
        )
      // no Transport provided: the reference's default sends through the provider's HttpClient
      expect((yield* LanguageModel.chat(Message.request("hi")).pipe(Effect.provide(stack(Layer.empty)))).text).toBe("over http")
      expect([viaHttpClient, viaTransport]).toEqual([1, 0])
      expect((yield* LanguageModel.chat(Message.request("hi")).pipe(Effect.provide(stack(counting)))).text).toBe("over http")
      expect([viaHttpClient, viaTransport]).toEqual([1, 1])
    }))
})
