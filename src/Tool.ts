/**
 * A tool the model may call, described by Schemas: `parameters` (what the model sends),
 * `success` (what the handler returns, sent back as JSON) and `failure` (a handler error
 * sent back to the model as a tool error). The JSON Schema the provider receives is
 * `JSONSchema.make(parameters)`, marked `strict` so each provider asks for its strict mode
 * where the API has one.
 *
 * A tool known only at run time (an MCP server's) is `Tool.dynamic`: a JSON Schema as its
 * parameters, an optional validator of the arguments against it, and its own handler, which
 * writes the result the model reads.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import { hasProperty } from "effect/Predicate"
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

/**
 * The handlers every tool of a union needs: a dynamic tool brings its own.
 * @since 0.1.0 @category handlers
 */
export type HandlersFor<T> = T extends Dynamic<string> ? never : T extends Tool<infer N, infer _P, infer _S, infer _F> ? Handler<N> : never

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

// ---------------------------------------------------------------------------
// Dynamic tools
// ---------------------------------------------------------------------------

/** @since 0.1.0 @category type ids */
export const DynamicTypeId: unique symbol = Symbol.for("effect-llm/Tool/Dynamic")
/** @since 0.1.0 @category type ids */
export type DynamicTypeId = typeof DynamicTypeId

/**
 * What a dynamic tool's handler hands back: the text the model reads, whether it reports a
 * failure (sent as a tool error), and, for the program, the value behind it (`value`, on
 * the loop's `ToolResult`) and the typed failure (`error`).
 * @since 0.1.0 @category dynamic
 */
export interface Result {
  readonly isError: boolean
  /** What the model is sent: text, or parts (text, images, documents) where the API takes them. */
  readonly content: string | ReadonlyArray<Message.ToolResultPart>
  readonly value?: unknown
  readonly error?: unknown
}

/**
 * A tool known only at run time: its parameters are a JSON Schema (sent as given, not
 * strict unless asked), the arguments are checked by `validate` when there is one, and the
 * tool carries its handler, so no `Toolkit.toLayer` provides it and `generateText` requires
 * nothing for it.
 * @since 0.1.0 @category dynamic
 */
export interface Dynamic<Name extends string = string>
  extends Tool<Name, Schema.Schema<unknown>, typeof Schema.Unknown, typeof Schema.Never>
{
  readonly [DynamicTypeId]: DynamicTypeId
  /** Where the tool comes from, named when two tools clash: `MCP server "files", tool "read"`. */
  readonly source: string | undefined
  /** Runs the tool on arguments that passed `validate`. */
  readonly handle: (params: unknown) => Effect.Effect<Result>
}

/** @since 0.1.0 @category dynamic */
export interface DynamicOptions {
  readonly description?: string | undefined
  /** The JSON Schema of the arguments, an object schema, as the request carries it. */
  readonly parameters: Message.JsonSchema
  /**
   * Checks the arguments (a JSON object): the problems, in words, or none. Without it any
   * JSON object is passed to `handle`, which must check it.
   */
  readonly validate?: ((params: unknown) => ReadonlyArray<string>) | undefined
  /** Marks the definition strict. Default false: a schema written elsewhere rarely meets strict mode's rules. */
  readonly strict?: boolean | undefined
  readonly source?: string | undefined
  readonly handle: (params: unknown) => Effect.Effect<Result>
}

/**
 * A tool from a JSON Schema and a handler.
 * @since 0.1.0 @category dynamic
 */
export const dynamic = <const Name extends string>(name: Name, options: DynamicOptions): Dynamic<Name> => {
  const validate = options.validate
  const parameters: Schema.Schema<unknown> = validate === undefined
    ? Schema.Unknown
    : Schema.Unknown.pipe(Schema.filter((params) => {
      const issues = validate(params)
      return issues.length === 0 ? undefined : issues.join("; ")
    }))
  const definition: { -readonly [K in keyof Message.ToolDefinition]: Message.ToolDefinition[K] } = {
    name,
    parameters: options.parameters,
    strict: options.strict ?? false
  }
  if (options.description !== undefined) definition.description = options.description
  return {
    [TypeId]: TypeId,
    [DynamicTypeId]: DynamicTypeId,
    name,
    description: options.description,
    parameters,
    success: Schema.Unknown,
    failure: Schema.Never,
    definition,
    source: options.source,
    handle: options.handle
  }
}

/** @since 0.1.0 @category guards */
export const isDynamic = (tool: Any): tool is Dynamic => hasProperty(tool, DynamicTypeId)
