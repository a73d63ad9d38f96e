/**
 * A set of tools offered to the model together, and the layer of their handlers.
 *
 * How `LanguageModel.generateText` finds the handlers (as in `@effect/ai`): `toLayer` provides
 * one service per tool (`Tool.Handler<name>`), and `generateText({ toolkit })` requires them
 * in its context. A toolkit without its handlers layer does not compile; a handler's own
 * requirements become the layer's, so they are provided once, where the layer is built.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Message from "./Message.js"
import * as Tool from "./Tool.js"

/** @since 0.1.0 @category type ids */
export const TypeId: unique symbol = Symbol.for("effect-llm/Toolkit")
/** @since 0.1.0 @category type ids */
export type TypeId = typeof TypeId

/**
 * One handler per tool, by name: decoded parameters in, the tool's success out, its failure
 * (sent back to the model) as the error.
 * @since 0.1.0 @category models
 */
export type HandlersOf<T extends Tool.Any> = {
  readonly [N in Tool.Name<T>]: (
    params: Tool.Parameters<Extract<T, { readonly name: N }>>
  ) => Effect.Effect<Tool.Success<Extract<T, { readonly name: N }>>, Tool.Failure<Extract<T, { readonly name: N }>>, unknown>
}

/** What a set of handlers requires. @since 0.1.0 @category models */
export type RequirementsOf<H> = {
  [K in keyof H]: H[K] extends (params: never) => Effect.Effect<infer _A, infer _E, infer R> ? R : never
}[keyof H]

/** @since 0.1.0 @category models */
export interface Toolkit<T extends Tool.Any> {
  readonly [TypeId]: TypeId
  /** The tools, by name. */
  readonly tools: { readonly [N in Tool.Name<T>]: Extract<T, { readonly name: N }> }
  /** The definitions a request carries, in the order the tools were given. */
  readonly definitions: ReadonlyArray<Message.ToolDefinition>
  /** The layer of the handlers, one per tool; their requirements are the layer's. */
  readonly toLayer: <H extends HandlersOf<T>>(handlers: H) => Layer.Layer<Tool.HandlersFor<T>, never, RequirementsOf<H>>
}

/** A toolkit of any tools. @since 0.1.0 @category models */
export interface Any {
  readonly [TypeId]: TypeId
  readonly tools: { readonly [name: string]: Tool.Any }
  readonly definitions: ReadonlyArray<Message.ToolDefinition>
}

/** The tools of a toolkit, as a union. @since 0.1.0 @category type-level */
export type Tools<K> = K extends Toolkit<infer T> ? T : never

/**
 * A toolkit from tools; their names must differ.
 * @since 0.1.0 @category constructors
 */
export const make = <const Tools extends ReadonlyArray<Tool.Any>>(...tools: Tools): Toolkit<Tools[number]> => {
  // no prototype: a tool may be named toString, constructor or __proto__
  const byName: Record<string, Tool.Any> = Object.create(null)
  for (const tool of tools) {
    if (Object.hasOwn(byName, tool.name)) throw new Error(`Toolkit.make: two tools are named ${tool.name}`)
    byName[tool.name] = tool
  }
  return {
    [TypeId]: TypeId,
    tools: byName as Toolkit<Tools[number]>["tools"],
    definitions: tools.map((tool) => tool.definition),
    toLayer: <H extends HandlersOf<Tools[number]>>(handlers: H) =>
      Layer.effectContext(
        Effect.map(Effect.context<RequirementsOf<H>>(), (context) => {
          let services = Context.empty() as Context.Context<Tool.HandlersFor<Tools[number]>>
          for (const tool of tools) {
            const byTool = handlers as unknown as Record<string, (params: unknown) => Effect.Effect<unknown, unknown, RequirementsOf<H>>>
            const handler = Object.hasOwn(byTool, tool.name) ? byTool[tool.name]! : undefined
            if (handler === undefined) throw new Error(`Toolkit.toLayer: no handler for the tool ${tool.name}`)
            services = Context.add(services, Tool.handlerTag(tool.name), {
              // the layer's context under the caller's (which wins on a clash, as in @effect/ai), so the
              // handler's spans nest under its `Tool.call`
              handle: (params) => Effect.mapInputContext(handler(params), (input: Context.Context<never>) => Context.merge(context, input))
            }) as Context.Context<Tool.HandlersFor<Tools[number]>>
          }
          return services
        })
      )
  }
}
