/**
 * The SDK's transports, as a connection uses them.
 *
 * stdio: the SDK's `StdioClientTransport`, its stderr piped and kept (the last bytes, masked)
 * for the error that reports the process's exit, and its read buffer bounded.
 *
 * Streamable HTTP: the SDK's `StreamableHTTPClientTransport` over a `fetch` that watches
 * each reply to a request. The SDK reads a reply stream that breaks mid-way, or one that never
 * ends, only into its `onerror`: the request would wait for its deadline. Here a reply body
 * that fails, or grows past `maxMessageBytes`, answers its request at once with a JSON-RPC
 * error the connection recognises (`syntheticOf`), so that call alone fails, typed.
 */
import type { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js"
import type { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import type { Sdk } from "./sdk.js"
import type { Settings } from "./options.js"

/** What a synthetic error reports. */
export type Synthetic =
  | { readonly _tag: "Broken"; readonly reason: string }
  | { readonly _tag: "Oversize"; readonly bytes: number }

/** The `data` objects of the errors injected here: no server can make one of these. */
const synthetic = new WeakMap<object, Synthetic>()

/** What an injected error reports, when `data` is one. */
export const syntheticOf = (data: unknown): Synthetic | undefined =>
  typeof data === "object" && data !== null ? synthetic.get(data) : undefined

/** The last `max` bytes of a process's stderr. */
export class Tail {
  private text = ""
  constructor(private readonly max: number) {}
  push(chunk: string): void {
    this.text = (this.text + chunk).slice(-this.max)
  }
  get value(): string {
    return this.text.trim()
  }
}

export const stdio = (
  sdk: Sdk,
  settings: Settings,
  onStderr: (chunk: string) => void
): StdioClientTransport => {
  const server = settings.server as Extract<Settings["server"], { _tag: "Stdio" }>
  const transport = new sdk.StdioClientTransport({
    command: server.command,
    args: [...(server.args ?? [])],
    env: { ...settings.clear },
    ...(server.cwd === undefined ? {} : { cwd: server.cwd }),
    stderr: "pipe",
    maxBufferSize: settings.maxMessageBytes
  })
  // read as it comes: an unread pipe would block a server that writes much to stderr
  transport.stderr?.on("data", (chunk: Buffer | string) => onStderr(chunk.toString()))
  return transport
}

/** The JSON-RPC id of a request body the SDK posts, or undefined (a notification, a response, a batch). */
const requestIdOf = (body: unknown): string | number | undefined => {
  if (typeof body !== "string") return undefined
  try {
    const message = JSON.parse(body) as { readonly id?: unknown; readonly method?: unknown }
    return typeof message.method === "string" && (typeof message.id === "string" || typeof message.id === "number") ? message.id : undefined
  } catch {
    return undefined
  }
}

export const http = (sdk: Sdk, settings: Settings): StreamableHTTPClientTransport => {
  let transport: StreamableHTTPClientTransport
  const answer = (id: string | number, message: string, data: Synthetic) => {
    const marker = {}
    synthetic.set(marker, data)
    transport.onmessage?.({ jsonrpc: "2.0", id, error: { code: -32000, message, data: marker } })
  }
  const watchedFetch = async (url: string | URL, init?: RequestInit): Promise<Response> => {
    const response = await fetch(url, init)
    const id = init?.method === "POST" ? requestIdOf(init.body) : undefined
    if (id === undefined || response.body === null || !response.ok) return response
    const reader = response.body.getReader()
    const limit = settings.maxMessageBytes
    let bytes = 0
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        let chunk: Awaited<ReturnType<typeof reader.read>>
        try {
          chunk = await reader.read()
        } catch (cause) {
          const reason = cause instanceof Error ? cause.message : String(cause)
          controller.error(cause)
          answer(id, "the reply stream broke", { _tag: "Broken", reason })
          return
        }
        if (chunk.done) return controller.close()
        bytes += chunk.value.byteLength
        if (bytes > limit) {
          const error = new Error(`the reply is over ${limit} bytes`)
          void reader.cancel(error).catch(() => undefined)
          controller.error(error)
          answer(id, error.message, { _tag: "Oversize", bytes })
          return
        }
        controller.enqueue(chunk.value)
      },
      cancel(reason) {
        return reader.cancel(reason)
      }
    })
    return new Response(body, { status: response.status, statusText: response.statusText, headers: response.headers })
  }
  transport = new sdk.StreamableHTTPClientTransport(settings.url!, {
    requestInit: { headers: { ...settings.clear } },
    fetch: watchedFetch
  })
  return transport
}
