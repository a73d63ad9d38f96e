/** What each provider's batch API gives the runner: its limits, its input entries, and its calls. */
import type * as Effect from "effect/Effect"
import type * as Stream from "effect/Stream"
import * as Err from "../../LlmError.js"
import type { BatchHttp } from "./http.js"

/** Where a batch is: the provider's states, folded to the four every API has. */
export type Phase = "validating" | "in_progress" | "finalizing" | "ended"

/** How an ended batch ended. */
export type Outcome = "completed" | "expired" | "cancelled" | "failed"

/** The provider's own counts of a batch's requests. */
export interface Counts {
  readonly total: number
  readonly succeeded: number
  readonly failed: number
  readonly processing: number
}

export interface Status {
  readonly id: string
  readonly phase: Phase
  /** Set once `phase` is `ended`. */
  readonly outcome?: Outcome | undefined
  readonly counts: Counts
  /** The provider's words for a failed, expired or cancelled batch. */
  readonly reason?: string | undefined
  /** What reading the results needs (file ids, a results URL, inline replies): the API's own. */
  readonly results: unknown
}

/** One result line as the API wrote it, not yet decoded. */
export type RawResult =
  /** A 2xx reply's body, decoded by the API's live decoder. */
  | { readonly _tag: "Reply"; readonly customId: string; readonly body: string }
  /** An error reply: its status and error body, read by the API's error reader. */
  | { readonly _tag: "Error"; readonly customId: string; readonly status: number; readonly body: string }
  /** Not processed: the batch expired or was cancelled first. */
  | { readonly _tag: "NotProcessed"; readonly customId: string; readonly outcome: "expired" | "cancelled"; readonly reason: string }
  /** A line that could not be read; its item when the line still names one. */
  | { readonly _tag: "Unparseable"; readonly customId: string | undefined; readonly excerpt: string }

/** The documented limits of one batch. */
export interface Limits {
  readonly maxItems: number
  /** Of the input as uploaded or sent, in bytes. */
  readonly maxBytes: number
  /** Embedding inputs across a batch's requests, where the API counts them (OpenAI's `/v1/embeddings`: 50,000). */
  readonly maxInputs?: number | undefined
}

/** What identifies a submission, for finding it again: a name the batch carries, its size and when it was sent (ms). */
export interface Marker {
  readonly name: string
  readonly items: number
  readonly since: number
}

export interface WireBatchApi {
  readonly limits: Limits
  /** Why the API does not batch `model`, or undefined when it does. */
  readonly refuses: (model: string) => string | undefined
  /** One item of the input: its JSON text counts toward `maxBytes`. */
  readonly entry: (customId: string, body: unknown, model: string) => string
  /** Bytes a batch of entries costs beyond them (brackets, separators, the envelope). */
  readonly overhead: (entries: number) => number
  /** Submits one batch of entries (all of one model); `marker` lets `find` recognise it later. */
  readonly submit: (http: BatchHttp, model: string, entries: ReadonlyArray<string>, marker: Marker) => Effect.Effect<string, Err.LlmError>
  /** The batch submitted with `marker`, when the provider lists it (a run killed before it kept the id). */
  readonly find: (http: BatchHttp, marker: Marker) => Effect.Effect<string | undefined, Err.LlmError>
  readonly poll: (http: BatchHttp, id: string) => Effect.Effect<Status, Err.LlmError>
  /** An ended batch's results, line by line. */
  readonly results: (http: BatchHttp, status: Status) => Stream.Stream<RawResult, Err.LlmError>
  readonly cancel: (http: BatchHttp, id: string) => Effect.Effect<void, Err.LlmError>
}

/** A custom id read from a line that is not JSON, when it still names one. */
export const customIdIn = (line: string, field: string): string | undefined =>
  new RegExp(`"${field}"\\s*:\\s*"([A-Za-z0-9_-]{1,64})"`).exec(line)?.[1]

/**
 * A result line as its JSON object and custom id, or, when it is not a JSON object with one,
 * the line as that item's `Unparseable` result.
 */
export const readResultLine = (line: string): { readonly record: Record<string, unknown>; readonly customId: string } | RawResult => {
  let json: unknown
  try {
    json = JSON.parse(line)
  } catch {
    return { _tag: "Unparseable", customId: customIdIn(line, "custom_id"), excerpt: Err.excerptOf(line) }
  }
  const record = rec(json)
  const customId = str(record?.custom_id)
  return record === undefined || customId === undefined ? { _tag: "Unparseable", customId, excerpt: Err.excerptOf(line) } : { record, customId }
}

/** A record's field, when it is one. */
export const rec = (u: unknown): Record<string, unknown> | undefined =>
  typeof u === "object" && u !== null && !Array.isArray(u) ? (u as Record<string, unknown>) : undefined

export const num = (u: unknown): number => (typeof u === "number" && Number.isFinite(u) ? u : 0)
export const str = (u: unknown): string | undefined => (typeof u === "string" ? u : undefined)

/** A reply that lacks what the API documents (an id), as the typed error a live call would give. */
export const malformedReply = (http: BatchHttp, what: string, json: unknown) =>
  new Err.MalformedResponseError({
    provider: http.provider,
    model: http.model,
    message: `${http.provider} answered ${what} without the id it documents`,
    excerpt: Err.excerptOf(JSON.stringify(json) ?? "")
  })
