/**
 * ResponseCache internals: the canonical request key and the in-process LRU store (the Redis
 * one is `internal/redis/responseCacheStore.ts`). Stores never fail: a broken backend reads
 * as a miss.
 */
import { createHash } from "node:crypto"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { LRUCache } from "lru-cache"
import type * as Message from "../Message.js"

// ---------------------------------------------------------------------------
// The key
// ---------------------------------------------------------------------------

/** A part as it bears on the answer: prompt-cache breakpoints do not. */
const canonicalPart = (part: Message.UserContentPart): unknown => {
  switch (part.type) {
    case "text":
      return { type: "text", text: part.text }
    case "image":
      return { type: "image", url: part.url, mediaType: part.mediaType, detail: part.detail === "auto" ? undefined : part.detail }
    case "file":
      return { type: "file", url: part.url, mediaType: part.mediaType, filename: part.filename }
    case "audio":
      return { type: "audio", url: part.url, mediaType: part.mediaType }
  }
}

const canonicalContent = (content: Message.UserMessage["content"] | Message.ToolMessage["content"]): unknown => {
  if (typeof content === "string") return content
  // a lone text part is the same prompt as a plain string
  if (content.length === 1 && content[0]!.type === "text") return content[0]!.text
  return content.map(canonicalPart)
}

const canonicalMessage = (message: Message.Message): unknown => {
  switch (message.role) {
    case "system":
      return { role: "system", content: message.content }
    case "user":
      return { role: "user", content: canonicalContent(message.content) }
    case "assistant":
      return {
        role: "assistant",
        content: message.content,
        toolCalls: message.toolCalls !== undefined && message.toolCalls.length > 0
          ? message.toolCalls.map((c) => ({ id: c.id, name: c.name, arguments: c.arguments }))
          : undefined,
        reasoning: message.reasoning
      }
    case "tool":
      return { role: "tool", toolCallId: message.toolCallId, content: canonicalContent(message.content), name: message.name, isError: message.isError === true ? true : undefined }
  }
}

const nonEmpty = <A>(items: ReadonlyArray<A> | undefined): ReadonlyArray<A> | undefined =>
  items === undefined || items.length === 0 ? undefined : items

/**
 * What determines the answer, with provider defaults and empty values dropped. Left out on
 * purpose: `user` (an end-user id for abuse tracking) and `cache` (this layer's own switch).
 */
export const canonicalRequest = (provider: string, model: string, request: Message.ChatRequest): unknown => {
  const tools = nonEmpty(request.tools)
  return {
    provider,
    model,
    messages: request.messages.map(canonicalMessage),
    tools: tools?.map((t) => ({ name: t.name, description: t.description, parameters: t.parameters, strict: t.strict })),
    // "auto" is what every provider does when tools are given and no choice is
    toolChoice: request.toolChoice === "auto" ? undefined : request.toolChoice,
    temperature: request.temperature,
    topP: request.topP === 1 ? undefined : request.topP,
    maxTokens: request.maxTokens,
    stop: nonEmpty(request.stop),
    seed: request.seed,
    presencePenalty: request.presencePenalty === 0 ? undefined : request.presencePenalty,
    frequencyPenalty: request.frequencyPenalty === 0 ? undefined : request.frequencyPenalty,
    reasoningEffort: request.reasoningEffort,
    responseFormat: request.responseFormat?.type === "text" ? undefined : request.responseFormat,
    extra: request.extra !== undefined && Object.keys(request.extra).length > 0 ? request.extra : undefined,
    providerOptions: request.providerOptions
  }
}

/** JSON with object keys sorted and undefined members dropped, so key order cannot matter. */
export const stableStringify = (value: unknown): string => {
  if (value === null || typeof value !== "object") return JSON.stringify(value) ?? "null"
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? "null" : stableStringify(v))).join(",")}]`
  const record = value as Record<string, unknown>
  const parts: Array<string> = []
  for (const key of Object.keys(record).sort()) {
    const v = record[key]
    if (v !== undefined) parts.push(`${JSON.stringify(key)}:${stableStringify(v)}`)
  }
  return `{${parts.join(",")}}`
}

/** The cache key: SHA-256 of the canonical request. */
export const keyOf = (provider: string, model: string, request: Message.ChatRequest): string =>
  createHash("sha256").update(stableStringify(canonicalRequest(provider, model, request))).digest("hex")

// ---------------------------------------------------------------------------
// Stores
// ---------------------------------------------------------------------------

/** A storage backend. `get` and `set` take the current time so that TTLs follow `Clock`. */
export interface Backend {
  readonly get: (key: string) => Effect.Effect<Message.ChatResponse | undefined>
  readonly set: (key: string, response: Message.ChatResponse) => Effect.Effect<void>
  readonly clear: Effect.Effect<void>
  readonly size: Effect.Effect<number>
  readonly getStale?: ((key: string) => Effect.Effect<Message.ChatResponse | undefined>) | undefined
}

interface MemoryEntry {
  readonly response: Message.ChatResponse
  readonly expiresAt: number
}

/**
 * An LRU (lru-cache) whose entries expire after `ttl`, measured on Effect's `Clock`, and are
 * kept `staleFor` longer for degraded mode (`getStale`).
 */
export const memoryBackend = (options: {
  readonly maxEntries: number
  readonly ttl: Duration.DurationInput
  readonly staleFor?: Duration.DurationInput | undefined
}): Effect.Effect<Backend> =>
  Effect.sync(() => {
    const ttl = Duration.toMillis(Duration.decode(options.ttl))
    const staleFor = options.staleFor === undefined ? 0 : Duration.toMillis(Duration.decode(options.staleFor))
    const lru = new LRUCache<string, MemoryEntry>({ max: Math.max(1, Math.floor(options.maxEntries)) })
    const purge = (now: number) => {
      for (const [key, entry] of lru.entries()) if (entry.expiresAt + staleFor <= now) lru.delete(key)
    }
    // fresh: before expiresAt; stale: within staleFor after it; gone after that
    const read = (key: string, stale: boolean) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        const entry = lru.get(key)
        if (entry === undefined) return undefined
        if (entry.expiresAt + staleFor <= now) {
          lru.delete(key)
          return undefined
        }
        return stale || entry.expiresAt > now ? entry.response : undefined
      })
    return {
      get: (key) => read(key, false),
      getStale: staleFor > 0 ? (key) => read(key, true) : undefined,
      set: (key, response) =>
        Effect.map(Clock.currentTimeMillis, (now) => void lru.set(key, { response, expiresAt: now + ttl })),
      clear: Effect.sync(() => lru.clear()),
      size: Effect.map(Clock.currentTimeMillis, (now) => {
        purge(now)
        return lru.size
      })
    }
  })
