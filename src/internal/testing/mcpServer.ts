/**
 * `Testing.McpServer`: a scripted MCP server on loopback, over Streamable HTTP, built on the
 * SDK's own server classes (`Server`, `StreamableHTTPServerTransport`; one of each per session,
 * as the SDK has it). Its tools answer as scripted; faults injected for the next calls are
 * answered by the HTTP layer itself, before the SDK sees the request: a reply that never
 * comes, a connection dropped mid-reply, a reply that is not JSON-RPC, an HTTP error status.
 * It records every `tools/call` with its headers, and `restart` forgets every session, as a
 * server that restarted does. The SDK is imported when a server starts, so `effect-llm/Testing`
 * needs it only for this.
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Runtime from "effect/Runtime"
import type * as Scope from "effect/Scope"
import { randomUUID } from "node:crypto"
import { createServer, type IncomingMessage, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import type * as Mcp from "../../Mcp.js"
import type * as Message from "../../Message.js"
import { loadWith } from "../mcp/sdk.js"

/**
 * A scripted tool. `reply` is the answer: text, a whole result, or a function of the arguments
 * returning either (an effect, so it may wait, fail to answer, or change the tool list with
 * `call.setTools`, which notifies on the call's own reply stream). Default: the arguments as
 * JSON text.
 * @since 0.1.0 @category mcp server
 */
export interface McpServerTool {
  readonly name: string
  readonly description?: string | undefined
  /** Default `{ "type": "object" }`. */
  readonly inputSchema?: Message.JsonSchema | undefined
  readonly outputSchema?: Message.JsonSchema | undefined
  readonly reply?:
    | string
    | Mcp.CallToolResult
    | ((args: { readonly [key: string]: unknown }, call: McpServerCallContext) => Effect.Effect<string | Mcp.CallToolResult>)
    | undefined
  /** Every call of this tool gets this fault instead of a reply (after any injected one). */
  readonly fault?: McpServerFault | undefined
}

/** @since 0.1.0 @category mcp server */
export interface McpServerCallContext {
  /** Replaces the tool list and sends `notifications/tools/list_changed`: on this call's stream, and to every other session. */
  readonly setTools: (tools: ReadonlyArray<McpServerTool>) => Effect.Effect<void>
}

/**
 * A fault for the next `tools/call` request (in order, one per call), answered by the server's
 * HTTP layer: `Hang` sends the reply's headers and nothing more, `Disconnect` sends the headers
 * and drops the connection, `Malformed` sends an event whose data is not JSON-RPC (or `body`,
 * raw), `Status` answers that HTTP status with `body`.
 * @since 0.1.0 @category mcp server
 */
export type McpServerFault =
  | { readonly _tag: "Hang" }
  | { readonly _tag: "Disconnect" }
  | { readonly _tag: "Malformed"; readonly body?: string | undefined }
  | { readonly _tag: "Status"; readonly status: number; readonly body?: string | undefined }

/** @since 0.1.0 @category mcp server */
export interface McpServerCall {
  readonly name: string
  readonly arguments: { readonly [key: string]: unknown }
  readonly headers: Readonly<Record<string, string | ReadonlyArray<string> | undefined>>
}

/** @since 0.1.0 @category mcp server */
export interface McpServerOptions {
  readonly tools: ReadonlyArray<McpServerTool>
  /** The server's name in the handshake. Default `effect-llm-testing`. */
  readonly name?: string | undefined
  /** Default 0: a free port. */
  readonly port?: number | undefined
}

/** @since 0.1.0 @category mcp server */
export interface McpServerService {
  /** `http://127.0.0.1:PORT/mcp` */
  readonly url: string
  /** Every `tools/call` received, faulted or not, in order. */
  readonly calls: Effect.Effect<ReadonlyArray<McpServerCall>>
  /** Replaces the tool list and notifies every session (`notifications/tools/list_changed`). */
  readonly setTools: (tools: ReadonlyArray<McpServerTool>) => Effect.Effect<void>
  /** Queues faults for the next `tools/call` requests, in order. */
  readonly inject: (...faults: ReadonlyArray<McpServerFault>) => Effect.Effect<void>
  /** Forgets every session, as a restarted server: a client's next request gets a 404. */
  readonly restart: Effect.Effect<void>
}

type Sdk = Awaited<ReturnType<typeof importSdk>>

const importSdk = async () => {
  const [server, http, types] = await Promise.all([
    import("@modelcontextprotocol/sdk/server/index.js"),
    import("@modelcontextprotocol/sdk/server/streamableHttp.js"),
    import("@modelcontextprotocol/sdk/types.js")
  ])
  return { Server: server.Server, Transport: http.StreamableHTTPServerTransport, types }
}

const makeMcpServer = (options: McpServerOptions) => makeMcpServerWith(options, importSdk)

interface Session {
  readonly server: InstanceType<Sdk["Server"]>
  readonly transport: InstanceType<Sdk["Transport"]>
}

const readBody = (req: IncomingMessage): Promise<string> =>
  new Promise((resolve, reject) => {
    const chunks: Array<Buffer> = []
    req.on("data", (chunk: Buffer) => chunks.push(chunk))
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")))
    req.on("error", reject)
  })

const isCall = (body: unknown): body is { readonly id: string | number; readonly params: { readonly name: string; readonly arguments?: Record<string, unknown> } } =>
  typeof body === "object" && body !== null && (body as { method?: unknown }).method === "tools/call"

const asResult = (reply: string | Mcp.CallToolResult): Mcp.CallToolResult =>
  typeof reply === "string" ? { content: [{ type: "text", text: reply }] } : reply

/** The server over the SDK `modules` gives; without the SDK (an optional peer dependency), a defect naming the install command. */
export const makeMcpServerWith = (options: McpServerOptions, modules: () => Promise<Sdk>): Effect.Effect<McpServerService, never, Scope.Scope> =>
  Effect.gen(function*() {
    const sdk = yield* Effect.orDieWith(loadWith("Testing.McpServer", modules), (error) => new Error(error.message))
    const runtime = yield* Effect.runtime<never>()
    let tools = options.tools
    const calls: Array<McpServerCall> = []
    const faults: Array<McpServerFault> = []
    const sessions = new Map<string, Session>()
    const hanging = new Set<ServerResponse>()

    const listed = () =>
      tools.map((tool) => ({
        name: tool.name,
        ...(tool.description === undefined ? {} : { description: tool.description }),
        inputSchema: (tool.inputSchema ?? { type: "object" }) as { type: "object" },
        ...(tool.outputSchema === undefined ? {} : { outputSchema: tool.outputSchema as { type: "object" } })
      }))

    const notifyAll = (except?: Session) =>
      Promise.all([...sessions.values()].filter((s) => s !== except).map((s) => s.server.sendToolListChanged().catch(() => undefined)))

    const newSession = async (): Promise<Session> => {
      const server = new sdk.Server(
        { name: options.name ?? "effect-llm-testing", version: "0.1.0" },
        { capabilities: { tools: { listChanged: true } } }
      )
      const transport: InstanceType<Sdk["Transport"]> = new sdk.Transport({
        sessionIdGenerator: () => randomUUID(),
        onsessioninitialized: (id) => void sessions.set(id, session)
      })
      const session: Session = { server, transport }
      server.setRequestHandler(sdk.types.ListToolsRequestSchema, async () => ({ tools: listed() }))
      server.setRequestHandler(sdk.types.CallToolRequestSchema, async (request, extra) => {
        const tool = tools.find((t) => t.name === request.params.name)
        if (tool === undefined) throw new sdk.types.McpError(sdk.types.ErrorCode.InvalidParams, `Tool ${request.params.name} not found`)
        const args = request.params.arguments ?? {}
        const reply = tool.reply ?? JSON.stringify(args)
        if (typeof reply !== "function") return asResult(reply) as never
        const context: McpServerCallContext = {
          setTools: (next) =>
            Effect.promise(async () => {
              tools = next
              await extra.sendNotification({ method: "notifications/tools/list_changed" })
              await notifyAll(session)
            })
        }
        const result = await Runtime.runPromise(runtime)(reply(args, context), { signal: extra.signal })
        return asResult(result) as never
      })
      await server.connect(transport)
      return session
    }

    const fault = (f: McpServerFault, id: string | number, res: ServerResponse) => {
      const sse = { "content-type": "text/event-stream", "cache-control": "no-cache" }
      switch (f._tag) {
        case "Hang":
          res.writeHead(200, sse)
          res.flushHeaders()
          hanging.add(res)
          res.on("close", () => hanging.delete(res))
          return
        case "Disconnect":
          res.writeHead(200, sse)
          res.flushHeaders()
          setImmediate(() => res.socket?.destroy())
          return
        case "Malformed":
          res.writeHead(200, sse)
          res.end(`event: message\ndata: ${f.body ?? `{"jsonrpc":"2.0","id":${JSON.stringify(id)},"result":{"content":[`}\n\n`)
          return
        case "Status":
          res.writeHead(f.status, { "content-type": "text/plain" })
          res.end(f.body ?? "")
          return
      }
    }

    const notFound = (res: ServerResponse) => {
      res.writeHead(404, { "content-type": "application/json" })
      res.end(JSON.stringify({ jsonrpc: "2.0", error: { code: -32001, message: "Session not found" }, id: null }))
    }

    const handle = async (req: IncomingMessage, res: ServerResponse) => {
      if (new URL(req.url ?? "/", "http://localhost").pathname !== "/mcp") return notFound(res)
      const sessionId = req.headers["mcp-session-id"]
      const session = typeof sessionId === "string" ? sessions.get(sessionId) : undefined
      if (req.method !== "POST") return session === undefined ? notFound(res) : session.transport.handleRequest(req, res)
      let body: unknown
      try {
        body = JSON.parse(await readBody(req))
      } catch {
        res.writeHead(400, { "content-type": "application/json" })
        return res.end(JSON.stringify({ jsonrpc: "2.0", error: { code: -32700, message: "Parse error" }, id: null }))
      }
      if (isCall(body)) {
        calls.push({ name: body.params.name, arguments: body.params.arguments ?? {}, headers: { ...req.headers } })
        const next = faults.shift() ?? tools.find((tool) => tool.name === body.params.name)?.fault
        if (next !== undefined) return fault(next, body.id, res)
      }
      if (session !== undefined) return session.transport.handleRequest(req, res, body)
      if (sessionId === undefined && sdk.types.isInitializeRequest(body)) return (await newSession()).transport.handleRequest(req, res, body)
      return notFound(res)
    }

    const http = createServer((req, res) => {
      handle(req, res).catch(() => {
        if (!res.headersSent) res.writeHead(500)
        res.end()
      })
    })
    const forget = async () => {
      const all = [...sessions.values()]
      sessions.clear()
      await Promise.all(all.map((s) => s.transport.close().catch(() => undefined)))
      for (const res of hanging) res.end()
      hanging.clear()
    }
    yield* Effect.acquireRelease(
      Effect.async<void>((resume) => void http.listen(options.port ?? 0, "127.0.0.1", () => resume(Effect.void))),
      () =>
        Effect.promise(async () => {
          await forget()
          http.closeAllConnections()
          await new Promise<void>((resolve) => http.close(() => resolve()))
        })
    )
    const port = (http.address() as AddressInfo).port
    return {
      url: `http://127.0.0.1:${port}/mcp`,
      calls: Effect.sync(() => [...calls]),
      setTools: (next) =>
        Effect.promise(async () => {
          tools = next
          await notifyAll()
        }),
      inject: (...more) => Effect.sync(() => void faults.push(...more)),
      restart: Effect.promise(forget)
    }
  })

/**
 * A scripted MCP server on loopback (Streamable HTTP), on a free port, closed with its scope.
 * Connect to it with `Mcp.connect(Mcp.http({ url: server.url }))`.
 * @since 0.1.0 @category mcp server
 */
export class McpServer extends Context.Tag("effect-llm/Testing/McpServer")<McpServer, McpServerService>() {
  /** Starts a server in the current scope. */
  static readonly make = makeMcpServer
  /** The server as a scoped layer. */
  static readonly layer = (options: McpServerOptions): Layer.Layer<McpServer> => Layer.scoped(McpServer, makeMcpServer(options))
}
