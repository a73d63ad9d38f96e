/**
 * effect-llm: one typed `LanguageModel` over every LLM provider, with key pools, adaptive
 * rate limits, retries and fallbacks as Effect services built from Layers.
 *
 * @since 0.1.0
 */

// The domain
export * as Message from "./Message.js"
export * as LlmError from "./LlmError.js"
export * as LanguageModel from "./LanguageModel.js"

// Providers
export * as OpenAiCompatible from "./OpenAiCompatible.js"

// What a provider stands on
export * as KeyPool from "./KeyPool.js"
export * as RateLimiter from "./RateLimiter.js"

// Tests, examples and benchmarks
export * as Testing from "./Testing.js"

// Resilience: decorators and the services they consult
export * as Retry from "./Retry.js"
export * as CircuitBreaker from "./CircuitBreaker.js"
export * as Health from "./Health.js"
export * as Fallback from "./Fallback.js"
