/**
 * A conversation kept across calls: its messages in a `Ref`, each turn run by the generate
 * functions over the messages so far and, once it succeeds, appended. Turns of one
 * conversation run one at a time. A failed turn appends nothing.
 */
import * as Effect from "effect/Effect"
import type * as ParseResult from "effect/ParseResult"
import * as Ref from "effect/Ref"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import type * as Chat from "../Chat.js"
import * as Message from "../Message.js"
import type * as Tool from "../Tool.js"
import * as Generate from "./generate.js"

/** What a conversation exports: its messages, as the `Message` schema encodes them. */
export const History = Schema.Struct({ messages: Schema.Array(Message.Message) }).annotations({ identifier: "Chat.History" })
export type History = typeof History.Type

const encode = Schema.encode(History)
const encodeJson = Schema.encode(Schema.parseJson(History))
const decode = Schema.decodeUnknown(History)
const decodeJson = Schema.decodeUnknown(Schema.parseJson(History))

const turnMessages = (prompt: string | ReadonlyArray<Message.Message>): ReadonlyArray<Message.Message> =>
  typeof prompt === "string" ? [Message.user(prompt)] : prompt

export const make = (options: Chat.MakeOptions = {}): Effect.Effect<Chat.Service> =>
  Effect.gen(function*() {
    const initial = [...(options.system === undefined ? [] : [Message.system(options.system)]), ...(options.messages ?? [])]
    const history = yield* Ref.make<ReadonlyArray<Message.Message>>(initial)
    const turn = yield* Effect.makeSemaphore(1)

    const generateText = <T extends Tool.Any = never>(turnOptions: Chat.TurnOptions<T>) => {
      const { concurrency, maxSteps, prompt, toolkit, ...requestOptions } = turnOptions
      return Effect.gen(function*() {
        const messages = [...(yield* Ref.get(history)), ...turnMessages(prompt)]
        const result = yield* Generate.generateText({ toolkit, maxSteps, concurrency, request: { ...requestOptions, messages } })
        yield* Ref.set(history, result.messages)
        return result
      }).pipe(turn.withPermits(1), Effect.withSpan("Chat.generateText", { captureStackTrace: false }))
    }

    const streamText = <T extends Tool.Any = never>(turnOptions: Chat.TurnOptions<T>) => {
      const { concurrency, maxSteps, prompt, toolkit, ...requestOptions } = turnOptions
      return Stream.unwrapScoped(Effect.gen(function*() {
        // the turn holds the conversation until its stream ends, however it ends
        yield* Effect.acquireRelease(turn.take(1), () => turn.release(1))
        const messages = [...(yield* Ref.get(history)), ...turnMessages(prompt)]
        return Generate.streamText({ toolkit, maxSteps, concurrency, request: { ...requestOptions, messages } }).pipe(
          Stream.tap((event) => (event._tag === "Finish" ? Ref.set(history, event.result.messages) : Effect.void))
        )
      })).pipe(Stream.withSpan("Chat.streamText", { captureStackTrace: false }))
    }

    const generateObject = <A, I>(turnOptions: Chat.ObjectTurnOptions<A, I>) => {
      const { description, name, prompt, repairAttempts, schema, ...requestOptions } = turnOptions
      return Effect.gen(function*() {
        const messages = [...(yield* Ref.get(history)), ...turnMessages(prompt)]
        const result = yield* Generate.generateObject({ schema, name, description, repairAttempts, request: { ...requestOptions, messages } })
        // the reply that decoded answers the turn; the repairs before it are not kept
        yield* Ref.set(history, [...messages, Message.fromResponse(result.response)])
        return result
      }).pipe(turn.withPermits(1), Effect.withSpan("Chat.generateObject", { captureStackTrace: false }))
    }

    const service: Chat.Service = {
      history,
      export: Effect.flatMap(Ref.get(history), (messages) => encode({ messages })),
      exportJson: Effect.flatMap(Ref.get(history), (messages) => encodeJson({ messages })),
      generateText,
      streamText,
      generateObject
    }
    return service
  })

export const fromExport = (data: unknown): Effect.Effect<Chat.Service, ParseResult.ParseError> =>
  Effect.flatMap(decode(data), ({ messages }) => make({ messages }))

export const fromJson = (json: string): Effect.Effect<Chat.Service, ParseResult.ParseError> =>
  Effect.flatMap(decodeJson(json), ({ messages }) => make({ messages }))
