/**
 * OpenAI's Batch API: the entries as a JSONL file (`/files`, purpose `batch`), a batch over it
 * (`/batches`, for `/v1/chat/completions`, `/v1/responses` or `/v1/embeddings`), its output and
 * error files. Shared by the three endpoints: only the endpoint and, for embeddings, a limit
 * on inputs differ.
 */
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import { excerptOf } from "../../../LlmError.js"
import { malformedReply, num, readResultLine, rec, str, type RawResult, type Status, type WireBatchApi } from "../../providerBatch/api.js"
import { urlAt } from "../apiSpec.js"
import { defaultBaseUrl } from "./spec.js"

/** The input file's documented limits: 50,000 requests and 200 MB. */
export const limits = { maxItems: 50_000, maxBytes: 200 * 1024 * 1024 } as const

/** `/v1/embeddings` batches also take at most 50,000 embedding inputs across their requests. */
const embeddingsLimits = { ...limits, maxInputs: 50_000 } as const

export type Endpoint = "/v1/chat/completions" | "/v1/responses" | "/v1/embeddings"

/** Model families the Batch API does not serve (live audio, speech, images, search). */
const notBatched = /realtime|audio|tts|whisper|transcribe|dall-e|gpt-image|search-preview|computer-use/

const markerKey = "effect_llm_marker"

const phases: Record<string, Pick<Status, "phase" | "outcome">> = {
  validating: { phase: "validating" },
  in_progress: { phase: "in_progress" },
  finalizing: { phase: "finalizing" },
  cancelling: { phase: "finalizing" },
  completed: { phase: "ended", outcome: "completed" },
  failed: { phase: "ended", outcome: "failed" },
  expired: { phase: "ended", outcome: "expired" },
  cancelled: { phase: "ended", outcome: "cancelled" }
}

interface Files {
  readonly output: string | undefined
  readonly error: string | undefined
}

/** One line of an output or error file. */
const resultOf = (line: string): RawResult => {
  const read = readResultLine(line)
  if ("_tag" in read) return read
  const { customId, record } = read
  const response = rec(record.response)
  const error = rec(record.error)
  if (response !== undefined && typeof response.status_code === "number") {
    const body = JSON.stringify(response.body ?? null)
    return response.status_code < 300 ? { _tag: "Reply", customId, body } : { _tag: "Error", customId, status: response.status_code, body }
  }
  if (error !== undefined) {
    const code = str(error.code) ?? ""
    const message = str(error.message) ?? code
    if (code === "batch_expired") return { _tag: "NotProcessed", customId, outcome: "expired", reason: message }
    if (code === "batch_cancelled") return { _tag: "NotProcessed", customId, outcome: "cancelled", reason: message }
    return { _tag: "Error", customId, status: 500, body: JSON.stringify({ error: { message, type: code, code } }) }
  }
  return { _tag: "Unparseable", customId, excerpt: excerptOf(line) }
}

export const batchApi = (baseUrl: string | undefined, endpoint: Endpoint): WireBatchApi => {
  const at = (path: string) => urlAt(baseUrl, defaultBaseUrl, path)
  const statusOf = (json: unknown): Status => {
    const batch = rec(json) ?? {}
    const counts = rec(batch.request_counts) ?? {}
    const total = num(counts.total)
    const succeeded = num(counts.completed)
    const failed = num(counts.failed)
    const state = phases[str(batch.status) ?? ""] ?? { phase: "in_progress" as const }
    const errors = (rec(batch.errors)?.data as Array<unknown> | undefined) ?? []
    const reason = errors
      .map((e) => rec(e))
      .map((e) => [str(e?.code), str(e?.message), typeof e?.line === "number" ? `(line ${e.line})` : undefined].filter((x) => x !== undefined).join(": "))
      .filter((x) => x.length > 0)
      .join("; ")
    const files: Files = { output: str(batch.output_file_id), error: str(batch.error_file_id) }
    return {
      id: str(batch.id) ?? "",
      ...state,
      counts: { total, succeeded, failed, processing: Math.max(0, total - succeeded - failed) },
      reason: reason.length > 0 ? reason : state.outcome === "expired" ? "the 24h completion window passed" : undefined,
      results: files
    }
  }
  return {
    limits: endpoint === "/v1/embeddings" ? embeddingsLimits : limits,
    refuses: (model) => (notBatched.test(model) ? `OpenAI's Batch API does not serve ${model} (no realtime, audio, speech, image or search models)` : undefined),
    entry: (customId, body) => JSON.stringify({ custom_id: customId, method: "POST", url: endpoint, body }),
    overhead: (entries) => entries,
    submit: (http, _model, entries, marker) =>
      Effect.gen(function* () {
        const file = rec(
          yield* http.json("POST", at("/files"), {
            _tag: "Form",
            fields: { purpose: "batch" },
            file: { field: "file", name: `${marker.name}.jsonl`, text: entries.join("\n") + "\n", type: "application/jsonl" }
          })
        )
        const fileId = str(file?.id)
        if (fileId === undefined) return yield* Effect.fail(malformedReply(http, "the file upload", file))
        const batch = rec(
          yield* http.json("POST", at("/batches"), {
            _tag: "Json",
            value: { input_file_id: fileId, endpoint, completion_window: "24h", metadata: { [markerKey]: marker.name } }
          })
        )
        const id = str(batch?.id)
        if (id === undefined) return yield* Effect.fail(malformedReply(http, "the batch creation", batch))
        return id
      }),
    find: (http, marker) =>
      Effect.map(http.json("GET", at("/batches?limit=100")), (json) => {
        const data = (rec(json)?.data as Array<unknown> | undefined) ?? []
        const found = data.map(rec).find((batch) => str(rec(batch?.metadata)?.[markerKey]) === marker.name)
        return str(found?.id)
      }),
    poll: (http, id) => Effect.map(http.json("GET", at(`/batches/${encodeURIComponent(id)}`)), statusOf),
    results: (http, status) => {
      const files = status.results as Files
      const read = (id: string | undefined) => (id === undefined ? Stream.empty : Stream.map(http.lines(at(`/files/${encodeURIComponent(id)}/content`)), resultOf))
      return Stream.concat(read(files.output), read(files.error))
    },
    cancel: (http, id) => Effect.asVoid(http.json("POST", at(`/batches/${encodeURIComponent(id)}/cancel`)))
  }
}
