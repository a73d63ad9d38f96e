/**
 * `effect-llm/Mcp`: tools from Model Context Protocol servers, for the tool loop of any model.
 *
 * `connect` opens a scoped connection to a server, over stdio (a command it spawns and ends
 * with the scope) or Streamable HTTP (a URL, with headers whose secrets are `Redacted`).
 * `toolkit` makes a `Toolkit` of the server's tools: their names, descriptions and JSON
 * Schemas as the server lists them, arguments checked against the schema (the SDK's ajv),
 * handlers that call `tools/call`. `Toolkit.merge` joins it with the program's own tools.
 *
 * ```ts
 * const program = Effect.gen(function* () {
 *   const notes = yield* Mcp.connect(Mcp.stdio({ command: "node", args: ["notes-server.js"] }), { timeout: "20 seconds" })
 *   const tools = yield* Toolkit.merge(Weather, yield* Mcp.toolkit(notes, { allow: ["search_notes"] }))
 *   return yield* LanguageModel.generateText({ request, toolkit: tools })
 * }).pipe(Effect.scoped)
 * ```
 *
 * What the model sees. A result goes back as text: text blocks as they are, structured
 * content as its JSON, images, audio and resources as a line saying what they are (the whole
 * result is on the loop's `ToolResult.value`). A result with `isError` is a tool error. A call
 * that fails (a deadline, a server that died, a malformed reply, a JSON-RPC error, a result
 * over `maxResultBytes`) is a tool error too, with the typed `McpError` on
 * `ToolResult.error`: the loop goes on. Over HTTP the next call opens a new session; over
 * stdio a server process that is gone fails every later call with `McpServerGoneError`.
 *
 * A server's `notifications/tools/list_changed` refreshes the toolkit's list before the
 * loop's next step.
 *
 * This module, and only this one, loads `@modelcontextprotocol/sdk` (an optional peer
 * dependency), and only when a connection opens.
 *
 * @since 0.1.0
 */
import type * as ConfigError from "effect/ConfigError"
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import * as connection from "./internal/mcp/connection.js"
import * as errors from "./internal/mcp/errors.js"
import * as mcpToolkit from "./internal/mcp/toolkit.js"
import type * as Message from "./Message.js"
import type * as Tool from "./Tool.js"
import type * as Toolkit from "./Toolkit.js"

// ---------------------------------------------------------------------------
// Servers
// ---------------------------------------------------------------------------

/**
 * A server the connection spawns and talks to over its stdin and stdout. The process gets
 * the SDK's short list of safe variables (HOME, PATH, USER, …) plus `env`; its stderr is kept
 * (the last 4 KB, masked) for the error that reports its exit, and logged at debug level.
 * @since 0.1.0 @category servers
 */
export interface StdioServer {
  readonly _tag: "Stdio"
  readonly command: string
  readonly args?: ReadonlyArray<string> | undefined
  /** Values given as `Redacted`, and those of variables named like secrets, are masked in every error and log. */
  readonly env?: Readonly<Record<string, string | Redacted.Redacted<string>>> | undefined
  readonly cwd?: string | undefined
}

/**
 * A server at a Streamable HTTP endpoint. Header values given as `Redacted`, those of headers
 * named like secrets (authorization, cookie, *key*, *token*), and the URL's password never
 * appear in an error, a log line or a span.
 * @since 0.1.0 @category servers
 */
export interface HttpServer {
  readonly _tag: "Http"
  /** Like `https://example.com/mcp`. */
  readonly url: string
  readonly headers?: Readonly<Record<string, string | Redacted.Redacted<string>>> | undefined
}

/** @since 0.1.0 @category servers */
export type Server = StdioServer | HttpServer

/** @since 0.1.0 @category servers */
export const stdio = (options: Omit<StdioServer, "_tag">): StdioServer => ({ ...options, _tag: "Stdio" })

/** @since 0.1.0 @category servers */
export const http = (options: Omit<HttpServer, "_tag">): HttpServer => ({ ...options, _tag: "Http" })

// ---------------------------------------------------------------------------
// What a server says
// ---------------------------------------------------------------------------

/**
 * One block of a tool's result, as MCP defines it (`ContentBlock`); binary data is base64.
 * @since 0.1.0 @category models
 */
export type Content =
  | { readonly type: "text"; readonly text: string }
  | { readonly type: "image"; readonly data: string; readonly mimeType: string }
  | { readonly type: "audio"; readonly data: string; readonly mimeType: string }
  | {
    readonly type: "resource_link"
    readonly uri: string
    readonly name: string
    readonly description?: string | undefined
    readonly mimeType?: string | undefined
  }
  | {
    readonly type: "resource"
    readonly resource:
      | { readonly uri: string; readonly mimeType?: string | undefined; readonly text: string }
      | { readonly uri: string; readonly mimeType?: string | undefined; readonly blob: string }
  }

/**
 * A `tools/call` answer. `isError`: the tool ran and failed; its content says why.
 * @since 0.1.0 @category models
 */
export interface CallToolResult {
  readonly content: ReadonlyArray<Content>
  readonly structuredContent?: { readonly [key: string]: unknown } | undefined
  readonly isError?: boolean | undefined
}

/**
 * A tool as `tools/list` gives it.
 * @since 0.1.0 @category models
 */
export interface ToolInfo {
  readonly name: string
  readonly title?: string | undefined
  readonly description?: string | undefined
  readonly inputSchema: Message.JsonSchema
  readonly outputSchema?: Message.JsonSchema | undefined
}

/** What the server said of itself in the handshake. @since 0.1.0 @category models */
export interface ServerInfo {
  readonly name: string
  readonly version: string
  readonly instructions?: string | undefined
}

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/** @since 0.1.0 @category errors */
export const McpConnectError = errors.McpConnectError
/** @since 0.1.0 @category errors */
export type McpConnectError = errors.McpConnectError
/** @since 0.1.0 @category errors */
export const McpServerGoneError = errors.McpServerGoneError
/** @since 0.1.0 @category errors */
export type McpServerGoneError = errors.McpServerGoneError
/** @since 0.1.0 @category errors */
export const McpDisconnectedError = errors.McpDisconnectedError
/** @since 0.1.0 @category errors */
export type McpDisconnectedError = errors.McpDisconnectedError
/** @since 0.1.0 @category errors */
export const McpTimeoutError = errors.McpTimeoutError
/** @since 0.1.0 @category errors */
export type McpTimeoutError = errors.McpTimeoutError
/** @since 0.1.0 @category errors */
export const McpMalformedReplyError = errors.McpMalformedReplyError
/** @since 0.1.0 @category errors */
export type McpMalformedReplyError = errors.McpMalformedReplyError
/** @since 0.1.0 @category errors */
export const McpRpcError = errors.McpRpcError
/** @since 0.1.0 @category errors */
export type McpRpcError = errors.McpRpcError
/** @since 0.1.0 @category errors */
export const McpResultTooLargeError = errors.McpResultTooLargeError
/** @since 0.1.0 @category errors */
export type McpResultTooLargeError = errors.McpResultTooLargeError
/** What a connection or a call can fail with. @since 0.1.0 @category errors */
export type McpError = errors.McpError

// ---------------------------------------------------------------------------
// Connection
// ---------------------------------------------------------------------------

/** @since 0.1.0 @category connection */
export interface ConnectOptions {
  /** The server's name in errors, logs, spans and tool sources. Default: the command's file name, or the URL's host. */
  readonly name?: string | undefined
  /** The deadline of one call (`tools/call`, `tools/list`), reconnecting included. Default 60 seconds. */
  readonly timeout?: Duration.DurationInput | undefined
  /** The deadline of the handshake (spawn or first request, then `initialize`). Default 10 seconds. */
  readonly connectTimeout?: Duration.DurationInput | undefined
  /**
   * The largest result passed on, in bytes (text as UTF-8, binary data as its base64, structured
   * content as JSON); a larger one fails the call with `McpResultTooLargeError`. A reply over
   * four times this plus 1 MiB is not even read: over HTTP the call fails the same way, over
   * stdio the SDK closes the connection. Default 1 MiB.
   */
  readonly maxResultBytes?: number | undefined
}

/**
 * A connection to one server, open until its scope closes.
 * @since 0.1.0 @category connection
 */
export interface Connection {
  /** The server's name, as errors and tool sources say it. */
  readonly name: string
  readonly transport: "stdio" | "http"
  /** The stdio server's process id; undefined over HTTP. */
  readonly pid: number | undefined
  /** What the server said in the handshake (of the current session, over HTTP). */
  readonly serverInfo: Effect.Effect<ServerInfo>
  /** Every tool the server lists (all pages). An empty list when the server offers no tools. */
  readonly listTools: Effect.Effect<ReadonlyArray<ToolInfo>, McpError>
  /** One `tools/call`, under the connection's deadline and size limit. */
  readonly callTool: (name: string, args?: { readonly [key: string]: unknown }) => Effect.Effect<CallToolResult, McpError>
  /** The stdio server's exit, once it is gone: every call fails with it from then on. */
  readonly failure: Effect.Effect<Option.Option<McpServerGoneError>>
}

/**
 * Opens a connection in the current scope: spawns the command or reaches the URL, then the
 * MCP handshake. Closing the scope ends it: a stdio server's input is closed, then it is sent
 * SIGTERM, then SIGKILL (the SDK's sequence, at most ~4 s); an HTTP session is deleted.
 * Interrupting `connect` leaves no process behind either.
 * @since 0.1.0 @category connection
 */
export const connect: (
  server: Server,
  options?: ConnectOptions
) => Effect.Effect<Connection, McpConnectError | McpTimeoutError | ConfigError.ConfigError, Scope.Scope> = connection.connect

// ---------------------------------------------------------------------------
// Toolkit
// ---------------------------------------------------------------------------

/** @since 0.1.0 @category toolkit */
export interface ToolkitOptions {
  /** Only these tools (by the server's names) are offered; the others are neither listed nor callable. */
  readonly allow?: ReadonlyArray<string> | undefined
  /**
   * Put before each tool's name, as the model sees it (`files_` makes `read` `files_read`),
   * so that two servers' tools do not clash. A name is then made of letters, digits, `_`
   * and `-` (others become `_`), at most 64 characters, as every API accepts.
   */
  readonly prefix?: string | undefined
}

/**
 * A toolkit of the server's tools, listed now and again whenever the server announces a
 * change (before the loop's next step). Each tool is a `Tool.dynamic`: it needs no handler
 * layer. Merge it with the program's tools with `Toolkit.merge`.
 * @since 0.1.0 @category toolkit
 */
export const toolkit: (
  connection: Connection,
  options?: ToolkitOptions
) => Effect.Effect<Toolkit.Toolkit<Tool.Dynamic>, McpError | ConfigError.ConfigError> = mcpToolkit.make
