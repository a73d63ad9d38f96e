/**
 * Token counts. OpenAI-family models are counted with their real BPE (`gpt-tokenizer`:
 * o200k_base or cl100k_base), including the per-message overhead of the chat format and
 * tool definitions; other models get the ≈4-characters estimate, and the result says which.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type { ChatCompletionFunctionDefinition, ChatMessage } from "gpt-tokenizer/functionCalling"
import { mediaTokens } from "./internal/mediaTokens.js"
import * as Message from "./Message.js"

/** @since 0.1.0 @category models */
export interface TokenCount {
  readonly tokens: number
  /** True when the model's own BPE counted; false for the estimate. */
  readonly exact: boolean
}

/** @since 0.1.0 @category models */
export type Encoding = "o200k_base" | "cl100k_base"

/** @since 0.1.0 @category models */
export type Input = string | ReadonlyArray<Message.Message>

/** @since 0.1.0 @category models */
export interface CountOptions {
  /** Tool definitions sent with the messages; they count towards the prompt. */
  readonly tools?: ReadonlyArray<Message.ToolDefinition> | undefined
}

/** @since 0.1.0 @category models */
export interface Service {
  readonly count: (input: Input, model: string, options?: CountOptions) => Effect.Effect<TokenCount>
  /**
   * Each message's own tokens, and the overhead of the request around them (the reply's
   * priming and the tools), so that `count(messages) ≈ sum(perMessage) + overhead`.
   */
  readonly countEach: (
    messages: ReadonlyArray<Message.Message>,
    model: string,
    options?: CountOptions
  ) => Effect.Effect<{ readonly perMessage: ReadonlyArray<number>; readonly overhead: number; readonly exact: boolean }>
}

/**
 * The tokenizer `count` and `ContextWindow` use: a `Context.Reference` whose default is `make`'s
 * (the real BPE for OpenAI-family models, the estimate for the rest; the BPE tables load on
 * the first exact count). Provide `layerEstimate` to never load them.
 * @since 0.1.0 @category tags
 */
export class Tokenizer extends Context.Reference<Tokenizer>()("effect-llm/Tokenizer", {
  defaultValue: (): Service => Effect.runSync(make)
}) {}

/**
 * The BPE of an OpenAI-family model, or undefined for other families. Vendor prefixes
 * (`openai/gpt-4o`, as OpenRouter names them) and fine-tune names (`ft:gpt-4o-mini:…`) work.
 * @since 0.1.0 @category utils
 */
export const encodingFor = (model: string): Encoding | undefined => {
  let name = model.toLowerCase()
  if (name.startsWith("openai/")) name = name.slice("openai/".length)
  if (name.startsWith("ft:")) name = name.slice(3)
  if (/^(gpt-4o|gpt-4\.1|gpt-4\.5|gpt-5|gpt-oss|chatgpt-4o|o1|o3|o4|codex)/.test(name)) return "o200k_base"
  if (/^(gpt-4|gpt-3\.5|text-embedding-3|text-embedding-ada-002)/.test(name)) return "cl100k_base"
  return undefined
}

/** Images, documents and audio, by OpenAI's rule (image tiles; a page image and text per PDF page). */
const imagesIn = (message: Message.Message): number => {
  if ((message.role !== "user" && message.role !== "tool") || typeof message.content === "string") return 0
  let n = 0
  for (const part of message.content) if (part.type !== "text") n += mediaTokens(part, "openai")
  return n
}

// ---------------------------------------------------------------------------
// The estimate
// ---------------------------------------------------------------------------

/**
 * About four characters per token: the estimate for models whose tokenizer is not public.
 * @since 0.1.0 @category utils
 */
export const estimateText = (text: string): number => Math.ceil(text.length / 4)

const messageChars = (message: Message.Message): number => {
  let n = Message.contentText(message).length
  if (message.role === "assistant") {
    for (const call of message.toolCalls ?? []) n += call.name.length + call.arguments.length
    n += message.reasoning?.length ?? 0
  }
  return n
}

const toolChars = (tools: ReadonlyArray<Message.ToolDefinition> | undefined): number => {
  let n = 0
  for (const tool of tools ?? []) n += tool.name.length + (tool.description?.length ?? 0) + JSON.stringify(tool.parameters).length
  return n
}

const estimateEach = (messages: ReadonlyArray<Message.Message>, options?: CountOptions) => ({
  perMessage: messages.map((m) => Math.ceil(messageChars(m) / 4) + 4 + imagesIn(m)),
  overhead: 3 + Math.ceil(toolChars(options?.tools) / 4),
  exact: false
})

/**
 * The estimate, synchronously: cheap enough for the request hot path.
 * @since 0.1.0 @category utils
 */
export const estimate = (input: Input, options?: CountOptions): TokenCount => {
  if (typeof input === "string") return { tokens: estimateText(input), exact: false }
  const each = estimateEach(input, options)
  return { tokens: each.perMessage.reduce((a, b) => a + b, 0) + each.overhead, exact: false }
}

// ---------------------------------------------------------------------------
// The BPE
// ---------------------------------------------------------------------------

interface Bpe {
  readonly countText: (text: string) => number
  readonly countMessage: (message: ChatMessage) => number
  readonly countChat: (messages: ReadonlyArray<ChatMessage>, functions: ReadonlyArray<ChatCompletionFunctionDefinition> | undefined) => number
  readonly countFunctions: (functions: ReadonlyArray<ChatCompletionFunctionDefinition>) => number
}

// The encodings are large (o200k loads in ~0.3 s): load each once, on first use.
const loaded = new Map<Encoding, Promise<Bpe>>()

const loadBpe = (encoding: Encoding): Promise<Bpe> => {
  let bpe = loaded.get(encoding)
  if (bpe === undefined) {
    bpe = Promise.all([
      encoding === "o200k_base" ? import("gpt-tokenizer/encoding/o200k_base") : import("gpt-tokenizer/encoding/cl100k_base"),
      import("gpt-tokenizer/functionCalling")
    ]).then(([enc, fc]) => {
      // text that happens to spell a special token is counted as text, as the API does
      const countText = (text: string) => enc.countTokens(text, { disallowedSpecial: new Set() })
      return {
        countText,
        countMessage: (message) => fc.countMessageTokens(message, countText),
        countChat: (messages, functions) =>
          fc.computeChatCompletionTokenCount(
            functions === undefined || functions.length === 0 ? { messages } : { messages, functions },
            countText
          ),
        countFunctions: (functions) => fc.estimateTokensInFunctions(functions, countText)
      }
    })
    loaded.set(encoding, bpe)
  }
  return bpe
}

const toChatMessages = (message: Message.Message): Array<ChatMessage> => {
  switch (message.role) {
    case "system":
      return [{ role: "system", content: message.content }]
    case "user":
      return [{ role: "user", content: Message.contentText(message) }]
    case "tool":
      return [{ role: "tool", content: Message.contentText(message) }]
    case "assistant": {
      const calls = message.toolCalls ?? []
      if (calls.length === 0) return [{ role: "assistant", content: message.content }]
      return calls.map((call, i) => ({
        role: "assistant",
        content: i === 0 ? message.content : "",
        function_call: { name: call.name, arguments: call.arguments }
      }))
    }
  }
}

const toFunctions = (tools: ReadonlyArray<Message.ToolDefinition> | undefined): Array<ChatCompletionFunctionDefinition> | undefined =>
  tools === undefined || tools.length === 0
    ? undefined
    : tools.map((tool) => {
      const fn: ChatCompletionFunctionDefinition = {
        name: tool.name,
        parameters: tool.parameters as unknown as NonNullable<ChatCompletionFunctionDefinition["parameters"]>
      }
      return tool.description === undefined ? fn : { ...fn, description: tool.description }
    })

/** gpt-tokenizer renders tools as TypeScript; a schema it cannot render is counted as its JSON. */
const functionTokens = (bpe: Bpe, tools: ReadonlyArray<Message.ToolDefinition> | undefined): number => {
  const functions = toFunctions(tools)
  if (functions === undefined) return 0
  try {
    return bpe.countFunctions(functions)
  } catch {
    return bpe.countText(JSON.stringify(tools)) + 9
  }
}

const bpeCount = (bpe: Bpe, input: Input, options?: CountOptions): number => {
  if (typeof input === "string") return bpe.countText(input)
  const chat = input.flatMap(toChatMessages)
  let images = 0
  for (const message of input) images += imagesIn(message)
  try {
    return bpe.countChat(chat, toFunctions(options?.tools)) + images
  } catch {
    return bpe.countChat(chat, undefined) + functionTokens(bpe, options?.tools) + images
  }
}

const bpeEach = (bpe: Bpe, messages: ReadonlyArray<Message.Message>, options?: CountOptions) => ({
  perMessage: messages.map((message) => {
    let n = imagesIn(message)
    for (const chat of toChatMessages(message)) n += bpe.countMessage(chat)
    return n
  }),
  overhead: 3 + functionTokens(bpe, options?.tools),
  exact: true
})

/**
 * The tokenizer: the real BPE for OpenAI-family models, the estimate for the rest.
 * @since 0.1.0 @category constructors
 */
export const make: Effect.Effect<Service> = Effect.sync(() => {
  const withBpe = <A>(model: string, exact: (bpe: Bpe) => A, otherwise: () => A): Effect.Effect<A> => {
    const encoding = encodingFor(model)
    if (encoding === undefined) return Effect.sync(otherwise)
    return Effect.map(Effect.promise(() => loadBpe(encoding)), exact)
  }
  return {
    count: (input, model, options) =>
      withBpe(model, (bpe): TokenCount => ({ tokens: bpeCount(bpe, input, options), exact: true }), () => estimate(input, options))
        .pipe(Effect.withSpan("Tokenizer.count")),
    countEach: (messages, model, options) =>
      withBpe(model, (bpe) => bpeEach(bpe, messages, options), () => estimateEach(messages, options))
  }
})

/**
 * The estimate for every model: no BPE is ever loaded.
 * @since 0.1.0 @category constructors
 */
export const estimateOnly: Service = {
  count: (input, _model, options) => Effect.succeed(estimate(input, options)),
  countEach: (messages, _model, options) => Effect.succeed(estimateEach(messages, options))
}

/** @since 0.1.0 @category layers */
export const layer: Layer.Layer<Tokenizer> = Layer.effect(Tokenizer, make)

/** @since 0.1.0 @category layers */
export const layerEstimate: Layer.Layer<Tokenizer> = Layer.succeed(Tokenizer, estimateOnly)

/**
 * The `Tokenizer` in context, or its default (BPE for OpenAI models) when none is provided.
 * @since 0.1.0 @category accessors
 */
export const current: Effect.Effect<Service> = Tokenizer

/** @since 0.1.0 @category accessors */
export const count = (input: Input, model: string, options?: CountOptions): Effect.Effect<TokenCount> =>
  Effect.flatMap(current, (t) => t.count(input, model, options))
