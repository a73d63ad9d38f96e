/** What every wire format of the fake shares. */
import type * as http from "node:http"
import type { Fault, RecordedRequest, Reply } from "../../Testing.js"

/** Faults that a route renders in its own wire format (the rest are generic HTTP faults). */
export type StreamFault = Extract<Fault, { _tag: "MalformedJson" | "NullFrame" | "CutStream" | "StreamErrorEvent" }>

export interface FakeRoute {
  readonly matches: (path: string, request: RecordedRequest) => boolean
  readonly reply: (reply: Reply, request: RecordedRequest, res: http.ServerResponse, fault: StreamFault | undefined) => Promise<void>
  /** This format's error body for generic faults; the OpenAI shape when absent. */
  readonly errorBody?: (status: number, message: string, options: ErrorBodyOptions) => string
}

export interface ErrorBodyOptions {
  /** The request path, for routes that serve several formats. */
  readonly path?: string | undefined
  readonly retryAfterMs?: number | undefined
  readonly insufficientQuota?: boolean | undefined
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

export const approxTokens = (text: string) => Math.ceil(text.length / 4)

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
