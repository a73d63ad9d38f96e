/**
 * Fitting a conversation into a model's context window: keep the system prompt and the
 * newest turns, drop (or summarise) the oldest, never separate a tool call from its results.
 * `fit` does it once; `layer` does it to every request, before it is sent.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import { decorate, type Decorator, LanguageModel, wrap } from "./LanguageModel.js"
import * as catalog from "./internal/catalog.js"
import { mostTokens } from "./internal/mediaTokens.js"
import * as Streams from "./internal/streams.js"
import { ContextLengthError, type LlmError } from "./LlmError.js"
import * as Message from "./Message.js"
import * as Tokenizer from "./Tokenizer.js"

/**
 * Turns dropped messages into a summary text, which `fit` puts after the system prompt.
 * @since 0.1.0 @category models
 */
export type Compactor = (dropped: ReadonlyArray<Message.Message>) => Effect.Effect<string, LlmError>

/** @since 0.1.0 @category models */
export interface FitOptions {
  readonly contextWindow: number
  /** Tokens kept free for the reply. */
  readonly reserve: number
  /** Chooses the tokenizer: the real BPE for OpenAI models, the estimate for others. */
  readonly model?: string | undefined
  /** Named in a `ContextLengthError`. */
  readonly provider?: string | undefined
  /** Tool definitions sent with the request; they take room too. */
  readonly tools?: ReadonlyArray<Message.ToolDefinition> | undefined
  readonly compact?: Compactor | undefined
  /**
   * With `compact`, the share of the window (after `reserve`) past which the oldest turns are
   * summarised even though they still fit, so that a long conversation is compacted before
   * it is cut. Default 0.9.
   */
  readonly compactAt?: number | undefined
  /**
   * How many of the newest turns are kept before any message's `importance` counts: a
   * conversation keeps what is recent, then what is important, then what is oldest.
   * Default 4.
   */
  readonly recent?: number | undefined
}

/**
 * How full the window is after fitting.
 * @since 0.1.0 @category models
 */
export interface Status {
  /** The prompt's tokens, tools and overhead included. */
  readonly tokens: number
  /** The tokens the window leaves for the prompt: `contextWindow − reserve`. */
  readonly window: number
  /** `tokens / window`, in percent. */
  readonly percent: number
  /** Messages dropped (whether or not summarised). */
  readonly dropped: number
  /** Messages replaced by a summary. */
  readonly compacted: number
}

/** @since 0.1.0 @category models */
export interface FitResult {
  readonly messages: ReadonlyArray<Message.Message>
  /** Dropped messages, oldest first; empty when everything fitted. */
  readonly dropped: ReadonlyArray<Message.Message>
  /** The prompt's tokens after fitting, tools and overhead included. */
  readonly tokens: number
  readonly exact: boolean
  /** True when a summary of the dropped messages was added. */
  readonly summarized: boolean
  readonly status: Status
}

/**
 * The window assumed for a model that neither its options nor the model catalog know.
 * @since 0.1.0 @category defaults
 */
export const defaultContextWindow = 200_000

/** @since 0.1.0 @category metrics */
export const droppedMessages = Metric.counter("effect_llm_context_dropped_messages_total", {
  description: "Messages dropped by ContextWindow to fit a request into the model's window",
  incremental: true
})

/** The first index of each unit that must be kept or dropped whole: a tool call with its results. */
const unitsOf = (messages: ReadonlyArray<Message.Message>, from: number): Array<readonly [number, number]> => {
  const units: Array<readonly [number, number]> = []
  let i = from
  while (i < messages.length) {
    const message = messages[i]!
    let end = i + 1
    if (message.role === "assistant" && message.toolCalls !== undefined && message.toolCalls.length > 0) {
      const ids = new Set(message.toolCalls.map((c) => c.id))
      while (end < messages.length) {
        const next = messages[end]!
        if (next.role !== "tool" || !ids.has(next.toolCallId)) break
        end++
      }
    }
    units.push([i, end])
    i = end
  }
  return units
}

const summaryMessage = (summary: string): Message.SystemMessage =>
  Message.system(`Summary of the earlier part of this conversation:\n${summary}`)

/** A unit's importance: the highest of its messages' (default 0). */
const importanceOf = (messages: ReadonlyArray<Message.Message>, [start, end]: readonly [number, number]): number => {
  let most = -Infinity
  for (let i = start; i < end; i++) {
    const message = messages[i]!
    const importance = message.role === "system" ? 0 : message.importance ?? 0
    if (importance > most) most = importance
  }
  return most
}

/**
 * The order in which units are kept: the newest first (it must fit), then the rest of the
 * `recent` newest, then the older ones; within each band the more important first, and among
 * equals the newer. A kept set is always a prefix of this order, so that nothing is kept
 * while something before it in the order is dropped.
 */
const keepOrder = (messages: ReadonlyArray<Message.Message>, units: ReadonlyArray<readonly [number, number]>, recent: number) => {
  const n = units.length
  if (n === 0) return []
  const byImportance = (indices: Array<number>) => {
    const weight = new Map(indices.map((u) => [u, importanceOf(messages, units[u]!)]))
    return indices.sort((a, b) => weight.get(b)! - weight.get(a)! || b - a)
  }
  const bandStart = Math.max(0, n - Math.max(1, recent))
  const recentBand: Array<number> = []
  for (let u = n - 2; u >= bandStart; u--) recentBand.push(u)
  const olderBand: Array<number> = []
  for (let u = bandStart - 1; u >= 0; u--) olderBand.push(u)
  return [n - 1, ...byImportance(recentBand), ...byImportance(olderBand)]
}

/**
 * Fits `messages` into `contextWindow − reserve` tokens. The leading system messages are
 * always kept; then whole units (a message, or an assistant tool call with its results): the
 * newest, then the rest of the `recent` newest, then older ones, the more `importance` first
 * within each band, as many as fit in that order. With `compact`, the dropped units are
 * summarised into one system message after the system prompt, when the summary fits; and
 * when the prompt passes `compactAt` of the window, it is compacted down to that share. Fails
 * with `ContextLengthError` when the system prompt (with tools) or the newest unit cannot fit.
 * @since 0.1.0 @category fitting
 */
export const fit = (
  messages: ReadonlyArray<Message.Message>,
  options: FitOptions
): Effect.Effect<FitResult, ContextLengthError> =>
  Effect.gen(function* () {
    const tokenizer = yield* Tokenizer.current
    const model = options.model ?? ""
    const countOptions = { tools: options.tools }
    const budget = options.contextWindow - options.reserve
    const failure = (message: string) =>
      new ContextLengthError({ provider: options.provider ?? "unknown", model: options.model ?? "unknown", message })

    const { perMessage, overhead, exact } = yield* tokenizer.countEach(messages, model, countOptions)
    let system = 0
    while (system < messages.length && messages[system]!.role === "system") system++
    let fixed = overhead
    for (let i = 0; i < system; i++) fixed += perMessage[i]!
    if (fixed > budget) {
      return yield* failure(
        `the system prompt${options.tools?.length ? " and tool definitions" : ""} take ${fixed} tokens, ` +
          `more than the ${budget} the window leaves (contextWindow ${options.contextWindow} − reserve ${options.reserve})`
      )
    }

    const units = unitsOf(messages, system)
    const unitTokens = units.map(([s, e]) => {
      let n = 0
      for (let i = s; i < e; i++) n += perMessage[i]!
      return n
    })
    if (units.length > 0 && fixed + unitTokens[units.length - 1]! > budget) {
      const [s, e] = units[units.length - 1]!
      return yield* failure(
        `the newest ${e - s > 1 ? "tool call and its results take" : "message takes"} ${unitTokens[units.length - 1]} tokens; ` +
          `with the system prompt (${fixed}) that is over the ${budget} the window leaves ` +
          `(contextWindow ${options.contextWindow} − reserve ${options.reserve})`
      )
    }

    const order = keepOrder(messages, units, options.recent ?? 4)
    // how many units of `order` fit under `target`, as a prefix
    const fitting = (target: number) => {
      let used = fixed
      let kept = 0
      while (kept < order.length && used + unitTokens[order[kept]!]! <= target) used += unitTokens[order[kept++]!]!
      return kept
    }
    const head = messages.slice(0, system)
    const keptMessages = (count: number) => {
      const kept = order.slice(0, count).sort((a, b) => a - b)
      const out: Array<Message.Message> = []
      for (const u of kept) for (let i = units[u]![0]; i < units[u]![1]; i++) out.push(messages[i]!)
      return out
    }
    const droppedMessages = (count: number) => {
      const kept = new Set(order.slice(0, count))
      const out: Array<Message.Message> = []
      for (let u = 0; u < units.length; u++) {
        if (!kept.has(u)) for (let i = units[u]![0]; i < units[u]![1]; i++) out.push(messages[i]!)
      }
      return out
    }

    let count = fitting(budget)
    // the per-message sum can differ from the whole-request count by a token or two (tool
    // padding); check the whole and give up the last kept unit if needed
    let total = yield* tokenizer.count([...head, ...keptMessages(count)], model, countOptions)
    while (total.tokens > budget && count > 1) {
      count--
      total = yield* tokenizer.count([...head, ...keptMessages(count)], model, countOptions)
    }
    if (total.tokens > budget) {
      return yield* failure(`the newest message does not fit: ${total.tokens} tokens, over the ${budget} the window leaves`)
    }
    const statusOf = (tokens: number, dropped: number, compacted: number): Status => ({
      tokens,
      window: budget,
      percent: budget <= 0 ? 100 : (tokens / budget) * 100,
      dropped,
      compacted
    })

    if (options.compact !== undefined) {
      // compact before the window is full: down to `compactAt` of it, when that leaves the newest
      const threshold = Math.floor(budget * (options.compactAt ?? 0.9))
      if (total.tokens > threshold) {
        const under = fitting(threshold)
        if (under >= 1 && under < count) count = under
      }
      const dropped = droppedMessages(count)
      if (dropped.length > 0) {
        const summary = yield* options.compact(dropped).pipe(
          Effect.map((text) => [summaryMessage(text)]),
          Effect.catchAll((error) =>
            Effect.as(Effect.logWarning(`ContextWindow: summarising dropped turns failed, dropping them instead: ${error.message}`), [])
          )
        )
        const kept = keptMessages(count)
        if (summary.length > 0) {
          const withSummary = yield* tokenizer.count([...head, ...summary, ...kept], model, countOptions)
          if (withSummary.tokens <= budget) {
            return {
              messages: [...head, ...summary, ...kept],
              dropped,
              tokens: withSummary.tokens,
              exact,
              summarized: true,
              status: statusOf(withSummary.tokens, dropped.length, dropped.length)
            }
          }
        }
        const plain = yield* tokenizer.count([...head, ...kept], model, countOptions)
        return { messages: [...head, ...kept], dropped, tokens: plain.tokens, exact, summarized: false, status: statusOf(plain.tokens, dropped.length, 0) }
      }
    }
    const dropped = droppedMessages(count)
    return {
      messages: dropped.length === 0 ? messages : [...head, ...keptMessages(count)],
      dropped,
      tokens: total.tokens,
      exact,
      summarized: false,
      status: statusOf(total.tokens, dropped.length, 0)
    }
  }).pipe(Effect.withSpan("ContextWindow.fit"))

/**
 * A `Compactor` that asks `model` for a summary of the dropped turns. The transcript it
 * sends is cut to its newest `maxChars` characters (default 32 000), so it fits too.
 * @since 0.1.0 @category fitting
 */
export const summarizeWith = (
  model: LanguageModel["Type"],
  options: { readonly maxChars?: number; readonly maxTokens?: number; readonly instructions?: string } = {}
): Compactor =>
(dropped) => {
  const transcript = dropped.map((m) => {
    const calls = m.role === "assistant" && m.toolCalls !== undefined
      ? m.toolCalls.map((c) => ` [called ${c.name}(${c.arguments})]`).join("")
      : ""
    return `${m.role}: ${Message.contentText(m)}${calls}`
  }).join("\n")
  const maxChars = options.maxChars ?? 32_000
  const clipped = transcript.length > maxChars ? transcript.slice(transcript.length - maxChars) : transcript
  return Effect.map(
    model.chat(
      Message.request(
        [
          Message.system(
            options.instructions ??
              "Summarise this conversation excerpt in a few sentences. Keep facts, decisions, names and open questions."
          ),
          Message.user(clipped)
        ],
        { maxTokens: options.maxTokens ?? 512, cache: "bypass" }
      )
    ),
    (response) => response.text
  )
}

/** @since 0.1.0 @category models */
export interface Report {
  readonly provider: string
  readonly model: string
  readonly dropped: ReadonlyArray<Message.Message>
  readonly tokens: number
  readonly summarized: boolean
  readonly status: Status
}

/** @since 0.1.0 @category models */
export interface Options {
  /** Default: the model's `contextWindow`, else the model catalog's window for it, else 200 000. */
  readonly contextWindow?: number | undefined
  /** Tokens kept free for the reply; a request's `maxTokens` raises it. Default 0. */
  readonly reserve?: number | undefined
  /** A compactor, or `"summarize"` to have the decorated model summarise what is dropped. */
  readonly compact?: Compactor | "summarize" | undefined
  /** Called whenever messages were dropped; the decorator also logs and counts it. */
  readonly onFit?: ((report: Report) => Effect.Effect<void>) | undefined
  /** See `FitOptions.compactAt`. Default 0.9. */
  readonly compactAt?: number | undefined
  /** See `FitOptions.recent`. Default 4. */
  readonly recent?: number | undefined
}

/**
 * A conservative bound: a BPE token is at least one UTF-8 byte, a UTF-16 unit at most three
 * bytes, and each message's framing a few tokens. Below it a request fits without counting.
 */
const upperBound = (messages: ReadonlyArray<Message.Message>): number => {
  let n = 3
  for (const message of messages) {
    n += 10
    if (typeof message.content === "string") n += message.content.length * 3
    else for (const part of message.content) n += part.type === "text" ? part.text.length * 3 : mostTokens(part)
    if (message.role === "assistant") {
      n += (message.reasoning?.length ?? 0) * 3
      for (const call of message.toolCalls ?? []) n += (call.name.length + call.arguments.length) * 3 + 10
    }
    if (message.role === "tool") n += message.toolCallId.length * 3
  }
  return n
}

/**
 * The decorator: every request is fitted to the window of the model below before it is sent.
 * @since 0.1.0 @category decorators
 */
export const decorator = (options: Options = {}): Decorator => (upstream) =>
  // the catalog's window is needed only when neither the options nor the model give one
  options.contextWindow !== undefined || upstream.contextWindow !== undefined
    ? Effect.sync(() => fitted(upstream, options, undefined))
    : Effect.map(catalog.load, (known) => fitted(upstream, options, known))

const fitted = (upstream: LanguageModel["Type"], options: Options, known: catalog.Catalog | undefined): LanguageModel["Type"] => {
  const compact = options.compact === "summarize" ? summarizeWith(upstream) : options.compact
  const windowOf = (request: Message.ChatRequest) =>
    options.contextWindow ?? upstream.contextWindow ??
      known?.lookup(upstream.provider, request.model ?? upstream.model)?.contextWindow ?? defaultContextWindow
  // the common case, a request far below the window, costs one pass over the text (with a
  // compactor, below the share of the window where compaction starts) and goes on as it is,
  // without a span of its own: an idle decorator costs next to nothing
  const fitsAsIs = (request: Message.ChatRequest) =>
    (request.tools === undefined || request.tools.length === 0) &&
    upperBound(request.messages) <=
      (windowOf(request) - Math.max(options.reserve ?? 0, request.maxTokens ?? 0)) * (compact === undefined ? 1 : options.compactAt ?? 0.9)
  const prepare = (request: Message.ChatRequest): Effect.Effect<Message.ChatRequest, ContextLengthError> => {
    const contextWindow = windowOf(request)
    const reserve = Math.max(options.reserve ?? 0, request.maxTokens ?? 0)
    const model = request.model ?? upstream.model
    return fit(request.messages, {
      contextWindow,
      reserve,
      model,
      provider: upstream.provider,
      tools: request.tools,
      compact,
      compactAt: options.compactAt,
      recent: options.recent
    }).pipe(
      Effect.tap((result) => {
        if (result.dropped.length === 0) return Effect.void
        const report: Report = {
          provider: upstream.provider,
          model,
          dropped: result.dropped,
          tokens: result.tokens,
          summarized: result.summarized,
          status: result.status
        }
        return Effect.all([
          Metric.incrementBy(droppedMessages, result.dropped.length),
          Effect.annotateCurrentSpan({ "context.dropped": result.dropped.length, "context.summarized": result.summarized }),
          Effect.logInfo(
            `ContextWindow: dropped ${result.dropped.length} oldest message(s)${result.summarized ? " (summarised)" : ""} ` +
              `to fit ${model} into ${contextWindow - reserve} tokens; the prompt is now ${result.tokens}`
          ),
          options.onFit === undefined ? Effect.void : options.onFit(report)
        ], { discard: true })
      }),
      Effect.map((result) => (result.dropped.length === 0 ? request : { ...request, messages: result.messages }))
    )
  }
  return wrap(upstream, {
    chat: (request) =>
      fitsAsIs(request) ? upstream.chat(request) : Effect.flatMap(prepare(request), upstream.chat).pipe(Effect.withSpan("ContextWindow.chat")),
    stream: (request, tracker) =>
      fitsAsIs(request)
        ? upstream.stream(request, tracker)
        : Streams.withSpan(Streams.unwrap(Effect.map(prepare(request), (fitted) => upstream.stream(fitted, tracker))), "ContextWindow.stream")
  })
}

/**
 * @since 0.1.0 @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<LanguageModel, never, LanguageModel> => decorate(decorator(options))
