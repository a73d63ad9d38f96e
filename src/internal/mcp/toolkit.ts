/**
 * A `Toolkit` of an MCP server's tools. Each is a `Tool.dynamic`: the server's JSON Schema as
 * its parameters, the arguments checked with the SDK's ajv before the call (the model gets
 * the problem back, as with a typed tool, without a round trip; a schema ajv cannot compile is
 * left to the server to check), a handler that calls `tools/call` and writes the result with
 * `toToolResult`. A failed call is a tool error whose text is the typed error's message.
 *
 * The list is the server's as of the last `tools/list`: a `tools/list_changed` notification
 * (or a new HTTP session) starts another, and the toolkit's `refresh`, which the loop runs
 * before each step, waits for it, so the step after a change offers the new list.
 */
import type * as ConfigError from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import type * as Mcp from "../../Mcp.js"
import type * as Message from "../../Message.js"
import * as Tool from "../../Tool.js"
import * as Toolkit from "../../Toolkit.js"
import { internalsOf } from "./connection.js"
import type { McpError } from "./errors.js"
import { toolkitOptionsOf } from "./options.js"
import { toToolResult } from "./results.js"

/** The longest tool name every API accepts, and the characters they all take. */
const maxNameLength = 64

/** The name the model sees: `prefix + name`, other characters as `_`, cut to 64. */
export const modelName = (prefix: string, name: string): string => (prefix + name).replace(/[^A-Za-z0-9_-]/g, "_").slice(0, maxNameLength)

interface Listed {
  readonly tools: Record<string, Tool.Dynamic>
  readonly definitions: ReadonlyArray<Message.ToolDefinition>
}

export const make = (
  connection: Mcp.Connection,
  options?: Mcp.ToolkitOptions
): Effect.Effect<Toolkit.Toolkit<Tool.Dynamic>, McpError | ConfigError.ConfigError> =>
  Effect.gen(function*() {
    const checked = toolkitOptionsOf(options)
    if (Either.isLeft(checked)) return yield* Effect.fail(checked.left)
    const { allow, prefix } = checked.right
    const internals = internalsOf(connection)

    const toolOf = (info: Mcp.ToolInfo, offered: string): Tool.Dynamic => {
      let validate: ((value: unknown) => ReadonlyArray<string>) | undefined | null = null
      return Tool.dynamic(offered, {
        description: info.description ?? info.title,
        parameters: info.inputSchema,
        // compiled on first use: a server may list many tools the model never calls
        validate: internals === undefined ? undefined : (params) => {
          if (validate === null) validate = internals.validator(info.inputSchema)
          return validate === undefined ? [] : validate(params)
        },
        source: `the tool ${JSON.stringify(info.name)} of the MCP server ${JSON.stringify(connection.name)}`,
        handle: (params) =>
          connection.callTool(info.name, params as { readonly [key: string]: unknown }).pipe(
            Effect.map(toToolResult),
            Effect.catchAll((error) => Effect.succeed<Tool.Result>({ isError: true, content: JSON.stringify({ error: error.message }), error }))
          )
      })
    }

    const listed = (infos: ReadonlyArray<Mcp.ToolInfo>): Effect.Effect<Listed> =>
      Effect.gen(function*() {
        const tools: Record<string, Tool.Dynamic> = Object.create(null)
        const definitions: Array<Message.ToolDefinition> = []
        for (const info of infos) {
          if (allow !== undefined && !allow.has(info.name)) continue
          const offered = modelName(prefix, info.name)
          if (Object.hasOwn(tools, offered)) {
            yield* Effect.logWarning(
              `Mcp ${JSON.stringify(connection.name)}: the tool ${JSON.stringify(info.name)} is not offered: its name as the model sees it, ${JSON.stringify(offered)}, is another tool's`
            )
            continue
          }
          const tool = toolOf(info, offered)
          tools[offered] = tool
          definitions.push(tool.definition)
        }
        if (allow !== undefined) {
          const missing = [...allow].filter((name) => !infos.some((info) => info.name === name))
          if (missing.length > 0) {
            yield* Effect.logWarning(`Mcp ${JSON.stringify(connection.name)}: the server lists no tool named ${missing.map((n) => JSON.stringify(n)).join(", ")}`)
          }
        }
        return { tools, definitions }
      })

    let current = yield* Effect.flatMap(connection.listTools, listed)

    // the latest refresh started; an older one that ends later does not overwrite it
    let pending: Fiber.RuntimeFiber<void> | undefined
    let started = 0
    if (internals !== undefined) {
      internals.onToolsChanged(() => {
        const n = ++started
        pending = internals.fork(
          connection.listTools.pipe(
            Effect.flatMap(listed),
            Effect.map((next) => {
              if (n === started) current = next
            }),
            Effect.catchAll((error) =>
              Effect.logWarning(`Mcp ${JSON.stringify(connection.name)}: the tool list changed, but listing it failed (${error.message}); the previous list stays`)
            )
          )
        )
      })
    }

    const toolkit: Toolkit.Toolkit<Tool.Dynamic> = {
      [Toolkit.TypeId]: Toolkit.TypeId,
      get tools() {
        return current.tools
      },
      get definitions() {
        return current.definitions
      },
      // every tool here carries its handler
      toLayer: () => Layer.empty as Layer.Layer<never>,
      refresh: Effect.suspend(() => (pending === undefined ? Effect.void : Fiber.await(pending))).pipe(Effect.asVoid)
    }
    return toolkit
  })
