/**
 * A tool the model may call, described by Schemas: `parameters` (what the model sends),
 * `success` (what the handler returns, sent back as JSON) and `failure` (a handler error
 * sent back to the model as a tool error). The JSON Schema the provider receives is
 * `JSONSchema.make(parameters)`, marked `strict` so each provider asks for its strict mode
 * where the API has one.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import * as JSONSchema from "effect/JSONSchema"
import * as Schema from "effect/Schema"
import * as Decode from "./internal/decode.js"
import type * as Message from "./Message.js"

/** @since 0.1.0 @category type ids */
export const TypeId: unique symbol = Symbol.for("effect-llm/Tool")
/** @since 0.1.0 @category type ids */
export type TypeId = typeof TypeId

/**
 * A tool. Its Schemas need no context: the wire is JSON.
 * @since 0.1.0 @category models
 */
export interface Tool<
  Name extends string,
  Parameters extends Schema.Schema.AnyNoContext,
  Success extends Schema.Schema.AnyNoContext,
  Failure extends Schema.Schema.All
> {
  readonly [TypeId]: TypeId
  readonly name: Name
  readonly description: string | undefined
  readonly parameters: Parameters
  readonly success: Success
  readonly failure: Failure
  /** What the request carries: the name, description and `JSONSchema.make(parameters)`, strict. */
  readonly definition: Message.ToolDefinition
}

/** @since 0.1.0 @category models */
export interface Any extends Tool<string, Schema.Schema.AnyNoContext, Schema.Schema.AnyNoContext, Schema.Schema.All> {}

/** @since 0.1.0 @category type-level */
export type Name<T> = T extends Tool<infer N, infer _P, infer _S, infer _F> ? N : never
/** The decoded parameters a handler receives. @since 0.1.0 @category type-level */
export type Parameters<T> = T extends Tool<infer _N, infer P, infer _S, infer _F> ? Schema.Schema.Type<P> : never
/** What a handler succeeds with. @since 0.1.0 @category type-level */
export type Success<T> = T extends Tool<infer _N, infer _P, infer S, infer _F> ? Schema.Schema.Type<S> : never
/** What a handler may fail with; sent back to the model. @since 0.1.0 @category type-level */
export type Failure<T> = T extends Tool<infer _N, infer _P, infer _S, infer F> ? Schema.Schema.Type<F> : never

/**
 * A tool from its name and Schemas. `success` defaults to `Schema.Unknown` (any JSON value),
 * `failure` to `Schema.Never` (a handler that cannot fail but by a defect).
 * @since 0.1.0 @category constructors
 */
export const make = <
  const Name extends string,
  Parameters extends Schema.Schema.AnyNoContext,
  Success extends Schema.Schema.AnyNoContext = typeof Schema.Unknown,
  Failure extends Schema.Schema.All = typeof Schema.Never
>(name: Name, options: {
  readonly description?: string | undefined
  readonly parameters: Parameters
  readonly success?: Success | undefined
  readonly failure?: Failure | undefined
}): Tool<Name, Parameters, Success, Failure> => {
  const definition: { -readonly [K in keyof Message.ToolDefinition]: Message.ToolDefinition[K] } = {
    name,
    parameters: JSONSchema.make(options.parameters),
    strict: true
  }
  if (options.description !== undefined) definition.description = options.description
  return {
    [TypeId]: TypeId,
    name,
    description: options.description,
    parameters: options.parameters,
    success: (options.success ?? Schema.Unknown) as Success,
    failure: (options.failure ?? Schema.Never) as Failure,
    definition
  }
}

// ---------------------------------------------------------------------------
// Handlers
// ---------------------------------------------------------------------------

/**
 * The service a tool's handler is found under: `Toolkit.toLayer` provides one per tool, and
 * `LanguageModel.generateText` requires them (`HandlersFor`), so a missing handler is a type
 * error, not a runtime one.
 * @since 0.1.0 @category handlers
 */
export interface Handler<Name extends string> {
  readonly _: unique symbol
  readonly name: Name
}

/**
 * A handler with its types erased: parameters already decoded, the success or failure value
 * not yet encoded.
 * @since 0.1.0 @category handlers
 */
export interface HandlerService {
  readonly handle: (params: unknown) => Effect.Effect<unknown, unknown>
}

/** The handlers every tool of a union needs. @since 0.1.0 @category handlers */
export type HandlersFor<T> = T extends Tool<infer N, infer _P, infer _S, infer _F> ? Handler<N> : never

/**
 * The Tag of a tool's handler.
 * @since 0.1.0 @category handlers
 */
export const handlerTag = <const Name extends string>(name: Name): Context.Tag<Handler<Name>, HandlerService> => {
  let tag = handlerTags.get(name)
  // a Tag captures a stack trace when made: once per name, not once per call
  if (tag === undefined) handlerTags.set(name, tag = Context.GenericTag<Handler<string>, HandlerService>(`effect-llm/Tool/${name}`))
  return tag as unknown as Context.Tag<Handler<Name>, HandlerService>
}

const handlerTags = new Map<string, Context.Tag<Handler<string>, HandlerService>>()

// ---------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------

/**
 * Decodes a model's arguments text: JSON, then the parameters Schema. A `null` on a key the
 * Schema declares optional and not nullable counts as absent, as strict mode makes models
 * send it. Fails with the problem in words, which the loop sends back to the model.
 * @since 0.1.0 @category decoding
 */
export const decodeParameters = <T extends Any>(tool: T, text: string): Effect.Effect<Parameters<T>, string> =>
  Decode.decodeJsonText(tool.parameters, text, `the arguments of ${tool.name}`) as Effect.Effect<Parameters<T>, string>
