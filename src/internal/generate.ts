/**
 * The application layer over `LanguageModel`: the tool loop (`generateText`, `streamText`) and
 * structured output (`generateObject`, `streamObject`). Everything here calls the service's
 * `chat` and `stream`, so every decorator below applies to each step.
 */
import * as Chunk from "effect/Chunk"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as JSONSchema from "effect/JSONSchema"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { excerptOf, InvalidRequestError, type LlmError, StructuredOutputError } from "../LlmError.js"
import * as Message from "../Message.js"
import * as Tool from "../Tool.js"
import type * as Toolkit from "../Toolkit.js"
import * as Decode from "./decode.js"
import { attributes } from "./metrics.js"
import { Accumulator, LanguageModel } from "./languageModel.js"
import { PartialJson } from "./partialJson.js"
import { fromPrompt, type Prompt } from "./prompt.js"
import * as Streams from "./streams.js"
import { add as addUsage, empty as emptyUsage } from "./usage.js"

// ---------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------

export interface ToolResult {
  readonly id: string
  readonly name: string
  /** True when the call failed: arguments that did not decode, an unknown tool, a handler failure. */
  readonly isError: boolean
  /**
   * What is sent back to the model: JSON of the encoded success or failure, or the problem;
   * a dynamic tool's text or parts (an MCP server's images and documents).
   */
  readonly content: string | ReadonlyArray<Message.ToolResultPart>
  /** The handler's success value, when it succeeded; what a dynamic tool reports as its value. */
  readonly value?: unknown
  /** A dynamic tool's typed failure (an MCP server's call error), when it reports one. */
  readonly error?: unknown
}

export interface Step {
  /** 1 for the first model call. */
  readonly index: number
  readonly response: Message.ChatResponse
  readonly toolCalls: ReadonlyArray<Message.ToolCall>
  readonly toolResults: ReadonlyArray<ToolResult>
}

export interface GenerateTextResult {
  readonly text: string
  readonly finishReason: Message.FinishReason
  readonly response: Message.ChatResponse
  readonly steps: ReadonlyArray<Step>
  readonly messages: ReadonlyArray<Message.Message>
  readonly usage: Message.Usage
}

export interface LoopOptions<T extends Tool.Any> {
  readonly toolkit?: Toolkit.Toolkit<T> | undefined
  readonly maxSteps?: number | undefined
  readonly concurrency?: number | "unbounded" | undefined
}

/** The request: a whole `ChatRequest`, or its short form (`system`, `prompt` and any option). */
export type RequestInput = { readonly request: Message.ChatRequest } | Prompt

export type GenerateTextOptions<T extends Tool.Any> = LoopOptions<T> & RequestInput

export type TextStreamEvent =
  | { readonly _tag: "TextDelta"; readonly step: number; readonly text: string }
  | { readonly _tag: "ReasoningDelta"; readonly step: number; readonly text: string }
  | { readonly _tag: "ToolCall"; readonly step: number; readonly call: Message.ToolCall }
  | { readonly _tag: "ToolResult"; readonly step: number; readonly result: ToolResult }
  | { readonly _tag: "StepFinish"; readonly step: Step }
  | { readonly _tag: "Finish"; readonly result: GenerateTextResult }

export interface ObjectOptions<A, I> {
  readonly schema: Schema.Schema<A, I, never>
  readonly name?: string | undefined
  readonly description?: string | undefined
  readonly repairAttempts?: number | undefined
}

export type GenerateObjectOptions<A, I> = ObjectOptions<A, I> & RequestInput

export interface GenerateObjectResult<A> {
  readonly value: A
  /** The reply that decoded. */
  readonly response: Message.ChatResponse
  /** Model calls made, repairs included. */
  readonly attempts: number
  /** Usage summed over the attempts. */
  readonly usage: Message.Usage
}

export type ObjectStreamEvent<A> =
  | { readonly _tag: "Partial"; readonly attempt: number; readonly value: unknown }
  | { readonly _tag: "Repair"; readonly attempt: number; readonly issues: ReadonlyArray<string> }
  | { readonly _tag: "Object"; readonly value: A; readonly response: Message.ChatResponse; readonly attempts: number }

// ---------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------

/** The request of text options: `request`, or the short form without the loop's own options. */
const textRequest = <T extends Tool.Any>(options: GenerateTextOptions<T>): Message.ChatRequest => {
  if ("request" in options) return options.request
  const { concurrency: _concurrency, maxSteps: _maxSteps, toolkit: _toolkit, ...prompt } = options
  return fromPrompt(prompt)
}

/** The request of object options: `request`, or the short form without the object's own options. */
const objectRequest = <A, I>(options: GenerateObjectOptions<A, I>): Message.ChatRequest => {
  if ("request" in options) return options.request
  const { description: _description, name: _name, repairAttempts: _repairs, schema: _schema, ...prompt } = options
  return fromPrompt(prompt)
}

const isWhole = (value: unknown, min: number): value is number => typeof value === "number" && Number.isInteger(value) && value >= min

/** Options are checked as requests are: a number the loop cannot use is refused before any model call. */
const invalidOption = (model: LanguageModel["Type"], name: string, value: unknown, rule: string) =>
  new InvalidRequestError({
    provider: model.provider,
    model: model.model,
    message: `invalid options, not sent: ${name} must be ${rule}, got ${typeof value === "string" ? JSON.stringify(value) : String(value)}`
  })

const defaultMaxSteps = 10
const defaultRepairAttempts = 1

/** `maxSteps` and `concurrency` as the loop uses them, or the error naming the one it cannot. */
const loopOptions = <T extends Tool.Any>(model: LanguageModel["Type"], options: GenerateTextOptions<T>) => {
  const maxSteps = options.maxSteps ?? defaultMaxSteps
  if (!isWhole(maxSteps, 1)) return invalidOption(model, "maxSteps", maxSteps, "a whole number of at least 1")
  const concurrency = options.concurrency ?? "unbounded"
  if (concurrency === "unbounded" || concurrency === Infinity) return { maxSteps, concurrency: "unbounded" as const }
  if (!isWhole(concurrency, 1)) return invalidOption(model, "concurrency", concurrency, "a whole number of at least 1, or \"unbounded\"")
  return { maxSteps, concurrency }
}

/** `repairAttempts` as the repair loop uses it, or the error naming it. */
const repairsOf = <A, I>(model: LanguageModel["Type"], options: GenerateObjectOptions<A, I>): number | InvalidRequestError => {
  const repairs = options.repairAttempts ?? defaultRepairAttempts
  return isWhole(repairs, 0) ? repairs : invalidOption(model, "repairAttempts", repairs, "a whole number of at least 0")
}

// ---------------------------------------------------------------------------
// Tool calls
// ---------------------------------------------------------------------------

const problem = (call: Message.ToolCall, text: string): ToolResult => ({
  id: call.id,
  name: call.name,
  isError: true,
  content: JSON.stringify({ error: text })
})

/** A model's text quoted in a tool error: a name or arguments may be megabytes. */
const quoted = (text: string): string => JSON.stringify(excerptOf(text, 80))

/**
 * A call's arguments read as JSON: the object, or why they are not one. Blank arguments are
 * `{}`, as every wire format reads them.
 */
const readArguments = (text: string): Either.Either<unknown, string> => {
  if (text.trim().length === 0) return Either.right({})
  return Either.flatMap(Decode.parseJson(text), (json) =>
    typeof json === "object" && json !== null && !Array.isArray(json)
      ? Either.right(json)
      : Either.left(`not a JSON object: got ${Array.isArray(json) ? "an array" : json === null ? "null" : `a ${typeof json}`}`))
}

/** One call: decode, handle, encode. Failures the model can act on become error results; defects stay defects. */
const runCall = (
  toolkit: Toolkit.Any,
  context: Context.Context<never>,
  call: Message.ToolCall,
  args: Either.Either<unknown, string>
): Effect.Effect<ToolResult> =>
  Effect.suspend((): Effect.Effect<ToolResult> => {
    const tool = Object.hasOwn(toolkit.tools, call.name) ? toolkit.tools[call.name] : undefined
    if (tool === undefined) {
      return Effect.succeed(problem(call, `there is no tool named ${quoted(call.name)}; the tools are ${Object.keys(toolkit.tools).join(", ")}`))
    }
    const decoded = Either.match(args, {
      onLeft: (issue): Either.Either<unknown, string> => Either.left(issue),
      onRight: (json) => Either.mapLeft(Decode.decodeValue(tool.parameters, json), (issues) => issues.join("; "))
    })
    if (Either.isLeft(decoded)) {
      const received = Either.isLeft(args) ? ` (received ${quoted(call.arguments)})` : ""
      return Effect.succeed(problem(call, `the arguments of ${call.name} are invalid: ${decoded.left}${received}. Call ${call.name} again with corrected arguments.`))
    }
    if (Tool.isDynamic(tool)) {
      return Effect.map(tool.handle(decoded.right), (result): ToolResult => {
        const out: { -readonly [K in keyof ToolResult]: ToolResult[K] } = { id: call.id, name: call.name, isError: result.isError, content: result.content }
        if (result.value !== undefined) out.value = result.value
        if (result.error !== undefined) out.error = result.error
        return out
      })
    }
    const handler = Context.unsafeGet(context, Tool.handlerTag(call.name))
    const success = tool.success as Schema.Schema<unknown, unknown, never>
    const failure = tool.failure as Schema.Schema<unknown, unknown, never>
    return Effect.matchEffect(handler.handle(decoded.right), {
      onFailure: (error) =>
        Effect.map(Effect.orDie(Schema.encode(failure)(error)), (encoded): ToolResult => ({
          id: call.id,
          name: call.name,
          isError: true,
          content: JSON.stringify(encoded) ?? "null"
        })),
      onSuccess: (value) =>
        Effect.map(Effect.orDie(Schema.encode(success)(value)), (encoded): ToolResult => ({
          id: call.id,
          name: call.name,
          isError: false,
          content: JSON.stringify(encoded) ?? "null",
          value
        }))
    })
  }).pipe(
    // named by the toolkit's tool, never by a name only the model made up (which could be anything)
    Effect.withSpan(Object.hasOwn(toolkit.tools, call.name) ? `Tool.call ${call.name}` : "Tool.call (no such tool)", {
      attributes: { [attributes.toolName]: excerptOf(call.name, 80), [attributes.toolCallId]: excerptOf(call.id, 80) },
      captureStackTrace: false
    })
  )

/**
 * The reply as the transcript carries it. Arguments that are not a JSON object go back as
 * `{}`: no API that takes arguments as an object (Anthropic, Gemini, Ollama) could send them
 * back, and the call's tool error quotes what came.
 */
const transcriptMessage = (
  response: Message.ChatResponse,
  args: ReadonlyArray<Either.Either<unknown, string>>
): Message.AssistantMessage => {
  const message = Message.fromResponse(response)
  if (!args.some(Either.isLeft) || message.toolCalls === undefined) return message
  return { ...message, toolCalls: message.toolCalls.map((call, i) => (Either.isLeft(args[i]!) ? { ...call, arguments: "{}" } : call)) }
}

const resultMessage = (result: ToolResult): Message.ToolMessage =>
  Message.tool(result.id, result.content, result.name, { isError: result.isError })

/** The request of one step: the caller's, with the transcript so far and the toolkit's tools. */
const stepRequest = (request: Message.ChatRequest, toolkit: Toolkit.Any | undefined, messages: ReadonlyArray<Message.Message>): Message.ChatRequest => {
  if (toolkit === undefined) return { ...request, messages }
  const names = new Set(toolkit.definitions.map((d) => d.name))
  const own = (request.tools ?? []).filter((t) => !names.has(t.name))
  return { ...request, messages, tools: [...own, ...toolkit.definitions] }
}

/** The loop's state, shared by `generateText` and `streamText`. */
class Loop {
  readonly messages: Array<Message.Message>
  readonly steps: Array<Step> = []
  usage: Message.Usage = emptyUsage
  constructor(
    readonly request: Message.ChatRequest,
    readonly toolkit: Toolkit.Any | undefined,
    readonly maxSteps: number,
    readonly concurrency: number | "unbounded",
    readonly context: Context.Context<never>
  ) {
    this.messages = [...request.messages]
  }

  get next(): Message.ChatRequest {
    return stepRequest(this.request, this.toolkit, [...this.messages])
  }

  /** The toolkit's `refresh`, run before each step, when it has one (a list that changes). */
  get refresh(): Effect.Effect<void> | undefined {
    return this.toolkit?.refresh
  }

  /** Runs the reply's tool calls; the step, and whether the loop goes on. */
  afterReply(response: Message.ChatResponse): Effect.Effect<{ readonly step: Step; readonly done: boolean }> {
    const index = this.steps.length + 1
    this.usage = addUsage(this.usage, response.usage)
    const toolkit = this.toolkit
    const calls = response.toolCalls
    // with no toolkit the calls are the caller's to run: the loop ends with them pending, as sent
    const args = toolkit === undefined ? [] : calls.map((call) => readArguments(call.arguments))
    this.messages.push(transcriptMessage(response, args))
    const results = toolkit === undefined || calls.length === 0
      ? Effect.succeed([] as Array<ToolResult>)
      : calls.length === 1
      // one call needs no fiber of its own: forking one costs more than the rest of a step
      ? Effect.map(runCall(toolkit, this.context, calls[0]!, args[0]!), (result) => [result])
      : Effect.forEach(calls, (call, i) => runCall(toolkit, this.context, call, args[i]!), { concurrency: this.concurrency })
    return Effect.map(results, (toolResults) => {
      for (const result of toolResults) this.messages.push(resultMessage(result))
      const step: Step = { index, response, toolCalls: calls, toolResults }
      this.steps.push(step)
      return { step, done: toolResults.length === 0 || index >= this.maxSteps }
    })
  }

  result(): GenerateTextResult {
    const response = this.steps[this.steps.length - 1]!.response
    return {
      text: response.text,
      finishReason: response.finishReason,
      response,
      steps: this.steps,
      messages: this.messages,
      usage: this.usage
    }
  }
}

const makeLoop = <T extends Tool.Any>(model: LanguageModel["Type"], options: GenerateTextOptions<T>) =>
  Effect.flatMap(Effect.context<never>(), (context) => {
    const checked = loopOptions(model, options)
    if (checked instanceof InvalidRequestError) return Effect.fail(checked)
    return Effect.succeed(new Loop(textRequest(options), options.toolkit as Toolkit.Any | undefined, checked.maxSteps, checked.concurrency, context))
  })

// ---------------------------------------------------------------------------
// generateText / streamText
// ---------------------------------------------------------------------------

export const generateText = <T extends Tool.Any = never>(
  options: GenerateTextOptions<T>
): Effect.Effect<GenerateTextResult, LlmError, LanguageModel | Tool.HandlersFor<T>> =>
  Effect.gen(function*() {
    const model = yield* LanguageModel
    const loop = yield* makeLoop(model, options)
    for (;;) {
      const index = loop.steps.length + 1
      const refresh = loop.refresh
      const reply = refresh === undefined ? model.chat(loop.next) : Effect.zipRight(refresh, Effect.suspend(() => model.chat(loop.next)))
      const { done } = yield* reply.pipe(
        Effect.flatMap((response) => loop.afterReply(response)),
        Effect.withSpan("LanguageModel.step", { attributes: { "step.index": index }, captureStackTrace: false })
      )
      if (done) return loop.result()
    }
  }).pipe(Effect.withSpan("LanguageModel.generateText", { captureStackTrace: false }))

export const streamText = <T extends Tool.Any = never>(
  options: GenerateTextOptions<T>
): Stream.Stream<TextStreamEvent, LlmError, LanguageModel | Tool.HandlersFor<T>> =>
  Streams.withSpan(
    Streams.unwrap(Effect.gen(function*() {
      const model = yield* LanguageModel
      const loop = yield* makeLoop(model, options)
      const stepStream = (index: number): Stream.Stream<TextStreamEvent, LlmError> => {
        const acc = new Accumulator()
        const refresh = loop.refresh
        const source = refresh === undefined ? model.stream(loop.next) : Streams.unwrap(Effect.map(refresh, () => model.stream(loop.next)))
        const replies = source.pipe(
          Stream.mapChunks((chunk) => {
            acc.addAll(chunk)
            const out: Array<TextStreamEvent> = []
            for (const event of chunk) {
              if (event._tag === "TextDelta") out.push({ _tag: "TextDelta", step: index, text: event.text })
              else if (event._tag === "ReasoningDelta") out.push({ _tag: "ReasoningDelta", step: index, text: event.text })
              else if (event._tag === "ToolCall") {
                out.push({ _tag: "ToolCall", step: index, call: { id: event.id, name: event.name, arguments: event.arguments } })
              }
            }
            return Chunk.unsafeFromArray(out)
          })
        )
        const after = Streams.unwrap(
          Effect.map(Effect.flatMap(Effect.suspend(() => acc.result()), (response) => loop.afterReply(response)), ({ done, step }) => {
            const events: Array<TextStreamEvent> = step.toolResults.map((result) => ({ _tag: "ToolResult", step: index, result }))
            events.push({ _tag: "StepFinish", step })
            if (done) {
              events.push({ _tag: "Finish", result: loop.result() })
              return Stream.fromIterable(events)
            }
            return Stream.concat(Stream.fromIterable(events), stepStream(index + 1))
          })
        )
        return Stream.concat(Streams.withSpan(replies, "LanguageModel.step", { attributes: { "step.index": index } }), after)
      }
      return stepStream(1)
    })),
    "LanguageModel.streamText"
  )

// ---------------------------------------------------------------------------
// generateObject / streamObject
// ---------------------------------------------------------------------------

const responseFormatOf = <A, I>(options: GenerateObjectOptions<A, I>): Message.ResponseFormat => {
  const format: { -readonly [K in keyof Extract<Message.ResponseFormat, { type: "json_schema" }>]: Extract<Message.ResponseFormat, { type: "json_schema" }>[K] } = {
    type: "json_schema",
    name: options.name ?? "response",
    schema: JSONSchema.make(options.schema),
    strict: true
  }
  if (options.description !== undefined) format.description = options.description
  return format
}

/** The message that asks the model to fix its reply. */
export const repairPrompt = (issues: ReadonlyArray<string>): string =>
  `Your reply does not match the required JSON schema:\n${issues.map((i) => `- ${i}`).join("\n")}\n` +
  `Reply again with only the corrected JSON value.`

const outputError = (response: Message.ChatResponse, issues: ReadonlyArray<string>, attempts: number) =>
  new StructuredOutputError({
    provider: response.provider,
    model: response.model,
    message: `the reply did not match the schema after ${attempts} attempt${attempts === 1 ? "" : "s"}: ${issues.join("; ")}`,
    text: response.text,
    issues,
    attempts
  })

export const generateObject = <A, I>(
  options: GenerateObjectOptions<A, I>
): Effect.Effect<GenerateObjectResult<A>, LlmError, LanguageModel> =>
  Effect.gen(function*() {
    const model = yield* LanguageModel
    const repairs = repairsOf(model, options)
    if (repairs instanceof InvalidRequestError) return yield* repairs
    const responseFormat = responseFormatOf(options)
    const request = objectRequest(options)
    let messages: ReadonlyArray<Message.Message> = request.messages
    let usage = emptyUsage
    for (let attempt = 1;; attempt++) {
      const response = yield* model.chat({ ...request, messages, responseFormat }).pipe(
        Effect.withSpan("LanguageModel.step", { attributes: { "step.index": attempt }, captureStackTrace: false })
      )
      usage = addUsage(usage, response.usage)
      const decoded = Decode.decodeJson(options.schema, response.text)
      if (Either.isRight(decoded)) return { value: decoded.right, response, attempts: attempt, usage }
      if (attempt > repairs) return yield* outputError(response, decoded.left, attempt)
      messages = [...messages, Message.fromResponse(response), Message.user(repairPrompt(decoded.left))]
    }
  }).pipe(Effect.withSpan("LanguageModel.generateObject", { captureStackTrace: false }))

export const streamObject = <A, I>(
  options: GenerateObjectOptions<A, I>
): Stream.Stream<ObjectStreamEvent<A>, LlmError, LanguageModel> =>
  Streams.withSpan(
    Streams.unwrap(Effect.flatMap(LanguageModel, (model) => {
      const repairs = repairsOf(model, options)
      if (repairs instanceof InvalidRequestError) return Effect.fail(repairs)
      const responseFormat = responseFormatOf(options)
      const request = objectRequest(options)
      const attemptStream = (attempt: number, messages: ReadonlyArray<Message.Message>): Stream.Stream<ObjectStreamEvent<A>, LlmError> => {
        const acc = new Accumulator()
        const reader = new PartialJson(Decode.maxJsonDepth)
        const partials = model.stream({ ...request, messages, responseFormat }).pipe(
          Stream.mapConcat((event): Array<ObjectStreamEvent<A>> => {
            acc.add(event)
            if (event._tag !== "TextDelta") return []
            reader.feed(event.text)
            const partial = reader.next()
            return partial === undefined ? [] : [{ _tag: "Partial", attempt, value: partial.value }]
          })
        )
        const end = Streams.unwrap(Effect.flatMap(Effect.suspend(() => acc.result()), (response) => {
          const decoded = Decode.decodeJson(options.schema, response.text)
          if (Either.isRight(decoded)) {
            return Effect.succeed(Stream.make<[ObjectStreamEvent<A>]>({ _tag: "Object", value: decoded.right, response, attempts: attempt }))
          }
          if (attempt > repairs) return Effect.fail(outputError(response, decoded.left, attempt))
          const repair: ObjectStreamEvent<A> = { _tag: "Repair", attempt, issues: decoded.left }
          const next = [...messages, Message.fromResponse(response), Message.user(repairPrompt(decoded.left))]
          return Effect.succeed(Stream.concat(Stream.make(repair), attemptStream(attempt + 1, next)))
        }))
        return Stream.concat(partials, end)
      }
      return Effect.succeed(attemptStream(1, request.messages))
    })),
    "LanguageModel.streamObject"
  )
