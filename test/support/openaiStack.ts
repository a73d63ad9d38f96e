/**
 * The OpenAI-compatible stack the spine's tests run against a FakeProvider, and the check
 * that every request body the fake received is a valid `CreateChatCompletionRequest`.
 */
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import { KeyPool, OpenAiCompatible, RateLimiter, Transport, type LanguageModel } from "../../src/index.js"
import * as Testing from "../../src/Testing.js"
import { assertValid } from "./openapi.js"

export interface StackOptions {
  readonly keys?: ReadonlyArray<string>
  readonly model?: string
  readonly provider?: string
  readonly timeout?: Duration.DurationInput
  readonly maxTokensField?: "max_tokens" | "max_completion_tokens"
}

/**
 * A model over the fake, with its key pool kept in the output so tests can read its status.
 * Its options are the test's own: one that cannot build is a bug of the test (a defect).
 */
export const stack = (
  baseUrl: string,
  options: StackOptions = {}
): Layer.Layer<LanguageModel.LanguageModel | KeyPool.KeyPool> => {
  const provider = options.provider ?? "openai"
  return OpenAiCompatible.layer({
    model: options.model ?? "gpt-4o-mini",
    baseUrl,
    provider,
    timeout: options.timeout,
    maxTokensField: options.maxTokensField
  }).pipe(
    Layer.provideMerge(KeyPool.layer({ providerId: provider, keys: options.keys ?? ["sk-test-key-1"] })),
    Layer.provide(RateLimiter.unlimited),
    Layer.provide(Transport.layerUndici),
    Layer.orDie
  )
}

/** Throws unless every Chat Completions request the fake received validates against OpenAI's spec. */
export const assertRequestsValid = (requests: ReadonlyArray<Testing.RecordedRequest>): void => {
  for (const request of requests) {
    if (request.path.endsWith("/chat/completions")) assertValid("CreateChatCompletionRequest", request.body)
  }
}

/**
 * A FakeProvider whose recorded requests are validated when the test's scope closes, so
 * that every chat test checks its bodies without saying so.
 */
export const fakeProvider = (
  options?: Testing.FakeProviderOptions
): Effect.Effect<Testing.FakeProviderService, never, Scope.Scope> =>
  Effect.tap(Testing.FakeProvider.make(options), (fake) =>
    Effect.addFinalizer(() => Effect.flatMap(fake.requests, (requests) => Effect.sync(() => assertRequestsValid(requests)))))
