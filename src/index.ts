/**
 * effect-llm: one typed `LanguageModel` over every LLM provider, with key pools, adaptive
 * rate limits, retries and fallbacks as Effect services built from Layers. The modules below
 * follow the path of one request, from the caller to the network. Test doubles are their own
 * entry, `effect-llm/Testing`, so that this one never loads the fake server.
 *
 * @since 0.1.0
 */

// The domain: requests, replies, errors, the service
export * as Message from "./Message.js"
export * as LlmError from "./LlmError.js"
export * as LanguageModel from "./LanguageModel.js"

// The application layer: typed tools for LanguageModel.generateText / streamText, conversations,
// and replies streamed to a browser
export * as Tool from "./Tool.js"
export * as Toolkit from "./Toolkit.js"
export * as Chat from "./Chat.js"
export * as ServerSentEvents from "./ServerSentEvents.js"

// Decorators, outermost first: caching, budgets, context windows, fallback, hedging, breakers, retry
export * as ResponseCache from "./ResponseCache.js"
export * as Budget from "./Budget.js"
export * as ContextWindow from "./ContextWindow.js"
export * as Fallback from "./Fallback.js"
export * as Hedge from "./Hedge.js"
export * as Health from "./Health.js"
export * as CircuitBreaker from "./CircuitBreaker.js"
export * as Retry from "./Retry.js"

// Providers: the contract, the built-in wire APIs, embeddings, configuration files
export * as Provider from "./Provider.js"
export * as OpenAiCompatible from "./OpenAiCompatible.js"
export * as OpenAiResponses from "./OpenAiResponses.js"
export * as Anthropic from "./Anthropic.js"
export * as Gemini from "./Gemini.js"
export * as Ollama from "./Ollama.js"
export * as Embeddings from "./Embeddings.js"
export * as ProviderConfig from "./ProviderConfig.js"

// What a provider stands on: keys, limits, the network
export * as KeyPool from "./KeyPool.js"
export * as RateLimiter from "./RateLimiter.js"
export * as Transport from "./Transport.js"

// Accounting, bulk runs and observability
export * as Usage from "./Usage.js"
export * as Tokenizer from "./Tokenizer.js"
export * as Batch from "./Batch.js"
export * as ProviderBatch from "./ProviderBatch.js"
export * as Telemetry from "./Telemetry.js"
