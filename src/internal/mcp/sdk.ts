/**
 * The MCP SDK (`@modelcontextprotocol/sdk`, an optional peer dependency), loaded on the first
 * connection: importing `effect-llm/Mcp` loads none of it, and a program without the SDK
 * fails to connect with an error that names the install command.
 */
import * as Effect from "effect/Effect"
import { McpConnectError } from "./errors.js"

export interface Sdk {
  readonly Client: typeof import("@modelcontextprotocol/sdk/client/index.js").Client
  readonly StdioClientTransport: typeof import("@modelcontextprotocol/sdk/client/stdio.js").StdioClientTransport
  readonly StreamableHTTPClientTransport: typeof import("@modelcontextprotocol/sdk/client/streamableHttp.js").StreamableHTTPClientTransport
  readonly StreamableHTTPError: typeof import("@modelcontextprotocol/sdk/client/streamableHttp.js").StreamableHTTPError
  readonly McpError: typeof import("@modelcontextprotocol/sdk/types.js").McpError
  readonly ToolListChangedNotificationSchema: typeof import("@modelcontextprotocol/sdk/types.js").ToolListChangedNotificationSchema
  readonly AjvJsonSchemaValidator: typeof import("@modelcontextprotocol/sdk/validation/ajv").AjvJsonSchemaValidator
}

export const packageName = "@modelcontextprotocol/sdk"

/** What a program without the SDK is told. */
export const missingMessage = `effect-llm/Mcp needs the MCP SDK, an optional peer dependency that is not installed: npm install ${packageName}`

const isMissing = (cause: unknown): boolean => {
  const code = typeof cause === "object" && cause !== null ? (cause as { code?: unknown }).code : undefined
  return code === "ERR_MODULE_NOT_FOUND" || code === "MODULE_NOT_FOUND"
}

/** The error for a failed import: the install command when the package is missing. */
export const loadError = (server: string, cause: unknown): McpConnectError =>
  new McpConnectError({
    server,
    message: isMissing(cause)
      ? missingMessage
      : `could not load ${packageName}: ${cause instanceof Error ? cause.message : String(cause)}`
  })

const importSdk = async (): Promise<Sdk> => {
  const [client, stdio, http, types, ajv] = await Promise.all([
    import("@modelcontextprotocol/sdk/client/index.js"),
    import("@modelcontextprotocol/sdk/client/stdio.js"),
    import("@modelcontextprotocol/sdk/client/streamableHttp.js"),
    import("@modelcontextprotocol/sdk/types.js"),
    import("@modelcontextprotocol/sdk/validation/ajv")
  ])
  return {
    Client: client.Client,
    StdioClientTransport: stdio.StdioClientTransport,
    StreamableHTTPClientTransport: http.StreamableHTTPClientTransport,
    StreamableHTTPError: http.StreamableHTTPError,
    McpError: types.McpError,
    ToolListChangedNotificationSchema: types.ToolListChangedNotificationSchema,
    AjvJsonSchemaValidator: ajv.AjvJsonSchemaValidator
  }
}

let loaded: Promise<Sdk> | undefined

/** Imports `modules` once, or fails with `loadError`. */
export const loadWith = <A>(server: string, modules: () => Promise<A>): Effect.Effect<A, McpConnectError> =>
  Effect.tryPromise({ try: modules, catch: (cause) => loadError(server, cause) })

/** The SDK's client side, imported once per process. */
export const load = (server: string): Effect.Effect<Sdk, McpConnectError> =>
  loadWith(server, () => {
    const sdk = loaded ?? importSdk()
    loaded = sdk
    // a failed import is tried again by the next connection
    sdk.catch(() => {
      if (loaded === sdk) loaded = undefined
    })
    return sdk
  })
