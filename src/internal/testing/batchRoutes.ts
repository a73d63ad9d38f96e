/**
 * The fake's batch APIs: OpenAI's files and batches, Anthropic's Message Batches, Gemini's
 * Batch Mode. A batch ends on its N-th poll (`pollsToComplete`); its items are answered then,
 * each by a request to the fake's own live route (so replies, responders and usage are the
 * live ones), with the partial failures, unreadable lines, expiry and cancellation the
 * options ask for.
 */
import type * as http from "node:http"
import type { FakeBatchItem, FakeBatchOptions, RecordedRequest } from "../../Testing.js"
import { sleep } from "./route.js"

type Api = "openai" | "anthropic" | "gemini"

interface Item {
  readonly customId: string
  /** The live request: its path under the fake and its body. */
  readonly path: string
  readonly body: unknown
}

interface FakeBatch {
  readonly id: string
  readonly api: Api
  readonly items: ReadonlyArray<Item>
  readonly createdAt: number
  readonly name: string
  readonly endpoint: string
  polls: number
  /** Polls answered 503 so far (`failingPolls`). */
  failedPolls: number
  cancelling: boolean
  /** Gemini: the batch's requests came in a file, so its replies go to one. */
  readonly fromFile?: boolean | undefined
  /** What OpenAI's validation of the input file finds wrong: the batch fails on its first poll. */
  readonly invalid?: ReadonlyArray<{ readonly code: string; readonly message: string; readonly line?: number }> | undefined
  ended: "completed" | "expired" | "cancelled" | "failed" | undefined
  /** Per item once ended: the live reply's status and body, or what replaced it. */
  answers: Array<{ readonly item: Item; readonly answer: Answer }>
}

type Answer =
  | { readonly _tag: "Reply"; readonly status: number; readonly body: unknown }
  | { readonly _tag: "Error"; readonly status: number; readonly message: string }
  | { readonly _tag: "Unparseable" }
  | { readonly _tag: "Omit" }
  | { readonly _tag: "NotProcessed"; readonly why: "expired" | "cancelled" }

export interface BatchStore {
  readonly batches: Map<string, FakeBatch>
  readonly files: Map<string, string>
  counter: number
}

export const makeStore = (): BatchStore => ({ batches: new Map(), files: new Map(), counter: 0 })

const json = (res: http.ServerResponse, status: number, body: unknown) => {
  res.writeHead(status, { "content-type": "application/json" })
  res.end(JSON.stringify(body))
}

/** The parts of a multipart body, each as its headers and content. */
const partsOf = (raw: string, contentType: string | undefined): Array<{ readonly head: string; readonly content: string }> => {
  const boundary = /boundary=(?:"([^"]+)"|([^;]+))/.exec(contentType ?? "")
  const mark = boundary?.[1] ?? boundary?.[2]
  if (mark === undefined) return []
  return raw.split(`--${mark}`).flatMap((part) => {
    const split = part.indexOf("\r\n\r\n")
    return split < 0 ? [] : [{ head: part.slice(0, split), content: part.slice(split + 4).replace(/\r\n$/, "") }]
  })
}

/** The file part of a multipart form (the one named `file`). */
const filePart = (raw: string, contentType: string | undefined): string | undefined =>
  partsOf(raw, contentType).find((part) => /name="file"/.test(part.head))?.content

const counts = (batch: FakeBatch) => {
  const total = batch.items.length
  const done = batch.ended === undefined ? Math.min(total, Math.floor((total * batch.polls) / Math.max(1, batch.polls + 1))) : total
  const failed = batch.answers.filter((a) => a.answer._tag !== "Reply" || a.answer.status >= 300).length
  return { total, done, succeeded: batch.ended === undefined ? 0 : total - failed, failed }
}

/** Answers every item of a batch that ends now, through the fake's own live routes. */
const answer = async (baseUrl: string, batch: FakeBatch, options: FakeBatchOptions, outcome: "completed" | "expired" | "cancelled") => {
  const processed = outcome === "completed" ? batch.items.length : outcome === "expired" ? Math.min(options.answeredBeforeExpiry ?? 0, batch.items.length) : 0
  const answers: Array<{ item: Item; answer: Answer }> = new Array(batch.items.length)
  let next = 0
  const worker = async () => {
    for (;;) {
      const i = next++
      if (i >= batch.items.length) return
      const item = batch.items[i]!
      if (i >= processed) {
        answers[i] = { item, answer: { _tag: "NotProcessed", why: outcome === "cancelled" ? "cancelled" : "expired" } }
        continue
      }
      const scripted: FakeBatchItem | undefined = options.item?.(item.customId, i)
      if (scripted !== undefined) {
        answers[i] = { item, answer: scripted }
        continue
      }
      const reply = await fetch(`${baseUrl}${item.path}`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-fake-batch-item": "1" },
        body: JSON.stringify(item.body)
      })
      const text = await reply.text()
      answers[i] = { item, answer: { _tag: "Reply", status: reply.status, body: JSON.parse(text) as unknown } }
    }
  }
  await Promise.all(Array.from({ length: 16 }, worker))
  batch.answers = answers
  batch.ended = outcome
}

/** Whether this poll of a batch is one of the `failingPolls` that answer 503; counts it. */
const pollFails = (batch: FakeBatch, options: FakeBatchOptions, res: http.ServerResponse): boolean => {
  if (batch.ended !== undefined || batch.failedPolls >= (options.failingPolls ?? 0)) return false
  batch.failedPolls++
  res.writeHead(503, { "content-type": "application/json" })
  res.end(JSON.stringify({ error: { message: "the fake is overloaded (failingPolls)", type: "server_error", code: null } }))
  return true
}

/** Moves a batch one poll on; ends it when due. */
const advance = async (baseUrl: string, batch: FakeBatch, options: FakeBatchOptions) => {
  if (batch.ended !== undefined) return
  batch.polls++
  if (batch.invalid !== undefined) {
    batch.ended = "failed"
    return
  }
  if (batch.cancelling) return answer(baseUrl, batch, options, "cancelled")
  if (batch.polls >= (options.pollsToComplete ?? 1)) return answer(baseUrl, batch, options, options.expire === true ? "expired" : "completed")
}

// ---------------------------------------------------------------------------
// OpenAI
// ---------------------------------------------------------------------------

const openaiObject = (batch: FakeBatch) => {
  const c = counts(batch)
  const status = batch.ended ?? (batch.cancelling ? "cancelling" : batch.polls === 0 ? "validating" : "in_progress")
  const hasOutput = batch.answers.some((a) => a.answer._tag === "Reply" && a.answer.status < 300)
  const hasErrors = batch.answers.some((a) => a.answer._tag !== "Reply" || a.answer.status >= 300)
  return {
    id: batch.id,
    object: "batch",
    endpoint: batch.endpoint,
    status,
    created_at: Math.floor(batch.createdAt / 1000),
    metadata: { effect_llm_marker: batch.name },
    output_file_id: batch.ended !== undefined && hasOutput ? `${batch.id}-output` : null,
    error_file_id: batch.ended !== undefined && hasErrors ? `${batch.id}-errors` : null,
    request_counts: batch.ended === "failed"
      ? { total: 0, completed: 0, failed: 0 }
      : { total: c.total, completed: batch.ended === undefined ? c.done : c.succeeded, failed: batch.ended === undefined ? 0 : c.failed },
    errors: batch.ended === "failed" && batch.invalid !== undefined
      ? { object: "list", data: batch.invalid.map((e) => ({ code: e.code, message: e.message, param: null, line: e.line ?? null })) }
      : null
  }
}

const openaiLine = (batch: FakeBatch, item: Item, answer: Answer): string | undefined => {
  const base = { id: `${batch.id}-${item.customId}`, custom_id: item.customId }
  switch (answer._tag) {
    case "Reply":
      return JSON.stringify({ ...base, response: { status_code: answer.status, request_id: "req_fake", body: answer.body }, error: null })
    case "Error":
      return JSON.stringify({
        ...base,
        response: { status_code: answer.status, request_id: "req_fake", body: { error: { message: answer.message, type: "invalid_request_error", code: null } } },
        error: null
      })
    case "Unparseable":
      return `{"id":"${base.id}","custom_id":"${item.customId}","response":{"status_code":200,"body":{"choices":[{"mess`
    case "Omit":
      return undefined
    case "NotProcessed":
      return answer.why === "expired"
        ? JSON.stringify({ ...base, response: null, error: { code: "batch_expired", message: "This request could not be executed before the completion window expired." } })
        : undefined
  }
}

const openaiFile = (batch: FakeBatch, which: "output" | "errors"): Array<string> =>
  batch.answers.flatMap(({ answer, item }) => {
    const good = answer._tag === "Reply" && answer.status < 300
    const unparseable = answer._tag === "Unparseable"
    if (which === "output" ? !(good || unparseable) : good || unparseable) return []
    const line = openaiLine(batch, item, answer)
    return line === undefined ? [] : [line]
  })

// ---------------------------------------------------------------------------
// Anthropic
// ---------------------------------------------------------------------------

const anthropicObject = (batch: FakeBatch, baseUrl: string) => {
  const c = counts(batch)
  const by = (tag: string) => batch.answers.filter((a) => a.answer._tag === tag).length
  const notProcessed = (why: string) => batch.answers.filter((a) => a.answer._tag === "NotProcessed" && a.answer.why === why).length
  return {
    id: batch.id,
    type: "message_batch",
    processing_status: batch.ended !== undefined ? "ended" : batch.cancelling ? "canceling" : "in_progress",
    created_at: new Date(batch.createdAt).toISOString(),
    request_counts: batch.ended === undefined
      ? { processing: c.total, succeeded: 0, errored: 0, canceled: 0, expired: 0 }
      : {
        processing: 0,
        succeeded: batch.answers.filter((a) => a.answer._tag === "Reply" && a.answer.status < 300).length + by("Unparseable") + by("Omit"),
        errored: batch.answers.filter((a) => a.answer._tag === "Error" || (a.answer._tag === "Reply" && a.answer.status >= 300)).length,
        canceled: notProcessed("cancelled"),
        expired: notProcessed("expired")
      },
    results_url: batch.ended === undefined ? null : `${baseUrl}/v1/messages/batches/${batch.id}/results`
  }
}

const anthropicLine = (item: Item, answer: Answer): string | undefined => {
  const custom_id = item.customId
  switch (answer._tag) {
    case "Reply":
      return JSON.stringify(answer.status < 300 ? { custom_id, result: { type: "succeeded", message: answer.body } } : { custom_id, result: { type: "errored", error: answer.body } })
    case "Error":
      return JSON.stringify({ custom_id, result: { type: "errored", error: { type: "error", error: { type: "invalid_request_error", message: answer.message } } } })
    case "Unparseable":
      return `{"custom_id":"${custom_id}","result":{"type":"succeeded","message":{"id":"msg_`
    case "Omit":
      return undefined
    case "NotProcessed":
      return JSON.stringify({ custom_id, result: { type: answer.why === "cancelled" ? "canceled" : "expired" } })
  }
}

// ---------------------------------------------------------------------------
// Gemini
// ---------------------------------------------------------------------------

const geminiObject = (batch: FakeBatch) => {
  const c = counts(batch)
  const state = batch.ended === "completed" ? "BATCH_STATE_SUCCEEDED" : batch.ended === "expired" ? "BATCH_STATE_EXPIRED" : batch.ended === "cancelled" ? "BATCH_STATE_CANCELLED" : batch.polls === 0 ? "BATCH_STATE_PENDING" : "BATCH_STATE_RUNNING"
  const inlined = batch.ended === "completed"
    ? geminiResponses(batch)
    : undefined
  const stats = {
    requestCount: String(c.total),
    successfulRequestCount: String(batch.ended === undefined ? 0 : c.succeeded),
    failedRequestCount: String(batch.ended === undefined ? 0 : c.failed),
    pendingRequestCount: String(batch.ended === undefined ? c.total : 0)
  }
  const metadata = { "@type": "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch", name: batch.id, displayName: batch.name, state, batchStats: stats }
  const output = inlined === undefined
    ? undefined
    : batch.fromFile === true
    ? { responsesFile: `files/${batch.id.replace(/^batches\//, "")}-responses` }
    : { inlinedResponses: { inlinedResponses: inlined } }
  return {
    name: batch.id,
    metadata,
    done: batch.ended !== undefined,
    ...(output === undefined ? {} : { response: { "@type": "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatchOutput", ...output } })
  }
}

/** A completed batch's replies, each with its key as Gemini gives it inline (`metadata.key`). */
const geminiResponses = (batch: FakeBatch) => batch.answers.flatMap(geminiResponse)

/** One item's reply as Gemini gives it (`{ response | error, metadata: { key } }`); none for an item it leaves out. */
const geminiResponse = ({ answer, item }: { readonly item: Item; readonly answer: Answer }) => {
  const metadata = { key: item.customId }
  switch (answer._tag) {
    case "Reply":
      return [answer.status < 300 ? { response: answer.body, metadata } : { error: (answer.body as { error?: unknown })?.error ?? { code: answer.status, message: "error" }, metadata }]
    case "Error":
      return [{ error: { code: answer.status, message: answer.message, status: "INVALID_ARGUMENT" }, metadata }]
    case "Unparseable":
      return [{ response: "<truncated>", metadata }]
    default:
      return []
  }
}

/** A completed file-input batch's responses file: `{ key, response }` or `{ key, error }` per line. */
const geminiFileLines = (batch: FakeBatch): Array<string> =>
  batch.answers.flatMap(({ answer, item }) =>
    answer._tag === "Unparseable"
      ? [`{"key":"${item.customId}","response":{"candidates":[{"conte`]
      : geminiResponse({ answer, item }).map(({ metadata, ...rest }) => JSON.stringify({ key: metadata.key, ...rest }))
  )

// ---------------------------------------------------------------------------
// Routing
// ---------------------------------------------------------------------------

const streamLines = async (res: http.ServerResponse, lines: ReadonlyArray<string>, delayMs: number | undefined) => {
  res.writeHead(200, { "content-type": "application/binary" })
  for (const line of lines) {
    res.write(line + "\n")
    if (delayMs) await sleep(delayMs)
  }
  res.end()
}

interface InputLine {
  readonly custom_id: string
  readonly url?: string
  readonly body?: { readonly model?: unknown; readonly input?: unknown }
}

/** The most requests in one input file, and of embedding inputs across an `/v1/embeddings` batch. */
const maxTasks = 50_000

/**
 * An input file read as OpenAI's validation reads it: its lines, and each fault by the
 * documented codes (`invalid_json_line`, `duplicate_custom_id`, `url_mismatch`,
 * `model_mismatch`, `empty_file`, `too_many_tasks`).
 */
const validated = (text: string, endpoint: string) => {
  const lines: Array<InputLine> = []
  const errors: Array<{ code: string; message: string; line?: number }> = []
  const ids = new Set<string>()
  let model: unknown
  let inputs = 0
  text.split("\n").forEach((raw, i) => {
    if (raw.trim().length === 0) return
    const line = i + 1
    let parsed: InputLine
    try {
      parsed = JSON.parse(raw) as InputLine
    } catch {
      errors.push({ code: "invalid_json_line", message: "This line is not parseable as valid JSON.", line })
      return
    }
    if (ids.has(parsed.custom_id)) errors.push({ code: "duplicate_custom_id", message: `The custom_id ${parsed.custom_id} is not unique.`, line })
    ids.add(parsed.custom_id)
    if ((parsed.url ?? endpoint) !== endpoint) errors.push({ code: "url_mismatch", message: `The url ${parsed.url} does not match the batch's endpoint ${endpoint}.`, line })
    if (lines.length > 0 && parsed.body?.model !== model) errors.push({ code: "model_mismatch", message: "Every request of a batch must use the same model.", line })
    model = parsed.body?.model
    const input = parsed.body?.input
    inputs += Array.isArray(input) ? input.length : 1
    lines.push(parsed)
  })
  if (lines.length === 0 && errors.length === 0) errors.push({ code: "empty_file", message: "The input file is empty." })
  if (lines.length > maxTasks) errors.push({ code: "too_many_tasks", message: `The batch has ${lines.length} requests, over ${maxTasks}.` })
  if (endpoint === "/v1/embeddings" && inputs > maxTasks) {
    errors.push({ code: "too_many_tasks", message: `The batch has ${inputs} embedding inputs, over ${maxTasks}.` })
  }
  return { lines, errors }
}

/**
 * Serves the request when it is a batch API's; false when it is not one (a live route's).
 */
export const handle = async (
  store: BatchStore,
  baseUrl: string,
  options: FakeBatchOptions,
  request: RecordedRequest,
  raw: string,
  res: http.ServerResponse
): Promise<boolean> => {
  const path = request.path.split("?")[0]!
  const method = request.method
  const newId = (prefix: string) => `${prefix}${String(++store.counter).padStart(4, "0")}`
  const create = (api: Api, items: ReadonlyArray<Item>, name: string, endpoint: string, prefix: string, invalid?: FakeBatch["invalid"], fromFile?: boolean): FakeBatch => {
    const batch: FakeBatch = { id: newId(prefix), api, items, createdAt: Date.now(), name, endpoint, polls: 0, failedPolls: 0, cancelling: false, invalid, fromFile, ended: undefined, answers: [] }
    store.batches.set(batch.id, batch)
    return batch
  }
  const find = (id: string) => store.batches.get(decodeURIComponent(id))
  const notFound = () => (json(res, 404, { error: { message: "no such batch", type: "not_found_error" } }), true)
  const gemini = path.startsWith("/v1beta/")
  const anthropic = path.includes("/messages/batches")
  const openaiPrefix = path.replace(/\/(files|batches)(\/.*)?$/, "")

  // Anthropic
  if (anthropic) {
    const m = /\/v1\/messages\/batches(?:\/([^/]+))?(\/cancel|\/results)?$/.exec(path)
    if (m === null) return notFound()
    if (method === "POST" && m[1] === undefined) {
      if (options.submitDelayMs) await sleep(options.submitDelayMs)
      const requests = ((request.body as { requests?: Array<{ custom_id: string; params: unknown }> })?.requests) ?? []
      const batch = create("anthropic", requests.map((r) => ({ customId: r.custom_id, path: "/v1/messages", body: r.params })), "", "/v1/messages", "msgbatch_")
      json(res, 200, anthropicObject(batch, baseUrl))
      return true
    }
    if (method === "GET" && m[1] === undefined) {
      json(res, 200, { data: [...store.batches.values()].filter((b) => b.api === "anthropic").reverse().map((b) => anthropicObject(b, baseUrl)), has_more: false })
      return true
    }
    const batch = find(m[1]!)
    if (batch === undefined) return notFound()
    if (m[2] === "/cancel") {
      batch.cancelling = batch.ended === undefined
      json(res, 200, anthropicObject(batch, baseUrl))
      return true
    }
    if (m[2] === "/results") {
      await streamLines(res, batch.answers.flatMap(({ answer, item }) => anthropicLine(item, answer) ?? []), options.lineDelayMs)
      return true
    }
    if (pollFails(batch, options, res)) return true
    await advance(baseUrl, batch, options)
    json(res, 200, anthropicObject(batch, baseUrl))
    return true
  }

  // Gemini's Files API: a `multipart/related` upload (metadata, then the file), and downloads of responses files
  if (path === "/upload/v1beta/files" && method === "POST") {
    if (options.submitDelayMs) await sleep(options.submitDelayMs)
    const parts = partsOf(raw, request.headers["content-type"] as string | undefined)
    if (!/multipart\/related/.test(String(request.headers["content-type"])) || parts.length !== 2) {
      json(res, 400, { error: { code: 400, message: "expected a multipart/related upload: metadata, then the file", status: "INVALID_ARGUMENT" } })
      return true
    }
    const name = `files/${newId("upload-")}`
    store.files.set(name, parts[1]!.content)
    json(res, 200, { file: { name, mimeType: "application/jsonl", sizeBytes: String(Buffer.byteLength(parts[1]!.content)), state: "ACTIVE" } })
    return true
  }
  const download = /^\/download\/v1beta\/files\/(.+)-responses:download$/.exec(path)
  if (download !== null && method === "GET") {
    const batch = store.batches.get(`batches/${decodeURIComponent(download[1]!)}`)
    if (batch === undefined || batch.ended !== "completed" || batch.fromFile !== true) return notFound()
    await streamLines(res, geminiFileLines(batch), options.lineDelayMs)
    return true
  }

  // Gemini
  if (gemini) {
    const create_ = /\/v1beta\/models\/([^/:]+):batchGenerateContent$/.exec(path)
    if (create_ !== null && method === "POST") {
      if (options.submitDelayMs) await sleep(options.submitDelayMs)
      const batchBody = (request.body as {
        batch?: { display_name?: string; input_config?: { file_name?: string; requests?: { requests?: Array<{ request: unknown; metadata?: { key?: string } }> } } }
      })?.batch
      const fileName = batchBody?.input_config?.file_name
      const file = fileName === undefined ? undefined : store.files.get(fileName)
      if (fileName !== undefined && file === undefined) {
        json(res, 400, { error: { code: 400, message: `no file ${fileName}`, status: "INVALID_ARGUMENT" } })
        return true
      }
      const requests = file === undefined
        ? batchBody?.input_config?.requests?.requests ?? []
        : file.split("\n").filter((line) => line.trim().length > 0).map((line) => {
          const { key, request } = JSON.parse(line) as { key?: string; request: unknown }
          return { request, metadata: { key } }
        })
      const batch = create(
        "gemini",
        requests.map((r, i) => ({ customId: r.metadata?.key ?? String(i), path: `/v1beta/models/${create_[1]}:generateContent`, body: r.request })),
        batchBody?.display_name ?? "",
        "",
        "batches/",
        undefined,
        file !== undefined
      )
      json(res, 200, geminiObject(batch))
      return true
    }
    if (method === "GET" && path === "/v1beta/batches") {
      json(res, 200, { operations: [...store.batches.values()].filter((b) => b.api === "gemini").map(geminiObject) })
      return true
    }
    const m = /\/v1beta\/(batches\/[^/:]+)(:cancel)?$/.exec(path)
    if (m === null) return false
    const batch = find(m[1]!)
    if (batch === undefined) return notFound()
    if (m[2] === ":cancel") {
      batch.cancelling = batch.ended === undefined
      json(res, 200, {})
      return true
    }
    if (pollFails(batch, options, res)) return true
    await advance(baseUrl, batch, options)
    json(res, 200, geminiObject(batch))
    return true
  }

  // OpenAI
  if (/\/files$/.test(path) && method === "POST") {
    if (options.submitDelayMs) await sleep(options.submitDelayMs)
    const text = filePart(raw, request.headers["content-type"] as string | undefined)
    if (text === undefined) {
      json(res, 400, { error: { message: "expected a multipart upload with a file part", type: "invalid_request_error", code: null } })
      return true
    }
    const id = newId("file-")
    store.files.set(id, text)
    json(res, 200, { id, object: "file", bytes: Buffer.byteLength(text), purpose: "batch", filename: "batch.jsonl" })
    return true
  }
  const content = /\/files\/([^/]+)\/content$/.exec(path)
  if (content !== null && method === "GET") {
    const [batchId, which] = decodeURIComponent(content[1]!).split(/-(?=output$|errors$)/) as [string, "output" | "errors"]
    const batch = store.batches.get(batchId)
    if (batch === undefined) return notFound()
    await streamLines(res, openaiFile(batch, which), options.lineDelayMs)
    return true
  }
  if (/\/batches$/.test(path)) {
    if (method === "GET") {
      json(res, 200, { object: "list", data: [...store.batches.values()].filter((b) => b.api === "openai").reverse().map(openaiObject), has_more: false })
      return true
    }
    if (options.submitDelayMs) await sleep(options.submitDelayMs)
    const body = request.body as { input_file_id?: string; endpoint?: string; metadata?: Record<string, string> }
    const file = store.files.get(body?.input_file_id ?? "")
    if (file === undefined) {
      json(res, 400, { error: { message: `no file ${body?.input_file_id}`, type: "invalid_request_error", code: null } })
      return true
    }
    const endpoint = body.endpoint ?? "/v1/chat/completions"
    const { errors, lines } = validated(file, endpoint)
    const batch = create(
      "openai",
      lines.map((line) => ({ customId: line.custom_id, path: `${openaiPrefix}${(line.url ?? endpoint).replace(/^\/v1/, "")}`, body: line.body })),
      body.metadata?.effect_llm_marker ?? "",
      endpoint,
      "batch_",
      errors.length === 0 ? undefined : errors
    )
    json(res, 200, openaiObject(batch))
    return true
  }
  const one = /\/batches\/([^/]+)(\/cancel)?$/.exec(path)
  if (one !== null) {
    const batch = find(one[1]!)
    if (batch === undefined) return notFound()
    if (one[2] === "/cancel") batch.cancelling = batch.ended === undefined
    else if (pollFails(batch, options, res)) return true
    else await advance(baseUrl, batch, options)
    json(res, 200, openaiObject(batch))
    return true
  }
  return false
}
