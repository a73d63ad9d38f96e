/** What every wire format of the fake shares: the route shape, and how a reply or a fault is written. */
import type * as http from "node:http"
import type { Fault, FakeMedia, FakeTurn, RecordedRequest, Reply } from "../../Testing.js"
import type { CacheUsage, PromptBlock } from "./promptCache.js"

/** Faults that a route renders in its own wire format (the rest are generic HTTP faults). */
export type StreamFault = Extract<Fault, { _tag: "MalformedJson" | "NullFrame" | "CutStream" | "StreamErrorEvent" }>

export interface FakeRoute {
  readonly matches: (path: string, request: RecordedRequest) => boolean
  /** Writes the reply; `cache` is what the fake's prompt cache read and wrote for this request, for its usage. */
  readonly reply: (reply: Reply, request: RecordedRequest, res: http.ServerResponse, fault: StreamFault | undefined, cache: CacheUsage) => Promise<void>
  /**
   * The prompt as the API reads it (tools, system, messages), block by block, with the
   * breakpoints it carries: what the fake's prompt cache keys on. Absent, nothing is cached.
   */
  readonly promptBlocks?: (body: Record<string, unknown>) => ReadonlyArray<PromptBlock>
  /** The API caches prefixes on its own, breakpoints or none (OpenAI, Gemini). */
  readonly automaticCache?: boolean
  /** What a chat request of this format says, for responders (the turn number aside). */
  readonly read?: (body: Record<string, unknown>) => Partial<Omit<FakeTurn, "turn">>
  /** This format's error body for generic faults; the OpenAI shape when absent. */
  readonly errorBody?: (status: number, message: string, options: ErrorBodyOptions) => string
  /** The header the API names each request in (`x-request-id`, `request-id`), on replies and errors. */
  readonly requestId?: string
  /**
   * The paths and requests of this API that no route serves, so that they get its 404 body
   * (the first route in table order that claims one answers; OpenAI's shape otherwise).
   */
  readonly owns?: (path: string, request: RecordedRequest) => boolean
}

/** The fake's id for a request, as the APIs' request-id headers carry one. */
export const requestIdOf = (request: RecordedRequest): string => `req_fake_${request.index}`

export interface ErrorBodyOptions {
  /** The request path, for routes that serve several formats. */
  readonly path?: string | undefined
  readonly retryAfterMs?: number | undefined
  readonly insufficientQuota?: boolean | undefined
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

export const approxTokens = (text: string) => Math.ceil(text.length / 4)

/** The text the fake answers with when the reply names none. */
export const defaultText = "Hello from the fake provider."

/** The request's JSON body as an object (empty when it had none). */
export const bodyOf = (request: RecordedRequest): Record<string, unknown> =>
  (typeof request.body === "object" && request.body !== null ? request.body : {}) as Record<string, unknown>

/** Tool arguments as the object wire formats carry; `{}` when they are not JSON. */
export const parseArgs = (text: string): unknown => {
  try {
    return JSON.parse(text)
  } catch {
    return {}
  }
}

/** Splits `text` into `n` pieces of near-equal length (fewer when the text is shorter). */
export const splitText = (text: string, n: number): Array<string> => {
  if (text.length === 0) return []
  const count = Math.max(1, Math.min(n, text.length))
  const size = Math.ceil(text.length / count)
  const out: Array<string> = []
  for (let i = 0; i < text.length; i += size) out.push(text.slice(i, i + size))
  return out
}

/** The OpenAI-style error body; routes of other formats write their own. */
export const errorBody = (message: string, type: string, code: string | null) =>
  JSON.stringify({ error: { message, type, param: null, code } })

/** How a format writes each fault that lands inside a body: one frame, or a whole body. */
export type FaultBodies = Record<"NullFrame" | "MalformedJson" | "StreamErrorEvent", string>

/**
 * A JSON reply: the body, or (under a `NullFrame` or `MalformedJson` fault) the broken body
 * the format would send, at once.
 */
export const writeJson = async (
  res: http.ServerResponse,
  reply: Reply,
  fault: StreamFault | undefined,
  headers: Record<string, string>,
  body: () => unknown,
  broken: Pick<FaultBodies, "NullFrame" | "MalformedJson">
): Promise<void> => {
  if (fault?._tag === "NullFrame" || fault?._tag === "MalformedJson") {
    res.writeHead(200, headers)
    res.end(broken[fault._tag])
    return
  }
  const text = JSON.stringify(body())
  if (reply.delayMs) await sleep(reply.delayMs)
  res.writeHead(200, headers)
  res.end(text)
}

/**
 * A stream reply: `frames` with the reply's pacing; a fault replaces frame `afterChunks` and
 * ends the body there (`CutStream` ends or destroys it without a frame). Under a fault, each
 * frame before it reaches the socket first, so that a cut is mid-body on every route: a
 * destroy right after synchronous writes would drop them with the headers, and look like a
 * reset, which clients retry.
 */
/** What an SSE-or-JSON route prepares for one reply: the stream's frames, or the JSON body. */
export interface Prepared {
  readonly body: Record<string, unknown>
  readonly headers: Record<string, string>
  readonly frames: ReadonlyArray<string> | (() => ReadonlyArray<string>)
  readonly faultFrames: FaultBodies
  readonly json: () => unknown
  readonly broken: Pick<FaultBodies, "NullFrame" | "MalformedJson">
}

/** A route's `reply` for an API that streams SSE when the body asks (`stream: true`), else JSON. */
export const sseOrJson = (
  prepare: (reply: Reply, request: RecordedRequest, fault: StreamFault | undefined, cache: CacheUsage) => Prepared
): FakeRoute["reply"] =>
(reply, request, res, fault, cache) => {
  const { body, broken, faultFrames, frames, headers, json } = prepare(reply, request, fault, cache)
  return body.stream === true
    ? writeStream(res, reply, fault, { "content-type": "text/event-stream", "cache-control": "no-cache", ...headers }, typeof frames === "function" ? frames() : frames, faultFrames)
    : writeJson(res, reply, fault, { "content-type": "application/json", ...headers }, json, broken)
}

export const writeStream = async (
  res: http.ServerResponse,
  reply: Reply,
  fault: StreamFault | undefined,
  headers: Record<string, string>,
  frames: ReadonlyArray<string>,
  faultFrames: FaultBodies
): Promise<void> => {
  if (reply.delayMs) await sleep(reply.delayMs)
  res.writeHead(200, headers)
  if (fault !== undefined) res.flushHeaders()
  const cutAt = fault === undefined ? -1 : (fault.afterChunks ?? 0)
  for (let i = 0; i < frames.length; i++) {
    if (fault !== undefined && i === cutAt) {
      if (fault._tag === "CutStream") await cut(res, fault.mode)
      else {
        res.write(faultFrames[fault._tag])
        res.end()
      }
      return
    }
    if (fault !== undefined) await flushed(res, frames[i]!)
    else res.write(frames[i])
    if (reply.chunkDelayMs) await sleep(reply.chunkDelayMs)
  }
  res.end()
}

/** Writes `chunk` and waits until it is handed to the socket. */
export const flushed = (res: http.ServerResponse, chunk: string): Promise<void> =>
  new Promise<void>((resolve) => res.write(chunk, () => resolve()))

/** Ends the body where it is, or (the default) destroys the socket once what was written is out. */
export const cut = async (res: http.ServerResponse, mode: "destroy" | "end" | undefined): Promise<void> => {
  if (mode === "end") {
    res.end()
    return
  }
  // an empty write resolves once the earlier ones are flushed
  await flushed(res, "")
  res.destroy()
}

// ---------------------------------------------------------------------------
// Reading requests back
// ---------------------------------------------------------------------------

/** A wire array field, or empty. */
export const arrayOf = (value: unknown): Array<Record<string, unknown>> =>
  Array.isArray(value) ? (value.filter((x) => typeof x === "object" && x !== null) as Array<Record<string, unknown>>) : []

/** A string, or the text of content parts (`text`, `input_text`, `output_text`). */
export const textOf = (content: unknown): string =>
  typeof content === "string"
    ? content
    : arrayOf(content).map((part) => (typeof part.text === "string" ? part.text : "")).join("")

/** The reasoning state's default opaque value. */
export const defaultSignature = "fake-signature"

// ---------------------------------------------------------------------------
// Media and cache blocks
// ---------------------------------------------------------------------------

/** The bytes of base64 data. */
const byteLength = (base64: string): number => Math.floor((base64.replace(/=+$/, "").length * 3) / 4)

/** A media item from a `data:` URL or a URL. */
export const mediaOf = (kind: FakeMedia["kind"], urlOrData: string, mediaType?: string, filename?: string): FakeMedia => {
  const data = /^data:([^;,]+)?(?:;[^,]*)?;base64,(.*)$/s.exec(urlOrData)
  const media: { -readonly [K in keyof FakeMedia]: FakeMedia[K] } = { kind }
  const type = mediaType ?? data?.[1]
  if (type !== undefined) media.mediaType = type
  if (filename !== undefined) media.filename = filename
  if (data === null) media.url = urlOrData
  else media.bytes = byteLength(data[2]!)
  return media
}

/** A media item from bare base64 and its media type. */
export const mediaOfBase64 = (kind: FakeMedia["kind"], base64: string, mediaType?: string, filename?: string): FakeMedia => {
  const media: { -readonly [K in keyof FakeMedia]: FakeMedia[K] } = { kind, bytes: byteLength(base64) }
  if (mediaType !== undefined) media.mediaType = mediaType
  if (filename !== undefined) media.filename = filename
  return media
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`

/** What the fake answers when a request brings media and no reply text is scripted. */
export const describeMedia = (media: ReadonlyArray<FakeMedia>): string => {
  const kinds = (["image", "file", "audio"] as const)
    .map((kind) => ({ kind, items: media.filter((m) => m.kind === kind) }))
    .filter(({ items }) => items.length > 0)
    .map(({ items, kind }) =>
      `${plural(items.length, kind === "audio" ? "audio clip" : kind)} (${
        items.map((m) => [m.filename, m.mediaType, m.bytes === undefined ? m.url : `${m.bytes} bytes`].filter((x) => x !== undefined).join(", ")).join("; ")
      })`
    )
  return `Received ${kinds.join(" and ")}.`
}

/** One block of a prompt for the fake's cache: its JSON (media included), and whether it carries a breakpoint. */
export const block = (value: unknown, breakpoint = false): PromptBlock => ({ text: JSON.stringify(value) ?? "", breakpoint })
