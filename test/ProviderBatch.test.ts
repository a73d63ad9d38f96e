import type { HttpClient } from "@effect/platform"
import { NodeHttpClient } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Duration, Effect, Exit, Layer, Stream } from "effect"
import { Batch, Embeddings, KeyPool, Message, OpenAiCompatible, ProviderBatch, RateLimiter } from "../src/index.js"
import * as Testing from "../src/Testing.js"
import { nextDelay } from "../src/internal/providerBatch/run.js"

type Api = ProviderBatch.Api

const models: Record<Api, string> = { chat: "gpt-4o-mini", responses: "gpt-4o-mini", anthropic: "claude-3-5-haiku-latest", gemini: "gemini-2.0-flash" }

/** The batch service of `api` against a new fake, with two keys. */
const stack = (api: Api, batch: Testing.FakeBatchOptions, extra: Partial<ProviderBatch.Options> = {}) =>
  Effect.gen(function* () {
    const fake = yield* Testing.FakeProvider.make({ batch, respond: (request) => ({ text: `echo ${JSON.stringify(request.body).length}` }) })
    const baseUrl = api === "chat" || api === "responses" ? fake.baseUrl : api === "gemini" ? `${fake.url}/v1beta` : fake.url
    const layer = ProviderBatch.layer({ api, model: models[api], baseUrl, pollInterval: Duration.millis(1), maxPollInterval: Duration.millis(5), ...extra }).pipe(
      Layer.provide(KeyPool.layer({ providerId: api, keys: ["batch-key-1", "batch-key-2"] })),
      Layer.provide(NodeHttpClient.layerUndici)
    )
    return { fake, layer }
  })

const runAll = <E>(items: ReadonlyArray<Batch.Item>, layer: Layer.Layer<ProviderBatch.ProviderBatch, E>) =>
  ProviderBatch.run(items).pipe(Stream.runCollect, Effect.map(Chunk.toArray), Effect.provide(layer))

const prompts = (n: number) => Array.from({ length: n }, (_, i) => ({ id: `q${i}`, messages: [Message.user(`prompt number ${i}`)] }))

const tagOf = (result: ProviderBatch.Result) => Batch.failureTag(result.result)

describe("ProviderBatch", () => {
  for (const api of ["chat", "responses", "anthropic", "gemini"] as const) {
    it.scopedLive(`${api}: every item once, decoded as a live reply, after N polls, in batches at the limit`, () =>
      Effect.gen(function* () {
        const { fake, layer } = yield* stack(api, { pollsToComplete: 3 }, { limits: { maxItems: 4 } })
        const results = yield* runAll(prompts(10), layer)
        expect(results.map((r) => r.id).sort()).toEqual(prompts(10).map((p) => p.id).sort())
        expect(results.every((r) => Exit.isSuccess(r.result))).toBe(true)
        for (const r of results) {
          const response = (r.result as Exit.Success<Message.ChatResponse, never>).value
          expect(response.text).toMatch(/^echo \d+$/)
          expect(response.usage.inputTokens).toBeGreaterThan(0)
        }
        const sent = yield* fake.requests
        const live = sent.filter((r) => r.headers["x-fake-batch-item"] === "1")
        expect(live).toHaveLength(10)
        const creations = sent.filter((r) => r.method === "POST" && /\/batches$|:batchGenerateContent$/.test(r.path.split("?")[0]!))
        // 10 items at 4 a batch
        expect(creations).toHaveLength(3)
        // each batch polled until its third poll
        const polls = sent.filter((r) => r.method === "GET" && /batches\/[^/]+$/.test(r.path))
        expect(polls).toHaveLength(9)
        // every call carried a key of the pool
        for (const r of sent.filter((r) => r.headers["x-fake-batch-item"] === undefined)) {
          const key = r.headers.authorization ?? r.headers["x-api-key"] ?? r.headers["x-goog-api-key"]
          expect(String(key)).toMatch(/batch-key-[12]/)
        }
      }), 30_000)

    it.scopedLive(`${api}: polls answered 503 are tried again; the run ends with every item`, () =>
      Effect.gen(function* () {
        const { fake, layer } = yield* stack(api, { pollsToComplete: 2, failingPolls: 3 })
        const results = yield* runAll(prompts(3), layer)
        expect(results.map((r) => [r.id, Exit.isSuccess(r.result)])).toEqual(prompts(3).map((p) => [p.id, true]))
        const polls = (yield* fake.requests).filter((r) => r.method === "GET" && /batches\/[^/]+$/.test(r.path))
        expect(polls).toHaveLength(5)
      }), 30_000)

    it.scopedLive(`${api}: partial failures, an unreadable line and a missing one are each that item's typed failure`, () =>
      Effect.gen(function* () {
        const { layer } = yield* stack(api, {
          item: (customId) =>
            customId === "item-1"
              ? { _tag: "Error", status: 400, message: "bad things in item 1" }
              : customId === "item-2"
              ? { _tag: "Unparseable" }
              : customId === "item-3"
              ? { _tag: "Omit" }
              : undefined
        })
        const results = yield* runAll(prompts(5), layer)
        const byId = new Map(results.map((r) => [r.id, r]))
        expect(results).toHaveLength(5)
        expect(tagOf(byId.get("q0")!)).toBe("Success")
        expect(tagOf(byId.get("q1")!)).toBe("InvalidRequestError")
        expect(String((byId.get("q1")!.result as unknown as Exit.Failure<never, { message: string }>).cause)).toContain("bad things in item 1")
        expect(["UnparseableResultError", "MalformedResponseError"]).toContain(tagOf(byId.get("q2")!))
        expect(tagOf(byId.get("q3")!)).toBe("MissingResultError")
        expect(tagOf(byId.get("q4")!)).toBe("Success")
      }), 30_000)

    it.scopedLive(`${api}: an expired batch ends its unprocessed items as BatchExpiredError, the processed ones keep their replies`, () =>
      Effect.gen(function* () {
        const { layer } = yield* stack(api, { expire: true, answeredBeforeExpiry: api === "gemini" ? 0 : 2 })
        const results = yield* runAll(prompts(4), layer)
        const tags = results.sort((a, b) => a.index - b.index).map(tagOf)
        expect(tags).toEqual(api === "gemini" ? Array(4).fill("BatchExpiredError") : ["Success", "Success", "BatchExpiredError", "BatchExpiredError"])
      }), 30_000)
  }

  it.scopedLive("gemini: a batch over the 20 MB inline requests take goes by an uploaded file, its replies read from the responses file", () =>
    Effect.gen(function* () {
      const { fake, layer } = yield* stack("gemini", {
        item: (customId) => (customId === "item-3" ? { _tag: "Error", status: 400, message: "bad things in item 3" } : customId === "item-4" ? { _tag: "Unparseable" } : undefined)
      })
      // 110 prompts of 200 KB: 22 MB, over the inline limit, under the batch limit
      const big = Array.from({ length: 110 }, (_, i) => ({ id: `b${i}`, messages: [Message.user(`${i} ${"x".repeat(200_000)}`)] }))
      const results = yield* runAll(big, layer)
      expect(results.map((r) => r.id).sort()).toEqual(big.map((b) => b.id).sort())
      const byId = new Map(results.map((r) => [r.id, r]))
      expect(tagOf(byId.get("b3")!)).toBe("InvalidRequestError")
      expect(["UnparseableResultError", "MalformedResponseError"]).toContain(tagOf(byId.get("b4")!))
      for (const r of results.filter((r) => r.id !== "b3" && r.id !== "b4")) {
        expect((r.result as Exit.Success<Message.ChatResponse, never>).value.text).toMatch(/^echo \d+$/)
      }
      const sent = (yield* fake.requests).filter((r) => r.headers["x-fake-batch-item"] === undefined)
      const upload = sent.filter((r) => r.path.startsWith("/upload/v1beta/files"))
      expect(upload).toHaveLength(1)
      expect(String(upload[0]!.headers["content-type"])).toMatch(/^multipart\/related; boundary=/)
      const creation = sent.find((r) => /:batchGenerateContent$/.test(r.path))!
      expect((creation.body as { batch: { input_config: unknown } }).batch.input_config).toEqual({ file_name: "files/upload-0001" })
      expect(sent.filter((r) => r.path.startsWith("/download/v1beta/files/"))).toHaveLength(1)
    }), 60_000)

  it.scopedLive("a cancelled batch ends each item as BatchCancelledError", () =>
    Effect.gen(function* () {
      for (const api of ["chat", "anthropic", "gemini"] as const) {
        const { layer } = yield* stack(api, { pollsToComplete: 5 })
        const tags = yield* Effect.gen(function* () {
          const service = yield* ProviderBatch.ProviderBatch
          const requests = prompts(3).map((p, i) => ({ customId: `c${i}`, request: { messages: p.messages } }))
          const { chunks } = service.prepare(requests)
          const id = yield* service.submit(chunks[0]!, { name: "cancel-test", items: 3, since: Date.now() })
          yield* service.cancel(service.model, id)
          let status = yield* service.poll(service.model, id)
          while (status.phase !== "ended") status = yield* service.poll(service.model, id)
          expect(status.outcome).toBe("cancelled")
          const items = yield* Stream.runCollect(service.results(service.model, status, new Map(requests.map((r) => [r.customId, r.request]))))
          return Chunk.toArray(items).map((item) => Batch.failureTag(item.result))
        }).pipe(Effect.provide(layer))
        expect(tags).toEqual(["BatchCancelledError", "BatchCancelledError", "BatchCancelledError"])
      }
    }), 30_000)

  it.scopedLive("a streaming request or a model the API does not batch is refused before anything is uploaded, naming the item", () =>
    Effect.gen(function* () {
      const { fake, layer } = yield* stack("anthropic", {})
      const streaming = yield* Effect.flip(runAll([...prompts(2), { id: "s", messages: [Message.user("x")], extra: { stream: true } }], layer))
      expect(streaming._tag).toBe("BatchInputError")
      expect(streaming.message).toContain("item 2 (id s)")
      const model = yield* Effect.flip(runAll([{ id: "m", model: "gpt-4o", messages: [Message.user("x")] }], layer))
      expect(model.message).toContain("item 0 (id m): Anthropic's Message Batches serve Claude models, not gpt-4o")
      expect(yield* fake.requests).toHaveLength(0)
    }), 30_000)

  it.effect("polls back off by half again each time, to the maximum", () =>
    Effect.gen(function* () {
      const service = yield* ProviderBatch.make({ api: "chat", model: "gpt-4o-mini", pollInterval: "10 seconds", maxPollInterval: "60 seconds" }).pipe(
        Effect.provide(KeyPool.layer({ providerId: "openai", keys: ["k"] })),
        Effect.provide(NodeHttpClient.layerUndici)
      )
      const delays: Array<number> = []
      let d = service.pollInterval
      for (let i = 0; i < 7; i++) {
        delays.push(Duration.toSeconds(d))
        d = nextDelay(service, d)
      }
      expect(delays).toEqual([10, 15, 22.5, 33.75, 50.625, 60, 60])
    }))

  it.effect("splits by model and at the byte limit; a request over the limit alone is its own typed failure", () =>
    Effect.gen(function* () {
      const service = yield* ProviderBatch.make({ api: "chat", model: "gpt-4o-mini", limits: { maxBytes: 250 } }).pipe(
        Effect.provide(KeyPool.layer({ providerId: "openai", keys: ["k"] })),
        Effect.provide(NodeHttpClient.layerUndici)
      )
      const entries = [
        { customId: "a", request: Message.request("short a") },
        { customId: "b", request: { ...Message.request("short b"), model: "gpt-4.1" } },
        { customId: "c", request: Message.request("short c") },
        { customId: "big", request: Message.request("x".repeat(500)) }
      ]
      const { chunks, rejected } = service.prepare(entries)
      expect(chunks.map((c) => [c.model, c.customIds])).toEqual([["gpt-4o-mini", ["a"]], ["gpt-4o-mini", ["c"]], ["gpt-4.1", ["b"]]])
      expect(chunks.every((c) => c.bytes <= 250)).toBe(true)
      expect(rejected.map((r) => [r.customId, Batch.failureTag(r.result)])).toEqual([["big", "InvalidRequestError"]])
    }))

  describe("embeddings (OpenAI /v1/embeddings batches)", () => {
    const embeddingsStack = (batch: Testing.FakeBatchOptions, extra: Partial<ProviderBatch.EmbeddingsOptions> = {}) =>
      Effect.gen(function* () {
        const fake = yield* Testing.FakeProvider.make({ batch })
        const keys = KeyPool.layer({ providerId: "openai", keys: ["batch-key-1", "batch-key-2"] })
        const layer = ProviderBatch.layerEmbeddings({ model: "text-embedding-3-small", baseUrl: fake.baseUrl, pollInterval: Duration.millis(1), maxPollInterval: Duration.millis(5), ...extra }).pipe(
          Layer.provide(keys),
          Layer.provide(NodeHttpClient.layerUndici)
        )
        const live = OpenAiCompatible.layerEmbeddings({ model: "text-embedding-3-small", baseUrl: fake.baseUrl }).pipe(
          Layer.provide(keys),
          Layer.provide(RateLimiter.unlimited),
          Layer.provide(NodeHttpClient.layerUndici)
        )
        return { fake, layer, live }
      })
    const runEmbeddings = <E>(items: ReadonlyArray<ProviderBatch.EmbeddingsItem>, layer: Layer.Layer<ProviderBatch.EmbeddingsBatch, E>) =>
      ProviderBatch.runEmbeddings(items).pipe(Stream.runCollect, Effect.map(Chunk.toArray), Effect.provide(layer))
    const items = (n: number, texts: number) =>
      Array.from({ length: n }, (_, i) => ({ id: `e${i}`, texts: Array.from({ length: texts }, (_, j) => `document ${i} part ${j}`) }))

    it.scopedLive("every item once, with the vectors a live embed gives, in batches cut at the inputs limit", () =>
      Effect.gen(function* () {
        const { fake, layer, live } = yield* embeddingsStack({ pollsToComplete: 2 }, { limits: { maxInputs: 7 } })
        const results = yield* runEmbeddings([...items(5, 3), "a single text"], layer)
        expect(results.map((r) => r.id).sort()).toEqual(["5", "e0", "e1", "e2", "e3", "e4"])
        for (const r of results) {
          expect(Exit.isSuccess(r.result)).toBe(true)
          const value = (r.result as Exit.Success<Embeddings.EmbedResult, never>).value
          const texts = r.id === "5" ? ["a single text"] : items(5, 3)[Number(r.id.slice(1))]!.texts
          const expected = yield* Embeddings.embed(texts).pipe(Effect.provide(live))
          expect(value.embeddings).toEqual(expected.embeddings)
          expect(value.usage.inputTokens).toBe(expected.usage.inputTokens)
          expect(value.usage.estimated).toBe(false)
        }
        const sent = (yield* fake.requests).filter((r) => r.headers["x-fake-batch-item"] === undefined)
        const creations = sent.filter((r) => r.method === "POST" && /\/batches$/.test(r.path))
        // 16 inputs at most 7 a batch, whole items only: 3 + 3, 3 + 3, 3 + 1
        expect(creations).toHaveLength(3)
        expect(creations.map((r) => (r.body as { endpoint: string }).endpoint)).toEqual(Array(3).fill("/v1/embeddings"))
        const uploads = sent.filter((r) => r.method === "POST" && /\/files$/.test(r.path)).map((r) => String(r.body))
        expect(uploads.join("")).toContain(`"url":"/v1/embeddings"`)
        expect(uploads.join("")).toContain(`"encoding_format":"base64"`)
      }), 30_000)

    it.scopedLive("a failed item and an unreadable line are that item's typed failures; an expired batch's unprocessed items BatchExpiredError", () =>
      Effect.gen(function* () {
        const { layer } = yield* embeddingsStack({ item: (customId) => (customId === "item-1" ? { _tag: "Error", status: 400, message: "input 1 is too long" } : customId === "item-2" ? { _tag: "Unparseable" } : undefined) })
        const results = yield* runEmbeddings(items(3, 2), layer)
        expect(results.sort((a, b) => a.index - b.index).map((r) => Batch.failureTag(r.result))).toEqual(["Success", "InvalidRequestError", expect.stringMatching(/UnparseableResultError|MalformedResponseError/)])
        const expired = yield* embeddingsStack({ expire: true, answeredBeforeExpiry: 1 })
        const tags = (yield* runEmbeddings(items(3, 1), expired.layer)).sort((a, b) => a.index - b.index).map((r) => Batch.failureTag(r.result))
        expect(tags).toEqual(["Success", "BatchExpiredError", "BatchExpiredError"])
      }), 30_000)

    it.scopedLive("an item a batch cannot take is refused before anything is uploaded, naming it", () =>
      Effect.gen(function* () {
        const { fake, layer } = yield* embeddingsStack({})
        const empty = yield* Effect.flip(runEmbeddings([...items(2, 1), { id: "blank", texts: ["ok", ""] }], layer))
        expect(empty._tag).toBe("BatchInputError")
        expect(empty.message).toBe("item 2 (id blank): texts[1] is empty")
        const many = yield* Effect.flip(runEmbeddings([{ id: "big", texts: Array(2049).fill("x") }], layer))
        expect(many.message).toContain("item 0 (id big): 2049 texts, over the 2048")
        const none = yield* Effect.flip(runEmbeddings([{ texts: [] }], layer))
        expect(none.message).toContain("item 0 (id 0): an embeddings request needs at least one text")
        expect(yield* fake.requests).toHaveLength(0)
      }), 30_000)

    it.scopedLive("a batch the provider's validation fails ends each item as BatchFailedError with the provider's reason", () =>
      Effect.gen(function* () {
        const { layer } = yield* embeddingsStack({})
        const tags = yield* Effect.gen(function* () {
          const service = yield* ProviderBatch.EmbeddingsBatch
          const requests = new Map([["a", { texts: ["one"] }], ["b", { texts: ["two"] }]])
          const { chunks } = service.prepare([...requests].map(([customId, request]) => ({ customId, request })))
          // the second line sent to another endpoint than the batch's, as a hand-edited file would
          const lines = [chunks[0]!.lines[0]!, chunks[0]!.lines[1]!.replace("/v1/embeddings", "/v1/chat/completions")]
          const id = yield* service.submit({ ...chunks[0]!, lines }, { name: "invalid", items: 2, since: Date.now() })
          let status = yield* service.poll(service.model, id)
          while (status.phase !== "ended") status = yield* service.poll(service.model, id)
          expect(status.outcome).toBe("failed")
          expect(status.reason).toContain("url_mismatch")
          expect(status.reason).toContain("(line 2)")
          const items = Chunk.toArray(yield* Stream.runCollect(service.results(service.model, status, requests)))
          expect(items.map((item) => item.customId).sort()).toEqual(["a", "b"])
          for (const item of items) expect(String(Exit.isFailure(item.result) && item.result.cause)).toContain("url_mismatch")
          return items.map((item) => Batch.failureTag(item.result))
        }).pipe(Effect.provide(layer))
        expect(tags).toEqual(["BatchFailedError", "BatchFailedError"])
      }), 30_000)

    it.effect("cuts at 50,000 inputs by default and refuses a bad maxInputs", () =>
      Effect.gen(function* () {
        const provide = <A, E>(effect: Effect.Effect<A, E, HttpClient.HttpClient | KeyPool.KeyPool>) =>
          effect.pipe(Effect.provide(KeyPool.layer({ providerId: "openai", keys: ["k"] })), Effect.provide(NodeHttpClient.layerUndici))
        const service = yield* provide(ProviderBatch.makeEmbeddings({ model: "text-embedding-3-small" }))
        expect(service.limits).toEqual({ maxItems: 50_000, maxBytes: 200 * 1024 * 1024, maxInputs: 50_000 })
        const entries = Array.from({ length: 30 }, (_, i) => ({ customId: `i${i}`, request: { texts: Array(2000).fill("t") } }))
        const { chunks } = service.prepare(entries)
        // 25 requests of 2000 inputs fill 50,000
        expect(chunks.map((c) => c.customIds.length)).toEqual([25, 5])
        const bad = yield* Effect.flip(provide(ProviderBatch.makeEmbeddings({ model: "m", limits: { maxInputs: 0 } })))
        expect(String(bad)).toContain("limits.maxInputs must be a positive integer, got 0")
      }))
  })
})
