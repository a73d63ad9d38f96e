/**
 * A set of tools offered to the model together, and the layer of their handlers.
 *
 * How `LanguageModel.generateText` finds the handlers (as in `@effect/ai`): `toLayer` provides
 * one service per tool (`Tool.Handler<name>`), and `generateText({ toolkit })` requires them
 * in its context. A toolkit without its handlers layer does not compile; a handler's own
 * requirements become the layer's, so they are provided once, where the layer is built.
 * A dynamic tool (`Tool.dynamic`, an MCP server's) carries its handler and needs none.
 *
 * `merge` joins toolkits (the program's own and an MCP server's) and refuses two tools of one
 * name. A toolkit whose tools change while it is used (an MCP server's, on `tools/list_changed`)
 * has a `refresh` the loop runs before each step, so each step offers the list as it is then.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
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
  readonly [N in Tool.Name<Exclude<T, Tool.Dynamic>>]: (
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
  /** The layer of the handlers, one per tool but the dynamic ones; their requirements are the layer's. */
  readonly toLayer: <H extends HandlersOf<T>>(handlers: H) => Layer.Layer<Tool.HandlersFor<T>, never, RequirementsOf<H>>
  /**
   * Run by the loop before each step when present: brings a changing list of tools up to
   * date (an MCP server announced a change). Never fails.
   */
  readonly refresh?: Effect.Effect<void> | undefined
}

/** A toolkit of any tools. @since 0.1.0 @category models */
export interface Any {
  readonly [TypeId]: TypeId
  readonly tools: { readonly [name: string]: Tool.Any }
  readonly definitions: ReadonlyArray<Message.ToolDefinition>
  readonly refresh?: Effect.Effect<void> | undefined
}

/** The tools of a toolkit, as a union. @since 0.1.0 @category type-level */
export type Tools<K> = K extends Toolkit<infer T> ? T : never

/**
 * The layer of `handlers` for the tools that need one (all but the dynamic ones).
 */
const handlersLayer = <T extends Tool.Any, H extends HandlersOf<T>>(
  tools: () => Iterable<Tool.Any>,
  handlers: H
): Layer.Layer<Tool.HandlersFor<T>, never, RequirementsOf<H>> =>
  Layer.effectContext(
    Effect.map(Effect.context<RequirementsOf<H>>(), (context) => {
      let services = Context.empty() as Context.Context<Tool.HandlersFor<T>>
      for (const tool of tools()) {
        if (Tool.isDynamic(tool)) continue
        const byTool = handlers as unknown as Record<string, (params: unknown) => Effect.Effect<unknown, unknown, RequirementsOf<H>>>
        const handler = Object.hasOwn(byTool, tool.name) ? byTool[tool.name]! : undefined
        if (handler === undefined) throw new Error(`Toolkit.toLayer: no handler for the tool ${tool.name}`)
        services = Context.add(services, Tool.handlerTag(tool.name), {
          // the layer's context under the caller's (which wins on a clash, as in @effect/ai), so the
          // handler's spans nest under its `Tool.call`
          handle: (params) => Effect.mapInputContext(handler(params), (input: Context.Context<never>) => Context.merge(context, input))
        }) as Context.Context<Tool.HandlersFor<T>>
      }
      return services
    })
  )

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
    toLayer: <H extends HandlersOf<Tools[number]>>(handlers: H) => handlersLayer<Tools[number], H>(() => tools, handlers)
  }
}

// ---------------------------------------------------------------------------
// merge
// ---------------------------------------------------------------------------

/**
 * Two toolkits given to `merge` have a tool of the same name. `first` and `second` say
 * where each comes from (`Tool.dynamic`'s `source`, such as an MCP server).
 * @since 0.1.0 @category errors
 */
export class ToolNameClashError extends Schema.TaggedError<ToolNameClashError>()("ToolNameClashError", {
  name: Schema.String,
  first: Schema.String,
  second: Schema.String
}) {
  override get message(): string {
    return `two tools are named ${JSON.stringify(this.name)}: ${this.first}, and ${this.second}`
  }
}

/** Where a tool comes from, in words. */
const sourceOf = (tool: Tool.Any, toolkit: number): string =>
  Tool.isDynamic(tool) && tool.source !== undefined ? tool.source : `the tool ${JSON.stringify(tool.name)} of toolkit ${toolkit + 1}`

interface MergedView {
  /** The parts' definitions arrays the view was made from: a part that changed replaced its array. */
  readonly from: ReadonlyArray<ReadonlyArray<Message.ToolDefinition>>
  readonly tools: Record<string, Tool.Any>
  readonly definitions: ReadonlyArray<Message.ToolDefinition>
  readonly clashes: ReadonlyArray<ToolNameClashError>
}

const mergedView = (toolkits: ReadonlyArray<Any>): MergedView => {
  const tools: Record<string, Tool.Any> = Object.create(null)
  const owner: Record<string, number> = Object.create(null)
  const definitions: Array<Message.ToolDefinition> = []
  const clashes: Array<ToolNameClashError> = []
  toolkits.forEach((toolkit, i) => {
    for (const definition of toolkit.definitions) {
      const tool = Object.hasOwn(toolkit.tools, definition.name) ? toolkit.tools[definition.name]! : undefined
      if (tool === undefined) continue
      if (Object.hasOwn(tools, tool.name)) {
        clashes.push(new ToolNameClashError({ name: tool.name, first: sourceOf(tools[tool.name]!, owner[tool.name]!), second: sourceOf(tool, i) }))
        continue
      }
      tools[tool.name] = tool
      owner[tool.name] = i
      definitions.push(definition)
    }
  })
  return { from: toolkits.map((toolkit) => toolkit.definitions), tools, definitions, clashes }
}

/**
 * One toolkit of the tools of several, in order. Two tools of one name are refused with a
 * `ToolNameClashError` naming both. The merge follows its parts: when a part's list changes
 * (an MCP server's), the next step offers the new list; a tool that then clashes with an
 * earlier part's is left out, and `refresh` logs a warning naming both.
 * @since 0.1.0 @category constructors
 */
export const merge = <const Kits extends ReadonlyArray<Any>>(
  ...toolkits: Kits
): Effect.Effect<Toolkit<Tools<Kits[number]>>, ToolNameClashError> =>
  Effect.suspend(() => {
    let view = mergedView(toolkits)
    if (view.clashes.length > 0) return Effect.fail(view.clashes[0]!)
    const current = (): MergedView => {
      if (view.from.some((definitions, i) => definitions !== toolkits[i]!.definitions)) view = mergedView(toolkits)
      return view
    }
    const reported = new Set<string>()
    const refreshes = toolkits.flatMap((toolkit) => (toolkit.refresh === undefined ? [] : [toolkit.refresh]))
    const refresh = refreshes.length === 0 ? undefined : Effect.zipRight(
      Effect.all(refreshes, { concurrency: "unbounded", discard: true }),
      Effect.suspend(() =>
        Effect.forEach(current().clashes, (clash) => {
          const key = `${clash.name}\u0000${clash.second}`
          if (reported.has(key)) return Effect.void
          reported.add(key)
          return Effect.logWarning(`Toolkit.merge: ${clash.message}; the second is not offered`)
        }, { discard: true })
      )
    )
    const merged: Toolkit<Tools<Kits[number]>> = {
      [TypeId]: TypeId,
      get tools() {
        return current().tools as Toolkit<Tools<Kits[number]>>["tools"]
      },
      get definitions() {
        return current().definitions
      },
      toLayer: <H extends HandlersOf<Tools<Kits[number]>>>(handlers: H) =>
        handlersLayer<Tools<Kits[number]>, H>(() => Object.values(current().tools), handlers),
      refresh
    }
    return Effect.succeed(merged)
  })
