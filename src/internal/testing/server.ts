/**
 * The HTTP server behind `Testing.FakeProvider`: a real server on loopback that speaks
 * the providers' wire formats and injects faults on demand.
 */
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import type { FakeBatchOptions, Fault, FakeProviderOptions, FakeTurn, OpenRouterKey, RecordedRequest, Reply, Responder } from "../../Testing.js"
import { verify as verifyZhipuToken } from "../providers/openaiChat/zhipu.js"
import { defaultMinTokens, noCache, PromptCache } from "./promptCache.js"
import * as batchRoutes from "./batchRoutes.js"
import { bodyOf, describeMedia, errorBody, type FakeRoute, requestIdOf, sleep, type StreamFault } from "./route.js"

export interface FakeServer {
  readonly url: string
  readonly zhipuKeys: ReadonlyArray<string> | undefined
  readonly requests: Array<RecordedRequest>
  readonly faults: Array<Fault>
  reply: Reply
  replies: ReadonlyArray<Reply>
  /** Chat requests answered so far (faults aside): the next one's turn. */
  turns: number
  respond: Responder | undefined
  openRouterKey: OpenRouterKey
  readonly promptCache: PromptCache
  /** The batch APIs' batches and files, and how they behave. */
  readonly batches: batchRoutes.BatchStore
  batchOptions: FakeBatchOptions
  close(): Promise<void>
}

/** Each wire format the fake speaks (routes.ts, loaded when a fake first starts); the first whose `matches` accepts the path answers. */
let routes: ReadonlyArray<FakeRoute> = []
let loaded: Promise<void> | undefined

/**
 * A process-wide observer of every request any fake receives. Test suites set it (see
 * test/setup/requests.ts) to check every outgoing body against the providers' published
 * schemas, whichever test sent it.
 */
const observerKey = Symbol.for("effect-llm/Testing/onFakeRequest")

const observe = (request: RecordedRequest): void => {
  const observer = (globalThis as { [observerKey]?: unknown })[observerKey]
  if (typeof observer === "function") (observer as (request: RecordedRequest) => void)(request)
}

export const start = async (options: FakeProviderOptions): Promise<FakeServer> => {
  await (loaded ??= import("./routes.js").then((m) => void (routes = m.routes)))
  const requests: Array<RecordedRequest> = []
  const faults: Array<Fault> = [...(options.faults ?? [])]
  const state: FakeServer = {
    url: "",
    requests,
    faults,
    reply: options.reply ?? {},
    replies: options.replies ?? [],
    turns: 0,
    respond: options.respond,
    zhipuKeys: options.zhipuKeys,
    openRouterKey: options.openRouterKey ?? defaultOpenRouterKey,
    promptCache: new PromptCache(options.promptCacheMinTokens ?? defaultMinTokens),
    batches: batchRoutes.makeStore(),
    batchOptions: options.batch ?? {},
    close: () => Promise.resolve()
  }
  const record = options.record ?? true
  let counter = 0

  const server = http.createServer((req, res) => {
    const pieces: Array<Buffer> = []
    req.on("data", (piece: Buffer) => pieces.push(piece))
    req.on("end", () => {
      const raw = Buffer.concat(pieces).toString("utf8")
      let body: unknown
      try {
        body = raw.length === 0 ? undefined : JSON.parse(raw)
      } catch {
        body = raw
      }
      const recorded: RecordedRequest = {
        index: counter++,
        method: req.method ?? "GET",
        path: req.url ?? "/",
        headers: req.headers as Record<string, string | Array<string> | undefined>,
        body
      }
      if (record) requests.push(recorded)
      observe(recorded)
      void batchRoutes.handle(state.batches, state.url, state.batchOptions, recorded, raw, res).then((served) => (served ? undefined : handle(state, recorded, req, res))).catch((error: unknown) => {
        if (res.headersSent) {
          res.destroy()
          return
        }
        // a failure of the fake itself (a throwing responder, …): a 500 in the API's shape, saying so
        const path = recorded.path.split("?")[0]!
        const message = `the fake provider failed: ${error instanceof Error ? error.message : String(error)}`
        const route = routes.find((r) => r.matches(path, recorded))
        res.writeHead(500, { "content-type": "application/json" })
        res.end(route?.errorBody?.(500, message, { path }) ?? errorBody(message, "server_error", null))
      })
    })
  })
  server.keepAliveTimeout = 60_000
  return new Promise((resolve, reject) => {
    server.once("error", reject)
    server.listen(options.port ?? 0, "127.0.0.1", () => {
      const address = server.address() as AddressInfo
      resolve(
        Object.assign(state, {
          url: `http://127.0.0.1:${address.port}`,
          close: () =>
            new Promise<void>((done) => {
              server.close(() => done())
              server.closeAllConnections()
            })
        })
      )
    })
  })
}

const defaultOpenRouterKey: OpenRouterKey = {
  label: "sk-or-v1-fak...key",
  limit: null,
  usage: 0,
  limit_remaining: null,
  is_free_tier: false,
  rate_limit: { requests: 200, interval: "10s" }
}

/**
 * What answers this request: a queued fault, or the reply for its turn. A fault takes no turn;
 * the faults that carry a body carry the reply its turn would get (the responder's, the
 * scripted one), so that a retry after the fault sees the same reply, whole.
 */
const nextAction = (
  state: FakeServer,
  request: RecordedRequest,
  route: FakeRoute | undefined,
  said: Partial<Omit<FakeTurn, "turn">> | undefined
): { readonly action: Fault | Reply; readonly reply: Reply } => {
  const fault = state.faults.length > 0 ? state.faults.shift()! : undefined
  // chat routes read their requests; embeddings requests take no turn
  const turn = state.turns
  if (fault === undefined && route?.read !== undefined) state.turns++
  const scripted = state.replies.length > 0 ? state.replies[Math.min(turn, state.replies.length - 1)]! : state.reply
  const responded = state.respond?.(request, { turn, toolResults: [], lastUserText: undefined, tools: [], reasoningState: [], media: [], ...said })
  if (fault !== undefined) {
    // a responder that answers with a fault of its own leaves the scripted reply to the queued one
    return { action: fault, reply: responded === undefined || isFault(responded) ? scripted : responded }
  }
  const action = responded ?? scripted
  return { action, reply: isFault(action) ? scripted : action }
}

const isFault = (x: Fault | Reply): x is Fault => "_tag" in x && typeof (x as { _tag: unknown })._tag === "string"

const handle = async (
  state: FakeServer,
  request: RecordedRequest,
  req: http.IncomingMessage,
  res: http.ServerResponse
): Promise<void> => {
  const path = request.path.split("?")[0]!
  if (state.zhipuKeys !== undefined) {
    const problem = verifyZhipuToken(req.headers.authorization, state.zhipuKeys, Date.now())
    if (problem !== undefined) {
      res.writeHead(401, { "content-type": "application/json" })
      res.end(errorBody(`zhipu token refused: ${problem}`, "authentication_error", "invalid_api_key"))
      return
    }
  }
  if (request.method === "GET" && path.endsWith("/key")) {
    // OpenRouter's key endpoint: metadata, outside the chat script of faults and replies
    res.writeHead(200, { "content-type": "application/json" })
    res.end(JSON.stringify({ data: state.openRouterKey }))
    return
  }
  const route = routes.find((r) => r.matches(path, request))
  const said = route?.read?.(bodyOf(request))
  const { action, reply: scripted } = nextAction(state, request, route, said)
  // without a scripted text, a reply to media says what it received
  const media = said?.media ?? []
  const reply = scripted.text === undefined && media.length > 0 ? { ...scripted, text: describeMedia(media) } : scripted
  const replyChat = (fault: StreamFault | undefined) => answer(state, route, reply, request, res, path, fault)
  const requestId: Record<string, string> = route?.requestId === undefined ? {} : { [route.requestId]: requestIdOf(request) }
  if (isFault(action)) {
    switch (action._tag) {
      case "Reset":
        req.socket.destroy()
        return
      case "RateLimit": {
        const headers: Record<string, string> = { "content-type": "application/json", ...requestId }
        if (action.retryAfterMs !== undefined) headers["retry-after-ms"] = String(action.retryAfterMs)
        if (action.retryAfterSeconds !== undefined) headers["retry-after"] = String(action.retryAfterSeconds)
        res.writeHead(429, headers)
        const routeErrorBody = route?.errorBody
        const retryAfterMs = action.retryAfterMs ?? (action.retryAfterSeconds === undefined ? undefined : action.retryAfterSeconds * 1000)
        res.end(
          routeErrorBody !== undefined
            ? routeErrorBody(429, "Rate limit reached for requests", { path, retryAfterMs, insufficientQuota: action.insufficientQuota })
            : action.insufficientQuota
            ? errorBody("You exceeded your current quota.", "insufficient_quota", "insufficient_quota")
            : errorBody("Rate limit reached for requests", "requests", "rate_limit_exceeded")
        )
        return
      }
      case "Status":
        res.writeHead(action.status, { "content-type": "application/json", ...requestId, ...action.headers })
        res.end(
          action.body ?? route?.errorBody?.(action.status, `fake ${action.status}`, { path }) ??
            errorBody(`fake ${action.status}`, action.status >= 500 ? "server_error" : "invalid_request_error", null)
        )
        return
      case "Raw": {
        if (action.delayMs) await sleep(action.delayMs)
        res.writeHead(action.status ?? 200, { "content-type": action.contentType ?? "text/event-stream", ...action.headers })
        const parts = typeof action.body === "string" ? [action.body] : action.body
        for (const part of parts) {
          res.write(part)
          if (action.chunkDelayMs) await sleep(action.chunkDelayMs)
        }
        res.end()
        return
      }
      case "SlowFirstByte":
        await sleep(action.delayMs)
        return replyChat(undefined)
      case "MalformedJson":
      case "NullFrame":
      case "CutStream":
      case "StreamErrorEvent":
        return replyChat(action)
    }
  }
  return replyChat(undefined)
}

const answer = async (
  state: FakeServer,
  route: FakeRoute | undefined,
  reply: Reply,
  request: RecordedRequest,
  res: http.ServerResponse,
  path: string,
  fault: StreamFault | undefined
): Promise<void> => {
  if (route === undefined) {
    // the 404 of the API the path belongs to, as a client of that API expects it
    const owner = routes.find((r) => r.owns?.(path, request) === true)
    res.writeHead(404, { "content-type": "application/json", ...(owner?.requestId === undefined ? {} : { [owner.requestId]: requestIdOf(request) }) })
    res.end(owner?.errorBody?.(404, `no route for ${path}`, { path }) ?? errorBody(`no route for ${path}`, "invalid_request_error", "not_found"))
    return
  }
  const blocks = route.promptBlocks?.(bodyOf(request))
  const cache = blocks === undefined ? noCache : state.promptCache.use(blocks, route.automaticCache === true)
  return route.reply(reply, request, res, fault, cache)
}
