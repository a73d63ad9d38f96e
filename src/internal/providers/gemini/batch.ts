/**
 * Gemini's Batch Mode: one `models/{model}:batchGenerateContent` with its requests inline, or,
 * over the 20 MB inline requests may take, in a JSONL file uploaded to the Files API first; a
 * long running operation polled at `batches/{id}`, the replies inline in it or in a file.
 */
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import { excerptOf } from "../../../LlmError.js"
import { customIdIn, malformedReply, num, rec, str, type RawResult, type Status, type WireBatchApi } from "../../providerBatch/api.js"
import { httpStatusOf } from "../../request/errorBody.js"
import { urlAt } from "../apiSpec.js"
import { defaultBaseUrl, modelPath } from "./spec.js"

/** Inline requests must stay under 20 MB in all; a larger batch goes by file. */
export const maxInlineBytes = 20 * 1000 * 1000

/**
 * A batch's input file may be 2 GB; each upload is built in memory here, so a batch is cut at
 * 200 MB (as OpenAI's). No count is documented, so the count is bounded by the bytes.
 */
export const limits = { maxItems: 1_000_000, maxBytes: 200 * 1000 * 1000 } as const

const metadataMark = ',"metadata":{"key":'

/** An inline request: `{ request, metadata: { key } }`. */
const inlineEntry = (customId: string, body: unknown) => `{"request":${JSON.stringify(body)}${metadataMark}${JSON.stringify(customId)}}}`

/** The same entry as a line of an input file: `{ key, request }`. */
const fileLine = (entry: string) => {
  const at = entry.lastIndexOf(metadataMark)
  return `{"key":${entry.slice(at + metadataMark.length, -2)},"request":${entry.slice("{\"request\":".length, at)}}`
}

/** The state's suffix (`BATCH_STATE_SUCCEEDED`, `JOB_STATE_SUCCEEDED`, …). */
const phases: Record<string, Pick<Status, "phase" | "outcome">> = {
  PENDING: { phase: "validating" },
  RUNNING: { phase: "in_progress" },
  SUCCEEDED: { phase: "ended", outcome: "completed" },
  FAILED: { phase: "ended", outcome: "failed" },
  CANCELLED: { phase: "ended", outcome: "cancelled" },
  EXPIRED: { phase: "ended", outcome: "expired" }
}

interface Output {
  readonly inline: ReadonlyArray<unknown> | undefined
  readonly file: string | undefined
}

const resultOf = (item: unknown, index: number): RawResult => {
  const record = rec(item)
  const customId = str(rec(record?.metadata)?.key)
  if (record === undefined || customId === undefined) {
    return { _tag: "Unparseable", customId: undefined, excerpt: excerptOf(`inlined response ${index}: ${JSON.stringify(item) ?? String(item)}`) }
  }
  const error = rec(record.error)
  if (error !== undefined) return { _tag: "Error", customId, status: httpStatusOf(error.code) ?? 0, body: JSON.stringify({ error }) }
  if (rec(record.response) === undefined) return { _tag: "Unparseable", customId, excerpt: excerptOf(JSON.stringify(item)) }
  return { _tag: "Reply", customId, body: JSON.stringify(record.response) }
}

/** A line of a responses file: `{ key, response }` or `{ key, error }`. */
const lineOf = (line: string, index: number): RawResult => {
  let json: unknown
  try {
    json = JSON.parse(line)
  } catch {
    return { _tag: "Unparseable", customId: customIdIn(line, "key"), excerpt: excerptOf(line) }
  }
  const key = str(rec(json)?.key)
  return resultOf(key === undefined ? json : { ...rec(json), metadata: { key } }, index)
}

/** The host the Files API's upload and download paths hang from: the base URL without its `/v1beta`. */
const rootOf = (baseUrl: string | undefined) => (baseUrl ?? defaultBaseUrl).replace(/\/+$/, "").replace(/\/v1[a-z0-9]*$/, "")

export const batchApi = (baseUrl: string | undefined): WireBatchApi => {
  const at = (path: string) => urlAt(baseUrl, defaultBaseUrl, path)
  const statusOf = (json: unknown): Status => {
    const operation = rec(json) ?? {}
    // the operation's metadata is the batch; some answers give the batch itself
    const batch = rec(operation.metadata) ?? operation
    const stats = rec(batch.batchStats) ?? {}
    const total = num(Number(stats.requestCount ?? 0))
    const succeeded = num(Number(stats.successfulRequestCount ?? 0))
    const failed = num(Number(stats.failedRequestCount ?? 0))
    const pending = num(Number(stats.pendingRequestCount ?? Math.max(0, total - succeeded - failed)))
    const state = (str(batch.state) ?? "").replace(/^(BATCH|JOB)_STATE_/, "")
    const known = phases[state] ?? { phase: "in_progress" as const }
    const output = rec(rec(operation.response) ?? rec(batch.output)) ?? {}
    const inline = rec(output.inlinedResponses)?.inlinedResponses
    const error = rec(operation.error)
    return {
      id: str(operation.name) ?? str(batch.name) ?? "",
      ...known,
      counts: { total, succeeded, failed, processing: pending },
      reason: str(error?.message) ?? (known.outcome === "expired" ? "the batch ran past its 48 hour limit" : undefined),
      results: { inline: Array.isArray(inline) ? inline : undefined, file: str(output.responsesFile) } satisfies Output
    }
  }
  return {
    limits,
    refuses: (model) => (/^(models\/)?gemini-/.test(model) ? undefined : `Gemini's Batch Mode serves Gemini models, not ${model}`),
    entry: inlineEntry,
    overhead: (entries) => 200 + entries,
    submit: (http, model, entries, marker) =>
      Effect.gen(function* () {
        const bytes = entries.reduce((n, entry) => n + Buffer.byteLength(entry), 200 + entries.length)
        const create = (inputConfig: string) =>
          http.json("POST", at(`/${modelPath(model)}:batchGenerateContent`), {
            _tag: "JsonText",
            text: `{"batch":{"display_name":${JSON.stringify(marker.name)},"input_config":${inputConfig}}}`
          })
        let json: unknown
        if (bytes <= maxInlineBytes) json = yield* create(`{"requests":{"requests":[${entries.join(",")}]}}`)
        else {
          const uploaded = rec(
            yield* http.json("POST", `${rootOf(baseUrl)}/upload/v1beta/files?uploadType=multipart`, {
              _tag: "Related",
              metadata: { file: { display_name: marker.name, mime_type: "application/jsonl" } },
              file: { text: entries.map(fileLine).join("\n") + "\n", type: "application/jsonl" }
            })
          )
          const fileName = str(rec(uploaded?.file)?.name)
          if (fileName === undefined) return yield* Effect.fail(malformedReply(http, "the file upload", uploaded))
          json = yield* create(JSON.stringify({ file_name: fileName }))
        }
        const id = str(rec(json)?.name)
        return id === undefined ? yield* Effect.fail(malformedReply(http, "the batch creation", json)) : id
      }),
    find: (http, marker) =>
      Effect.map(http.json("GET", at("/batches?pageSize=100")), (json) => {
        const operations = ((rec(json)?.operations ?? rec(json)?.batches) as Array<unknown> | undefined) ?? []
        const found = operations.map(rec).find((op) => str(rec(op?.metadata)?.displayName ?? op?.displayName) === marker.name)
        return str(found?.name)
      }),
    poll: (http, id) => Effect.map(http.json("GET", at(`/${id}`)), statusOf),
    results: (http, status) => {
      const output = status.results as Output
      if (output.inline !== undefined) return Stream.fromIterable(output.inline.map(resultOf))
      if (output.file === undefined) return Stream.empty
      return Stream.mapAccum(http.lines(`${rootOf(baseUrl)}/download/v1beta/${output.file}:download?alt=media`), 0, (i, line) => [i + 1, lineOf(line, i)])
    },
    cancel: (http, id) => Effect.asVoid(http.json("POST", at(`/${id}:cancel`)))
  }
}
