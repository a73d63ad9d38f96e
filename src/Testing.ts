/**
 * Test doubles: `mockModel`, a scripted `LanguageModel` layer, and `FakeProvider`, a real
 * HTTP server on loopback that speaks the providers' wire formats and injects faults;
 * `McpServer`, a scripted MCP server on loopback for `effect-llm/Mcp` (it needs the MCP SDK).
 *
 * @since 0.1.0
 */
import type * as HttpClient from "@effect/platform/HttpClient"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as registry from "./internal/providers/registry.js"
import * as FakeServer from "./internal/testing/server.js"
import { splitText as split } from "./internal/testing/route.js"
import { collect, LanguageModel, make, responseToEvents } from "./LanguageModel.js"
import * as Err from "./LlmError.js"
import type * as Message from "./Message.js"
import * as ProviderConfig from "./ProviderConfig.js"

// ---------------------------------------------------------------------------
// mockModel
// ---------------------------------------------------------------------------

/**
 * A scripted tool call: `arguments` as the model's JSON text, or `params` as a value the mock
 * writes as JSON. Without an `id`, the mock numbers it (`call_<turn>_<n>`).
 * @since 0.1.0 @category mock
 */
export type MockToolCall =
  | { readonly id?: string; readonly name: string; readonly arguments: string }
  | { readonly id?: string; readonly name: string; readonly params: unknown }

/**
 * One scripted turn: a reply text, a partial response, an explicit event list (optionally
 * failing after it), or an error. In a partial response, `object` is a JSON reply (what a
 * provider returns for `generateObject`), written as its text; `chunks` streams the text in
 * that many deltas (default 1).
 * @since 0.1.0 @category mock
 */
export type MockStep =
  | string
  | {
    readonly text?: string
    readonly object?: unknown
    readonly chunks?: number
    readonly reasoning?: string
    readonly toolCalls?: ReadonlyArray<MockToolCall>
    readonly finishReason?: Message.FinishReason
    readonly usage?: Message.Usage
  }
  | { readonly events: ReadonlyArray<Message.StreamEvent>; readonly failWith?: Err.LlmError }
  | Err.LlmError

/** @since 0.1.0 @category mock */
export interface MockScript {
  /** Turns in order; the last one repeats once the script runs out. Or a function of the request. */
  readonly steps: ReadonlyArray<MockStep> | ((request: Message.ChatRequest, call: number) => MockStep)
  readonly provider?: string
  readonly model?: string
  readonly contextWindow?: number
}

/** @since 0.1.0 @category mock */
export interface MockModel {
  readonly service: LanguageModel["Type"]
  /** Requests the mock received, in order. */
  readonly requests: Effect.Effect<ReadonlyArray<Message.ChatRequest>>
}

const isEventsStep = (step: MockStep): step is { readonly events: ReadonlyArray<Message.StreamEvent>; readonly failWith?: Err.LlmError } =>
  typeof step === "object" && "events" in step

/** @since 0.1.0 @category mock */
export const makeMockModel = (script: MockScript): Effect.Effect<MockModel> =>
  Effect.gen(function* () {
    const provider = script.provider ?? "mock"
    const modelName = script.model ?? "mock-model"
    const requests = yield* Ref.make<ReadonlyArray<Message.ChatRequest>>([])
    const counter = yield* Ref.make(0)
    const nextStep = (request: Message.ChatRequest) =>
      Effect.flatMap(Ref.getAndUpdate(counter, (n) => n + 1), (n) =>
        Effect.as(Ref.update(requests, (all) => [...all, request]), [stepAt(request, n), n + 1] as const))
    const stepAt = (request: Message.ChatRequest, n: number): MockStep => {
      if (typeof script.steps === "function") return script.steps(request, n)
      const steps = script.steps
      return steps[Math.min(n, steps.length - 1)] ?? ""
    }
    const toResponse = (request: Message.ChatRequest, step: Exclude<MockStep, Err.LlmError | { events: unknown }>, turn: number): Message.ChatResponse => {
      const spec = typeof step === "string" ? { text: step } : step
      const text = spec.text ?? (spec.object === undefined ? "" : JSON.stringify(spec.object))
      const toolCalls = (spec.toolCalls ?? []).map((call, i): Message.ToolCall => ({
        id: call.id ?? `call_${turn}_${i + 1}`,
        name: call.name,
        arguments: "arguments" in call ? call.arguments : JSON.stringify(call.params)
      }))
      const inputTokens = Math.ceil(JSON.stringify(request.messages).length / 4)
      const outputTokens = Math.ceil((text.length + (spec.reasoning?.length ?? 0)) / 4)
      const response: Message.ChatResponse = {
        id: "mock",
        model: request.model ?? modelName,
        provider,
        text,
        toolCalls,
        finishReason: spec.finishReason ?? (toolCalls.length > 0 ? "tool_calls" : "stop"),
        usage: spec.usage ?? { inputTokens, outputTokens, totalTokens: inputTokens + outputTokens, estimated: false }
      }
      return spec.reasoning === undefined ? response : { ...response, reasoning: spec.reasoning }
    }
    const streamOf = (request: Message.ChatRequest, step: MockStep, turn: number): Stream.Stream<Message.StreamEvent, Err.LlmError> => {
      if (Err.isLlmError(step)) return Stream.fail(step)
      if (isEventsStep(step)) {
        const events = Stream.fromIterable(step.events)
        return step.failWith === undefined ? events : Stream.concat(events, Stream.fail(step.failWith))
      }
      const events = responseToEvents(toResponse(request, step, turn))
      const chunks = typeof step === "string" ? 1 : step.chunks ?? 1
      if (chunks <= 1) return Stream.fromIterable(events)
      // the text in `chunks` deltas, each its own stream chunk, as a provider delivers it
      return Stream.fromIterable(events.flatMap((event): Array<Message.StreamEvent> =>
        event._tag === "TextDelta" ? split(event.text, chunks).map((text) => ({ _tag: "TextDelta", text })) : [event]
      )).pipe(Stream.rechunk(1))
    }
    // made with `make`, so that its streams report what they deliver, as any source's must
    const service: LanguageModel["Type"] = make({
      provider,
      model: modelName,
      contextWindow: script.contextWindow,
      chat: (request) =>
        Effect.flatMap(nextStep(request), ([step, turn]) => {
          if (Err.isLlmError(step)) return Effect.fail(step)
          if (isEventsStep(step)) return collect(streamOf(request, step, turn))
          return Effect.succeed(toResponse(request, step, turn))
        }),
      stream: (request) => Stream.unwrap(Effect.map(nextStep(request), ([step, turn]) => streamOf(request, step, turn)))
    })
    return { service, requests: Ref.get(requests) }
  })

/**
 * A `LanguageModel` layer with scripted replies, streams and errors.
 * @since 0.1.0 @category mock
 */
export const mockModel = (script: MockScript | ReadonlyArray<MockStep>): Layer.Layer<LanguageModel> =>
  Layer.effect(
    LanguageModel,
    Effect.map(makeMockModel("steps" in script ? script : { steps: script as ReadonlyArray<MockStep> }), (m) => m.service)
  )

// ---------------------------------------------------------------------------
// FakeProvider
// ---------------------------------------------------------------------------

/**
 * What the fake answers with when no fault applies.
 * @since 0.1.0 @category fake provider
 */
export interface Reply {
  readonly text?: string
  readonly reasoning?: string
  /**
   * `arguments` is the model's JSON text, streamed as given (Anthropic's `partial_json`, OpenAI's
   * deltas), invalid or not; where a wire format carries a value instead (Anthropic's JSON `input`,
   * Gemini's `args`, Ollama's `arguments`), text that is not JSON goes as `{}` (on Anthropic, anything
   * but a JSON object).
   */
  readonly toolCalls?: ReadonlyArray<{ readonly id?: string; readonly name: string; readonly arguments: string }>
  /**
   * The reasoning state's opaque value: Anthropic's thinking `signature`, Gemini's
   * `thoughtSignature` (on the first function call, else on the text), the Responses reasoning
   * item's `encrypted_content` (when the request asks for it). Gemini sends one whenever
   * `reasoning` or this is set; the others with `reasoning`. Default `"fake-signature"`.
   */
  readonly signature?: string
  /** How many content chunks a streamed text is split into. Default 8. */
  readonly chunks?: number
  /** Pause between streamed chunks. */
  readonly chunkDelayMs?: number
  /** Pause before the response starts. */
  readonly delayMs?: number
  /** Set false to send no usage. */
  readonly usage?: boolean
  readonly finishReason?: string
  readonly model?: string
  /** Extra response headers, e.g. `x-ratelimit-remaining-requests`. */
  readonly headers?: Record<string, string>
  /** Length of the fake's embedding vectors when the request names no `dimensions`. Default 8. */
  readonly embeddingDimensions?: number
  /** The most inputs one embeddings call accepts; more get a 400, as from a real provider. */
  readonly maxEmbeddingInputs?: number
}

/**
 * A fault to inject into one request. A fault takes no turn; those that send a reply
 * (`SlowFirstByte`, `CutStream`, `MalformedJson`, `NullFrame`, `StreamErrorEvent`) send the one
 * the request would get (the responder's, or the scripted reply for its turn).
 * @since 0.1.0 @category fake provider
 */
export type Fault =
  /** 429, with `retry-after-ms` and/or `retry-after`; `insufficientQuota` sends the quota error body. */
  | { readonly _tag: "RateLimit"; readonly retryAfterMs?: number; readonly retryAfterSeconds?: number; readonly insufficientQuota?: boolean }
  /** Any status with an optional body, e.g. 500, 503, 401. */
  | { readonly _tag: "Status"; readonly status: number; readonly body?: string; readonly headers?: Record<string, string> }
  /** The connection is reset before any header. */
  | { readonly _tag: "Reset" }
  /**
   * The body stops after N frames (a JSON body: after half of it): the headers and those frames
   * reach the client, then the socket is destroyed, or (`mode: "end"`) the body just ends. The
   * same on every route; a client sees a mid-stream failure, not a connection error.
   */
  | { readonly _tag: "CutStream"; readonly afterChunks: number; readonly mode?: "destroy" | "end" }
  /** The JSON body, or the stream's frame N, is not valid JSON. */
  | { readonly _tag: "MalformedJson"; readonly afterChunks?: number }
  /**
   * The stream's frame N is valid JSON with a `null` where an object belongs (`"choices":[null]`,
   * a null content block, …), and the body ends there; without streaming, the body is such JSON.
   */
  | { readonly _tag: "NullFrame"; readonly afterChunks?: number }
  /**
   * After N frames the stream sends the API's own error event (OpenAI `{"error":…}`, Responses
   * `error` then `response.failed`, Anthropic `event: error`, Gemini and Ollama error objects);
   * an embeddings route answers 500 with its error body.
   */
  | { readonly _tag: "StreamErrorEvent"; readonly afterChunks: number }
  /** The headers wait this long. */
  | { readonly _tag: "SlowFirstByte"; readonly delayMs: number }
  /**
   * A literal response, written in the given pieces (to test framing across TCP chunks).
   * Byte pieces can split a multi-byte UTF-8 character.
   */
  | {
    readonly _tag: "Raw"
    readonly body: string | ReadonlyArray<string | Uint8Array>
    readonly status?: number
    readonly contentType?: string
    readonly headers?: Record<string, string>
    readonly delayMs?: number
    readonly chunkDelayMs?: number
  }

/** @since 0.1.0 @category fake provider */
export interface RecordedRequest {
  readonly index: number
  readonly method: string
  readonly path: string
  readonly headers: Readonly<Record<string, string | ReadonlyArray<string> | undefined>>
  /** The parsed JSON body (or the raw text when it was not JSON). */
  readonly body: unknown
}

/**
 * A tool result a request sends, read back from its wire format.
 * @since 0.1.0 @category fake provider
 */
export interface FakeToolResult {
  /** The call id (Gemini: the call id when sent, else the function name; Ollama: the tool name). */
  readonly toolCallId: string
  readonly name?: string | undefined
  /** The result as text (Gemini: the JSON of its `response` object). */
  readonly content: string
}

/**
 * An image, document or audio clip a request sends, read back from its wire format.
 * @since 0.1.0 @category fake provider
 */
export interface FakeMedia {
  readonly kind: "image" | "file" | "audio"
  readonly mediaType?: string
  readonly filename?: string
  /** The URL, for media sent by URL. */
  readonly url?: string
  /** The size of media sent as bytes. */
  readonly bytes?: number
}

/**
 * What a chat request says, read back from its wire format, for a `Responder` scripting an
 * agent's next turn.
 * @since 0.1.0 @category fake provider
 */
export interface FakeTurn {
  /** 0 for the first chat request the fake answers (faults aside), then 1, 2, … */
  readonly turn: number
  /** The tool results after the last assistant turn, in order. */
  readonly toolResults: ReadonlyArray<FakeToolResult>
  /** The text of the last user message. */
  readonly lastUserText: string | undefined
  /** The names of the tools offered, the output tool of a structured reply included. */
  readonly tools: ReadonlyArray<string>
  /**
   * Reasoning state the request sends back, raw: Anthropic thinking blocks, Gemini
   * `thoughtSignature`s, Responses reasoning items; empty for the other formats.
   */
  readonly reasoningState: ReadonlyArray<unknown>
  /**
   * The images, documents and audio the request sends, in order (tool results' included).
   * Without a scripted text, the fake's reply says what it received.
   */
  readonly media: ReadonlyArray<FakeMedia>
}

/**
 * Chooses the answer per request; return undefined for `replies` or the default reply.
 * @since 0.1.0 @category fake provider
 */
export type Responder = (request: RecordedRequest, turn: FakeTurn) => Reply | Fault | undefined

/** @since 0.1.0 @category fake provider */
export interface FakeProviderOptions {
  readonly reply?: Reply
  /**
   * Replies by turn: the first chat request gets the first, and so on; the last repeats.
   * Faults and `respond` come first; `reply` answers when this is empty.
   */
  readonly replies?: ReadonlyArray<Reply>
  /** Faults applied, in order, to the first requests. */
  readonly faults?: ReadonlyArray<Fault>
  readonly respond?: Responder
  /** Default 0: a free port. */
  readonly port?: number
  /** Keep recorded requests (default true); benchmarks turn it off. */
  readonly record?: boolean
  /**
   * Zhipu `id.secret` keys: when set, every request must carry a Bearer JWT signed with one
   * of them, unexpired (what `OpenAiCompatible`'s `auth: "zhipu"` sends); others get a 401.
   */
  readonly zhipuKeys?: ReadonlyArray<string>
  /** What `GET /v1/key` answers, as OpenRouter's key endpoint does (its `data`). */
  readonly openRouterKey?: OpenRouterKey
  /**
   * The prompt cache's smallest cacheable prefix, in the fake's tokens (4 characters each).
   * Default 1024, the providers' documented minimum. The fake caches as each API does:
   * Anthropic at `cache_control` breakpoints (writes, then reads of a repeated prefix),
   * OpenAI and Gemini any repeated prefix of whole messages (reads); its usage reports both
   * in the API's own fields.
   */
  readonly promptCacheMinTokens?: number
  /** How the batch APIs behave (OpenAI's, Anthropic's, Gemini's): see `FakeBatchOptions`. */
  readonly batch?: FakeBatchOptions
}

/**
 * The fake's batch APIs: OpenAI's `/files` and `/batches`, Anthropic's
 * `/v1/messages/batches`, Gemini's `:batchGenerateContent` and `batches/…`. A batch ends on
 * its `pollsToComplete`-th poll (default 1); its items are then answered by the fake's own
 * live routes (replies, responders and usage as for live calls), unless `item` says otherwise.
 * @since 0.1.0 @category fake provider
 */
export interface FakeBatchOptions {
  /** The poll of a batch that sees it ended. Default 1. */
  readonly pollsToComplete?: number
  /** End every batch expired instead of completed; its first `answeredBeforeExpiry` items (default 0) keep their replies. */
  readonly expire?: boolean
  readonly answeredBeforeExpiry?: number
  /** What an item gets instead of its live reply, by custom id and position in its batch; undefined for the reply. */
  readonly item?: (customId: string, index: number) => FakeBatchItem | undefined
  /** Milliseconds before answering an upload or a batch creation. */
  readonly submitDelayMs?: number
  /** Milliseconds between the lines of a results download. */
  readonly lineDelayMs?: number
  /** The first N polls of each batch answer 503 (overloaded) and leave it where it was. */
  readonly failingPolls?: number
}

/**
 * An item's scripted outcome in a fake batch: an error reply (in the API's error shape), a
 * result line cut short, or no line at all.
 * @since 0.1.0 @category fake provider
 */
export type FakeBatchItem =
  | { readonly _tag: "Error"; readonly status: number; readonly message: string }
  | { readonly _tag: "Unparseable" }
  | { readonly _tag: "Omit" }

/**
 * OpenRouter's key endpoint's `data`: credit limit (null: none), usage and remaining credit
 * in USD, and the request rate.
 * @since 0.1.0 @category fake provider
 */
export interface OpenRouterKey {
  readonly label?: string
  readonly limit: number | null
  readonly usage: number
  readonly limit_remaining: number | null
  readonly is_free_tier?: boolean
  readonly rate_limit?: { readonly requests: number; readonly interval: string }
}

/** @since 0.1.0 @category fake provider */
export interface FakeProviderService {
  /** `http://127.0.0.1:PORT` */
  readonly url: string
  /** `url + "/v1"`, the OpenAI-style base URL. */
  readonly baseUrl: string
  readonly requests: Effect.Effect<ReadonlyArray<RecordedRequest>>
  /** Queues faults for the next requests, in order. */
  readonly inject: (...faults: ReadonlyArray<Fault>) => Effect.Effect<void>
  readonly setReply: (reply: Reply) => Effect.Effect<void>
  /** Replies by turn, counted from the next request. */
  readonly setReplies: (replies: ReadonlyArray<Reply>) => Effect.Effect<void>
  readonly setResponder: (respond: Responder | undefined) => Effect.Effect<void>
  readonly setOpenRouterKey: (key: OpenRouterKey) => Effect.Effect<void>
  /** How the batch APIs behave from now on (batches already submitted keep their polls so far). */
  readonly setBatch: (options: FakeBatchOptions) => Effect.Effect<void>
  /** Forgets recorded requests and queued faults. */
  readonly clear: Effect.Effect<void>
}

const makeFakeProvider = (options: FakeProviderOptions = {}): Effect.Effect<FakeProviderService, never, Scope.Scope> =>
  Effect.map(
    Effect.acquireRelease(Effect.promise(() => FakeServer.start(options)), (server) => Effect.promise(() => server.close())),
    (server): FakeProviderService => ({
      url: server.url,
      baseUrl: `${server.url}/v1`,
      requests: Effect.sync(() => [...server.requests]),
      inject: (...faults) => Effect.sync(() => void server.faults.push(...faults)),
      setReply: (reply) => Effect.sync(() => void (server.reply = reply)),
      setReplies: (replies) =>
        Effect.sync(() => {
          server.replies = replies
          server.turns = 0
        }),
      setResponder: (respond) => Effect.sync(() => void (server.respond = respond)),
      setOpenRouterKey: (key) => Effect.sync(() => void (server.openRouterKey = key)),
      setBatch: (options) => Effect.sync(() => void (server.batchOptions = options)),
      clear: Effect.sync(() => {
        server.requests.length = 0
        server.faults.length = 0
      })
    })
  )

/**
 * A real HTTP server on loopback, on a free port, closed when its scope closes.
 * @since 0.1.0 @category fake provider
 */
export class FakeProvider extends Context.Tag("effect-llm/Testing/FakeProvider")<FakeProvider, FakeProviderService>() {
  /** Starts a server in the current scope. */
  static readonly make = makeFakeProvider
  /** The server as a scoped layer. */
  static readonly layer = (options?: FakeProviderOptions): Layer.Layer<FakeProvider> =>
    Layer.scoped(FakeProvider, makeFakeProvider(options))
  /**
   * A model with no key and no network: the stack `ProviderConfig.forModel(model)` builds (the
   * provider its name tells, or `provider`; its wire API; retries), pointed at a new fake
   * server that answers in that API's format, with a made-up key. The server is in the layer
   * too, to script replies and faults and read what was sent. Swap it for `forModel` to call
   * the real provider.
   */
  static readonly layerModel = (
    model: string,
    options: FakeProviderOptions & { readonly provider?: string | undefined } = {}
  ): Layer.Layer<LanguageModel | FakeProvider, ProviderConfig.ProviderConfigError, HttpClient.HttpClient> =>
    Layer.unwrapScoped(Effect.gen(function*() {
      const fake = yield* makeFakeProvider(options)
      const provider = options.provider ?? Option.getOrElse(ProviderConfig.detectProvider(model), () => "openai")
      const api = registry.inferApi(provider, undefined) ?? "chat"
      // the provider's own base URL, on the fake's host: each API's routes answer under any prefix
      const baseUrl = fake.url + new URL(registry.defaultBaseUrl(provider, api)).pathname.replace(/\/$/, "")
      const config = yield* ProviderConfig.fromJson({ [provider]: [{ model_name: model, api, base_url: baseUrl, api_keys: ["sk-fake-key"] }] })
      return Layer.merge(config.models.layer(provider, model), Layer.succeed(FakeProvider, fake))
    }))
}

/**
 * Splits text into `n` near-equal pieces, as the fake streams it.
 * @since 0.1.0 @category fake provider
 */
export const splitText: (text: string, n: number) => Array<string> = split

// ---------------------------------------------------------------------------
// McpServer
// ---------------------------------------------------------------------------

export {
  McpServer,
  type McpServerCall,
  type McpServerCallContext,
  type McpServerFault,
  type McpServerOptions,
  type McpServerService,
  type McpServerTool
} from "./internal/testing/mcpServer.js"
