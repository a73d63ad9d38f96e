/**
 * Anthropic's Message Batches: the entries in one `POST /v1/messages/batches`, polled at
 * `/v1/messages/batches/{id}`, results read line by line from its `results_url`.
 */
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import { excerptOf } from "../../../LlmError.js"
import { malformedReply, num, readResultLine, rec, str, type RawResult, type Status, type WireBatchApi } from "../../providerBatch/api.js"
import { urlAt } from "../apiSpec.js"
import { defaultBaseUrl } from "./spec.js"

/** A batch's documented limits: 100,000 requests or 256 MB, whichever comes first. */
export const limits = { maxItems: 100_000, maxBytes: 256 * 1024 * 1024 } as const

/** One line of the results: `succeeded`, `errored`, `canceled` or `expired`. */
const resultOf = (line: string): RawResult => {
  const read = readResultLine(line)
  if ("_tag" in read) return read
  const { customId, record } = read
  const result = rec(record.result)
  if (result === undefined) return { _tag: "Unparseable", customId, excerpt: excerptOf(line) }
  switch (result.type) {
    case "succeeded":
      return rec(result.message) === undefined
        ? { _tag: "Unparseable", customId, excerpt: excerptOf(line) }
        : { _tag: "Reply", customId, body: JSON.stringify(result.message) }
    case "errored":
      // the error body of a live call; its type gives the status (0: read it from the body)
      return { _tag: "Error", customId, status: 0, body: JSON.stringify(result.error ?? null) }
    case "canceled":
      return { _tag: "NotProcessed", customId, outcome: "cancelled", reason: "the batch was cancelled before this request was processed" }
    case "expired":
      return { _tag: "NotProcessed", customId, outcome: "expired", reason: "the batch reached its 24 hour expiry before this request was processed" }
    default:
      return { _tag: "Unparseable", customId, excerpt: excerptOf(line) }
  }
}

export const batchApi = (baseUrl: string | undefined): WireBatchApi => {
  const at = (path: string) => urlAt(baseUrl, defaultBaseUrl, path)
  const statusOf = (json: unknown): Status => {
    const batch = rec(json) ?? {}
    const counts = rec(batch.request_counts) ?? {}
    const succeeded = num(counts.succeeded)
    const failed = num(counts.errored) + num(counts.canceled) + num(counts.expired)
    const processing = num(counts.processing)
    const state = str(batch.processing_status)
    const ended = state === "ended"
    // an ended batch's outcome is its items' (each says its own); a cancelled one ends with canceled items
    const outcome = !ended ? undefined : num(counts.canceled) > 0 ? "cancelled" : num(counts.expired) > 0 ? "expired" : "completed"
    return {
      id: str(batch.id) ?? "",
      phase: ended ? "ended" : state === "canceling" ? "finalizing" : "in_progress",
      outcome,
      counts: { total: succeeded + failed + processing, succeeded, failed, processing },
      results: str(batch.results_url)
    }
  }
  return {
    limits,
    refuses: (model) => (/^claude-/.test(model) ? undefined : `Anthropic's Message Batches serve Claude models, not ${model}`),
    entry: (customId, body) => {
      // a batch request cannot stream: the params are the Messages body without it
      const { stream: _stream, ...params } = body as Record<string, unknown>
      return JSON.stringify({ custom_id: customId, params })
    },
    overhead: (entries) => 16 + entries,
    submit: (http, _model, entries) =>
      Effect.flatMap(http.json("POST", at("/v1/messages/batches"), { _tag: "JsonText", text: `{"requests":[${entries.join(",")}]}` }), (json) => {
        const id = str(rec(json)?.id)
        return id === undefined ? Effect.fail(malformedReply(http, "the batch creation", json)) : Effect.succeed(id)
      }),
    // batches carry no name here: the one created since the submission with as many requests, if it is the only one
    find: (http, marker) =>
      Effect.map(http.json("GET", at("/v1/messages/batches?limit=100")), (json) => {
        const data = ((rec(json)?.data as Array<unknown> | undefined) ?? []).map(rec)
        const candidates = data.filter((batch) => {
          const created = Date.parse(str(batch?.created_at) ?? "")
          const counts = rec(batch?.request_counts) ?? {}
          const total = num(counts.processing) + num(counts.succeeded) + num(counts.errored) + num(counts.canceled) + num(counts.expired)
          return Number.isFinite(created) && created >= marker.since - 60_000 && total === marker.items
        })
        return candidates.length === 1 ? str(candidates[0]?.id) : undefined
      }),
    poll: (http, id) => Effect.map(http.json("GET", at(`/v1/messages/batches/${encodeURIComponent(id)}`)), statusOf),
    results: (http, status) => {
      const url = status.results as string | undefined
      return url === undefined ? Stream.empty : Stream.map(http.lines(url), resultOf)
    },
    cancel: (http, id) => Effect.asVoid(http.json("POST", at(`/v1/messages/batches/${encodeURIComponent(id)}/cancel`)))
  }
}
