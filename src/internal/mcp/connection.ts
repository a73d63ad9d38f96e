/**
 * One connection to an MCP server: sessions of the SDK's `Client`, calls under a deadline and
 * a size limit, every failure typed (`classify`), and the server's `tools/list_changed`
 * passed on to the toolkits made from it.
 *
 * A session over stdio is the process: when it is gone the connection is failed for good
 * (`McpServerGoneError`). Over HTTP a failed session is replaced by the next call; a 404 (the
 * server forgot the session, say after a restart) is replaced at once and the call sent
 * again, since the server did not run it.
 *
 * Errors, log lines and spans carry the server's name, never a URL or a header: every text
 * from the SDK or the server goes through the connection's `Secrets.mask` first.
 */
import type { Client } from "@modelcontextprotocol/sdk/client/index.js"
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js"
import type * as ConfigError from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import type * as Fiber from "effect/Fiber"
import * as FiberSet from "effect/FiberSet"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import type * as Mcp from "../../Mcp.js"
import { excerptOf } from "../../LlmError.js"
import {
  McpConnectError,
  McpDisconnectedError,
  type McpError,
  McpMalformedReplyError,
  McpResultTooLargeError,
  McpRpcError,
  McpServerGoneError,
  McpTimeoutError
} from "./errors.js"
import { type Settings, settingsOf } from "./options.js"
import { resultBytes } from "./results.js"
import * as Sdk from "./sdk.js"
import * as Transports from "./transport.js"

/** What a toolkit needs of its connection beyond the public interface. */
export interface Internals {
  /** Calls `f` whenever the server's tools may have changed (a notification, a new session). */
  readonly onToolsChanged: (f: () => void) => void
  /** Runs an effect in the connection's scope: interrupted when the connection closes. */
  readonly fork: <A, E>(effect: Effect.Effect<A, E>) => Fiber.RuntimeFiber<A, E>
  /** A validator of a JSON Schema (the SDK's ajv), or undefined when the schema does not compile. */
  readonly validator: (schema: Mcp.ToolInfo["inputSchema"]) => ((value: unknown) => ReadonlyArray<string>) | undefined
  readonly settings: Settings
}

const internals = new WeakMap<Mcp.Connection, Internals>()

/** The internals of a connection `connect` made; undefined for one made elsewhere (a test double). */
export const internalsOf = (connection: Mcp.Connection): Internals | undefined => internals.get(connection)

interface Session {
  readonly client: Client
  readonly transport: Transport
  /** Failed over HTTP: the next call opens another. */
  broken: boolean
  /** Resolved when the transport has closed: for stdio, once the process has exited. */
  readonly closed: Promise<void>
  readonly markClosed: () => void
  /** The stdio server's process, once spawned. */
  pid: number | undefined
  /** The calls in flight, failed at once (with the reason given) by a message the SDK could not read. */
  readonly inFlight: Set<(reason: string) => void>
}

/** How far past our own deadline the SDK's timer is set: ours fires first, the SDK's is a backstop. */
const backstopMillis = 5_000

/** The longest a stdio process is waited for when the connection closes: past the SDK's SIGKILL, at 4 s. */
const processExitMillis = 6_000

/** The longest a session's `DELETE` may take when the connection closes. */
const terminateMillis = 1_000

/** Messages quote at most this much of what the SDK or the server said. */
const maxMessageChars = 500

const messageOf = (cause: unknown): string => {
  if (!(cause instanceof Error)) return String(cause)
  // undici's "fetch failed" says why in its cause
  const inner = (cause as { cause?: unknown }).cause
  const code = typeof inner === "object" && inner !== null ? (inner as { code?: unknown }).code : undefined
  return typeof code === "string" ? `${cause.message} (${code})` : cause.message
}

/** A message the SDK could not read: not JSON, or not a JSON-RPC message or result it knows. */
const isUnreadable = (cause: unknown): boolean =>
  cause instanceof SyntaxError || (cause instanceof Error && cause.name === "ZodError")

export const connect = (
  server: Mcp.Server,
  options?: Mcp.ConnectOptions
): Effect.Effect<Mcp.Connection, McpConnectError | McpTimeoutError | ConfigError.ConfigError, Scope.Scope> =>
  Effect.gen(function*() {
    const checked = settingsOf(server, options)
    if (Either.isLeft(checked)) return yield* Effect.fail(checked.left)
    const settings = checked.right
    const name = settings.name
    const transportName = server._tag === "Stdio" ? "stdio" as const : "http" as const
    const sdk = yield* Sdk.load(name)
    const mask = (text: string) => excerptOf(settings.secrets.mask(text), maxMessageChars)
    const runFork = yield* FiberSet.makeRuntime<never>()
    const loggers = { Debug: Effect.logDebug, Info: Effect.logInfo, Warning: Effect.logWarning }
    const log = (level: keyof typeof loggers, message: string) => void runFork(loggers[level](`Mcp ${JSON.stringify(name)}: ${mask(message)}`))

    const stderr = new Transports.Tail(4096)
    const listeners = new Set<() => void>()
    const toolsChanged = () => {
      for (const listener of listeners) listener()
    }
    const state = {
      closing: false,
      session: undefined as Session | undefined,
      sessions: 0,
      gone: undefined as McpServerGoneError | undefined,
      pid: undefined as number | undefined
    }

    const goneError = (tool?: string): McpServerGoneError => {
      const output = stderr.value
      const message = `the MCP server ${JSON.stringify(name)}${state.pid === undefined ? "" : ` (process ${state.pid})`} is gone` +
        (output.length === 0 ? "" : `; its last output on stderr: ${settings.secrets.mask(output)}`)
      return new McpServerGoneError({ server: name, ...(tool === undefined ? {} : { tool }), message: excerptOf(message, 2 * maxMessageChars) })
    }

    /** The error of a process that is gone, naming the call's tool. */
    const goneFor = (tool: string | undefined): McpServerGoneError => {
      const gone = state.gone ?? goneError()
      return tool === undefined ? gone : new McpServerGoneError({ server: gone.server, tool, message: gone.message })
    }

    /** Every failure of the SDK or the server as a typed error. */
    const classify = (cause: unknown, tool: string | undefined, operation: string, timeoutMillis: number): McpError => {
      const about = tool === undefined ? {} : { tool }
      if (cause instanceof sdk.McpError) {
        const injected = Transports.syntheticOf(cause.data)
        if (injected !== undefined) {
          return injected._tag === "Oversize"
            ? new McpResultTooLargeError({ server: name, tool: tool ?? operation, bytes: injected.bytes, limit: settings.maxResultBytes })
            : new McpDisconnectedError({ server: name, ...about, message: mask(`the reply stream broke: ${injected.reason}`) })
        }
        const text = cause.message.replace(/^(MCP error -?\d+: )+/, "")
        if (cause.code === -32000) {
          // ConnectionClosed: the process is gone, or the HTTP session was closed under the call
          return transportName === "stdio"
            ? goneFor(tool)
            : new McpDisconnectedError({ server: name, ...about, message: mask(text) })
        }
        if (cause.code === -32001) return new McpTimeoutError({ server: name, ...about, operation, timeoutMillis })
        return new McpRpcError({ server: name, ...about, code: cause.code, message: mask(text) })
      }
      if (cause instanceof sdk.StreamableHTTPError) {
        const status = typeof cause.code === "number" && cause.code > 0 ? { status: cause.code } : {}
        return new McpDisconnectedError({ server: name, ...about, ...status, message: mask(cause.message) })
      }
      if (isUnreadable(cause)) return new McpMalformedReplyError({ server: name, ...about, message: mask(`the server's reply is not valid: ${messageOf(cause)}`) })
      if (transportName === "stdio") return goneFor(tool)
      return new McpDisconnectedError({ server: name, ...about, message: mask(messageOf(cause)) })
    }

    /**
     * Ends a session. A stdio process is waited for: the SDK closes its input, then sends
     * SIGTERM, then SIGKILL, two seconds apart; the SDK may have begun that already (a failed
     * handshake closes the client), so the wait is on the process's own end.
     */
    const closeSession = (session: Session): Promise<void> => {
      const terminate = session.transport instanceof sdk.StreamableHTTPClientTransport
        ? Promise.race([
          session.transport.terminateSession().catch(() => undefined),
          new Promise<void>((resolve) => setTimeout(resolve, terminateMillis).unref())
        ])
        : Promise.resolve()
      const closing = terminate.then(() => session.client.close()).catch(() => undefined)
        .then(() => session.transport.close()).catch(() => undefined)
      if (session.pid === undefined) return closing
      return closing.then(() => Promise.race([session.closed, new Promise<void>((resolve) => setTimeout(resolve, processExitMillis).unref())]))
    }

    yield* Effect.addFinalizer(() =>
      Effect.promise(() => {
        state.closing = true
        const session = state.session
        state.session = undefined
        return session === undefined ? Promise.resolve() : closeSession(session)
      })
    )

    const openSession: Effect.Effect<Session, McpConnectError | McpTimeoutError> = Effect.suspend(() => {
      const client = new sdk.Client({ name: "effect-llm", version: "0.1.0" }, { capabilities: {} })
      const transport: Transport = transportName === "stdio"
        ? Transports.stdio(sdk, settings, (chunk) => {
          stderr.push(chunk)
          log("Debug", `stderr: ${chunk.trimEnd()}`)
        })
        : Transports.http(sdk, settings)
      let markClosed = () => {}
      const closed = new Promise<void>((resolve) => (markClosed = resolve))
      const session: Session = { client, transport, closed, markClosed, pid: undefined, broken: false, inFlight: new Set() }
      const previous = state.session
      // the scope's finalizer closes whatever session is current, even one still connecting
      state.session = session
      if (previous !== undefined) void closeSession(previous)
      client.onerror = (cause) => {
        if (state.closing) return
        log("Debug", `the SDK reports: ${messageOf(cause)}`)
        if (isUnreadable(cause) && session.inFlight.size > 0) {
          // the protocol cannot tell which call an unreadable message answered: every call in flight fails
          const reason = mask(`the server sent a message that is not valid JSON-RPC: ${messageOf(cause)}`)
          for (const fail of [...session.inFlight]) fail(reason)
        }
      }
      client.onclose = () => {
        session.markClosed()
        if (state.closing || state.session !== session) return
        if (transportName === "stdio") {
          state.gone = goneError()
          log("Warning", state.gone.message)
        } else {
          session.broken = true
        }
      }
      client.setNotificationHandler(sdk.ToolListChangedNotificationSchema, async () => toolsChanged())
      return Effect.tryPromise({
        try: (signal) => {
          const connecting = client.connect(transport, { signal, timeout: settings.connectTimeoutMillis + backstopMillis })
          // the SDK spawns the process at once, before its first await
          if (transport instanceof sdk.StdioClientTransport) state.pid = session.pid = transport.pid ?? undefined
          return connecting
        },
        catch: (cause) => {
          if (cause instanceof sdk.McpError && cause.code === -32001) {
            return new McpTimeoutError({ server: name, operation: "initialize", timeoutMillis: settings.connectTimeoutMillis })
          }
          // a process that exited during the handshake says why on its stderr
          const exited = transportName === "stdio" && cause instanceof sdk.McpError && cause.code === -32000
          return new McpConnectError({ server: name, message: `could not connect: ${exited ? goneFor(undefined).message : mask(messageOf(cause))}` })
        }
      }).pipe(
        Effect.timeoutFail({
          duration: settings.connectTimeoutMillis,
          onTimeout: () => new McpTimeoutError({ server: name, operation: "initialize", timeoutMillis: settings.connectTimeoutMillis })
        }),
        Effect.map(() => {
          state.sessions += 1
          if (state.sessions > 1) {
            log("Info", "a new session is open")
            toolsChanged()
          }
          return session
        })
      )
    })

    yield* openSession.pipe(
      Effect.withSpan("Mcp.connect", { attributes: { "mcp.server": name, "mcp.transport": transportName }, captureStackTrace: false })
    )

    /** One session at a time is opened; calls waiting for it share it. */
    const opening = yield* Effect.makeSemaphore(1)
    const current = (tool: string | undefined): Effect.Effect<Session, McpError> =>
      Effect.suspend((): Effect.Effect<Session, McpError> => {
        if (state.gone !== undefined) return Effect.fail(goneFor(tool))
        const session = state.session
        if (session !== undefined && !session.broken) return Effect.succeed(session)
        return opening.withPermits(1)(Effect.suspend(() => {
          const now = state.session
          return now !== undefined && !now.broken ? Effect.succeed(now) : openSession
        })).pipe(
          Effect.mapError((error) =>
            error._tag === "McpTimeoutError" ? error : new McpDisconnectedError({ server: name, ...(tool === undefined ? {} : { tool }), message: error.message })
          )
        )
      })

    /** One request on a session; fails at once, typed, when the session fails under it. */
    const request = <A>(
      session: Session,
      tool: string | undefined,
      operation: string,
      send: (client: Client, options: { readonly signal: AbortSignal; readonly timeout: number }) => Promise<A>
    ): Effect.Effect<A, McpError> =>
      Effect.async<A, McpError>((resume) => {
        const controller = new AbortController()
        let done = false
        const settle = (effect: Effect.Effect<A, McpError>) => {
          if (done) return
          done = true
          session.inFlight.delete(fail)
          resume(effect)
        }
        const fail = (reason: string) => {
          controller.abort()
          settle(Effect.fail(new McpMalformedReplyError({ server: name, ...(tool === undefined ? {} : { tool }), message: reason })))
        }
        session.inFlight.add(fail)
        send(session.client, { signal: controller.signal, timeout: settings.timeoutMillis + backstopMillis }).then(
          (value) => settle(Effect.succeed(value)),
          (cause) => {
            const error = classify(cause, tool, operation, settings.timeoutMillis)
            if (error._tag === "McpDisconnectedError" && transportName === "http" && !session.broken) {
              session.broken = true
              log("Warning", `${error.message}; the next call opens a new session`)
            }
            settle(Effect.fail(error))
          }
        )
        // interrupted (the deadline, the caller): the SDK sends notifications/cancelled
        return Effect.sync(() => {
          done = true
          session.inFlight.delete(fail)
          controller.abort()
        })
      })

    /** A request on the current session; over HTTP, once more on a new session when the server forgot the old one. */
    const withSession = <A>(
      tool: string | undefined,
      operation: string,
      send: (client: Client, options: { readonly signal: AbortSignal; readonly timeout: number }) => Promise<A>
    ): Effect.Effect<A, McpError> =>
      Effect.flatMap(current(tool), (session) =>
        request(session, tool, operation, send).pipe(
          Effect.catchIf(
            (error) => error._tag === "McpDisconnectedError" && error.status === 404,
            () => Effect.flatMap(current(tool), (fresh) => request(fresh, tool, operation, send))
          )
        )).pipe(
          Effect.timeoutFail({
            duration: settings.timeoutMillis,
            onTimeout: () => new McpTimeoutError({ server: name, ...(tool === undefined ? {} : { tool }), operation, timeoutMillis: settings.timeoutMillis })
          })
        )

    const listTools: Effect.Effect<ReadonlyArray<Mcp.ToolInfo>, McpError> = Effect.gen(function*() {
      const session = yield* current(undefined)
      if (session.client.getServerCapabilities()?.tools === undefined) return []
      const tools: Array<Mcp.ToolInfo> = []
      let cursor: string | undefined
      // a server that pages forever is cut off by the deadline
      do {
        const page = yield* withSession(undefined, "tools/list", (client, options) => client.listTools(cursor === undefined ? undefined : { cursor }, options))
        tools.push(...(page.tools as ReadonlyArray<Mcp.ToolInfo>))
        cursor = page.nextCursor
      } while (cursor !== undefined)
      return tools
    }).pipe(
      Effect.timeoutFail({
        duration: settings.timeoutMillis,
        onTimeout: () => new McpTimeoutError({ server: name, operation: "tools/list", timeoutMillis: settings.timeoutMillis })
      }),
      Effect.withSpan("Mcp.listTools", { attributes: { "mcp.server": name }, captureStackTrace: false })
    )

    const callTool = (tool: string, args: { readonly [key: string]: unknown } = {}): Effect.Effect<Mcp.CallToolResult, McpError> =>
      withSession(tool, "tools/call", (client, options) => client.callTool({ name: tool, arguments: { ...args } }, undefined, options)).pipe(
        Effect.flatMap((result): Effect.Effect<Mcp.CallToolResult, McpError> => {
          const reply = result as Mcp.CallToolResult
          if (!Array.isArray(reply.content)) {
            return Effect.fail(new McpMalformedReplyError({ server: name, tool, message: "the reply has no content array: a task result, which this client does not ask for" }))
          }
          const bytes = resultBytes(reply)
          return bytes > settings.maxResultBytes
            ? Effect.fail(new McpResultTooLargeError({ server: name, tool, bytes, limit: settings.maxResultBytes }))
            : Effect.succeed(reply)
        }),
        Effect.withSpan("Mcp.callTool", { attributes: { "mcp.server": name, "mcp.tool": tool }, captureStackTrace: false })
      )

    const validators = new sdk.AjvJsonSchemaValidator()
    const connection: Mcp.Connection = {
      name,
      transport: transportName,
      pid: state.pid,
      serverInfo: Effect.sync(() => {
        const client = state.session?.client
        const info = client?.getServerVersion()
        const instructions = client?.getInstructions()
        return { name: info?.name ?? "", version: info?.version ?? "", ...(instructions === undefined ? {} : { instructions }) }
      }),
      listTools,
      callTool,
      failure: Effect.sync(() => Option.fromNullable(state.gone))
    }
    internals.set(connection, {
      settings,
      onToolsChanged: (f) => void listeners.add(f),
      fork: (effect) => runFork(effect),
      validator: (schema) => {
        try {
          const { $schema: _, ...rest } = schema as Record<string, unknown>
          const check = validators.getValidator(rest)
          return (value) => {
            const result = check(value)
            return result.valid ? [] : [`they do not match the tool's JSON Schema: ${result.errorMessage ?? "invalid"}`]
          }
        } catch {
          // a schema ajv cannot compile: the server checks the arguments
          return undefined
        }
      }
    })
    return connection
  })
