/**
 * The ways an MCP connection or call fails, one class each. Every one names the server by its
 * label (`Mcp.ConnectOptions.name`, else the command's or the host's name) and, for a call,
 * the tool; messages are built from what the SDK and the server say, with every secret of the
 * connection (a `Redacted` header or environment value, a URL's password) masked.
 */
import * as Schema from "effect/Schema"

const server = Schema.String
const tool = Schema.optional(Schema.String)

/**
 * The connection could not be made: the SDK is not installed, the command did not start,
 * the URL did not answer, or the handshake (`initialize`) or the first `tools/list` failed.
 */
export class McpConnectError extends Schema.TaggedError<McpConnectError>()("McpConnectError", {
  server,
  message: Schema.String
}) {}

/**
 * The stdio server's process is gone (it exited, was killed, or closed its output). The
 * connection does not restart it: every later call fails with this error.
 */
export class McpServerGoneError extends Schema.TaggedError<McpServerGoneError>()("McpServerGoneError", {
  server,
  tool,
  message: Schema.String
}) {}

/**
 * The HTTP server could not be reached, answered an HTTP error, or its reply stream broke
 * mid-reply. The next call opens a new session.
 */
export class McpDisconnectedError extends Schema.TaggedError<McpDisconnectedError>()("McpDisconnectedError", {
  server,
  tool,
  status: Schema.optional(Schema.Number),
  message: Schema.String
}) {}

/** The server did not answer within the deadline; the request was cancelled (`notifications/cancelled`). */
export class McpTimeoutError extends Schema.TaggedError<McpTimeoutError>()("McpTimeoutError", {
  server,
  tool,
  /** What was waited for: `tools/call`, `tools/list`, `initialize`. */
  operation: Schema.String,
  timeoutMillis: Schema.Number
}) {
  override get message(): string {
    const what = this.tool === undefined ? this.operation : `${this.operation} ${JSON.stringify(this.tool)}`
    return `the MCP server ${JSON.stringify(this.server)} did not answer ${what} within ${this.timeoutMillis} ms`
  }
}

/** The server sent something that is not JSON-RPC, or a result that is not the shape MCP gives it. */
export class McpMalformedReplyError extends Schema.TaggedError<McpMalformedReplyError>()("McpMalformedReplyError", {
  server,
  tool,
  message: Schema.String
}) {}

/** The server answered with a JSON-RPC error (an unknown tool, invalid arguments, its own failure). */
export class McpRpcError extends Schema.TaggedError<McpRpcError>()("McpRpcError", {
  server,
  tool,
  code: Schema.Number,
  message: Schema.String
}) {}

/** A tool's result is over the connection's `maxResultBytes`; it is not passed on. */
export class McpResultTooLargeError extends Schema.TaggedError<McpResultTooLargeError>()("McpResultTooLargeError", {
  server,
  tool: Schema.String,
  /** The size seen, at least: a reply cut off as it arrived is counted up to the cut. */
  bytes: Schema.Number,
  limit: Schema.Number
}) {
  override get message(): string {
    return `the result of ${JSON.stringify(this.tool)} from the MCP server ${JSON.stringify(this.server)} is over the limit of ${this.limit} bytes (${this.bytes} bytes or more)`
  }
}

/** What a connection or a call can fail with. */
export type McpError =
  | McpConnectError
  | McpServerGoneError
  | McpDisconnectedError
  | McpTimeoutError
  | McpMalformedReplyError
  | McpRpcError
  | McpResultTooLargeError
