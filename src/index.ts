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
export * as OpenAiResponses from "./OpenAiResponses.js"
export * as Anthropic from "./Anthropic.js"
export * as Gemini from "./Gemini.js"
export * as Ollama from "./Ollama.js"
export * as Embeddings from "./Embeddings.js"
export * as ProviderConfig from "./ProviderConfig.js"

// What a provider stands on
export * as KeyPool from "./KeyPool.js"
export * as RateLimiter from "./RateLimiter.js"
export * as Transport from "./Transport.js"

// The economy: caching, usage and cost, budgets, token counts, context windows
export * as ResponseCache from "./ResponseCache.js"
export * as Usage from "./Usage.js"
export * as Budget from "./Budget.js"
export * as Tokenizer from "./Tokenizer.js"
export * as ContextWindow from "./ContextWindow.js"

// Bulk and observability
export * as Batch from "./Batch.js"
export * as Telemetry from "./Telemetry.js"

// Tests, examples and benchmarks
export * as Testing from "./Testing.js"

// Resilience: decorators and the services they consult
export * as Retry from "./Retry.js"
export * as CircuitBreaker from "./CircuitBreaker.js"
export * as Health from "./Health.js"
export * as Fallback from "./Fallback.js"
