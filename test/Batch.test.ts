import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Exit, Fiber, Schedule, Stream } from "effect"
import { Batch, LanguageModel, LlmError, Message } from "../src/index.js"
import * as Testing from "../src/Testing.js"

/** A model that answers with the prompt after a per-prompt delay, tracking concurrency. */
const echoModel = (delayOf: (prompt: string) => number, failures: Map<string, number> = new Map()) => {
  let inFlight = 0
  let maxInFlight = 0
  const calls = new Map<string, number>()
  const service = LanguageModel.make({
    provider: "echo",
    model: "echo-1",
    chat: (request) =>
      Effect.gen(function* () {
        const prompt = Message.contentText(request.messages[request.messages.length - 1]!)
        calls.set(prompt, (calls.get(prompt) ?? 0) + 1)
        inFlight++
        maxInFlight = Math.max(maxInFlight, inFlight)
        yield* Effect.sleep(delayOf(prompt)).pipe(Effect.ensuring(Effect.sync(() => inFlight--)))
        const left = failures.get(prompt) ?? 0
        if (left > 0) {
          failures.set(prompt, left - 1)
          return yield* Effect.fail(new LlmError.ServerError({ provider: "echo", model: "echo-1", message: "flaky", status: 503 }))
        }
        if (prompt.startsWith("fatal")) {
          return yield* Effect.fail(new LlmError.InvalidRequestError({ provider: "echo", model: "echo-1", message: "bad", status: 400 }))
        }
        return {
          id: prompt,
          model: "echo-1",
          provider: "echo",
          text: `echo: ${prompt}`,
          toolCalls: [],
          finishReason: "stop" as const,
          usage: { inputTokens: 1, outputTokens: 2, totalTokens: 3, estimated: false }
        }
      }),
    stream: () => Stream.die("unused")
  })
  return { layer: LanguageModel.layer(service), calls, maxInFlight: () => maxInFlight, inFlight: () => inFlight }
}

const fast = { retrySchedule: Schedule.spaced("1 millis") }

describe("Batch.run", () => {
  it.live("emits one result per input, in input order, with bounded concurrency", () =>
    Effect.gen(function* () {
      const prompts = Array.from({ length: 20 }, (_, i) => `p${i}`)
      // later items finish first: order must still be by index
      const model = echoModel((p) => 40 - Number(p.slice(1)) * 2)
      const results = yield* Batch.run(prompts, { concurrency: 4, ...fast }).pipe(Stream.runCollect, Effect.provide(model.layer))
      const all = Chunk.toReadonlyArray(results)
      expect(all.map((r) => r.index)).toEqual(prompts.map((_, i) => i))
      expect(all.map((r) => r.id)).toEqual(prompts.map((_, i) => String(i)))
      expect(all.map((r) => (Exit.isSuccess(r.result) ? r.result.value.text : ""))).toEqual(prompts.map((p) => `echo: ${p}`))
      expect(model.maxInFlight()).toBe(4)
    }))

  it.live("completion order emits fast items first", () =>
    Effect.gen(function* () {
      const model = echoModel((p) => (p === "slow" ? 60 : 1))
      const results = yield* Batch.run(["slow", "a", "b"], { concurrency: 3, order: "completion", ...fast }).pipe(
        Stream.runCollect,
        Effect.provide(model.layer)
      )
      expect(Chunk.toReadonlyArray(results).map((r) => r.id)).toEqual(["1", "2", "0"])
    }))

  it.live("retries retryable failures per item and reports attempts; typed failures are kept", () =>
    Effect.gen(function* () {
      const model = echoModel(() => 1, new Map([["flaky", 2], ["hopeless", 10]]))
      const results = yield* Batch.run(
        [{ id: "f", messages: [Message.user("flaky")] }, { id: "h", messages: [Message.user("hopeless")] }, "fatal-1", "ok"],
        { retriesPerItem: 2, ...fast }
      ).pipe(Stream.runCollect, Effect.provide(model.layer))
      const [flaky, hopeless, fatal, ok] = Chunk.toReadonlyArray(results)
      expect(flaky!.id).toBe("f")
      expect(Exit.isSuccess(flaky!.result)).toBe(true)
      expect(flaky!.attempts).toBe(3)
      expect(hopeless!.attempts).toBe(3)
      expect(Batch.failureTag(hopeless!.result)).toBe("ServerError")
      // not retryable: one attempt
      expect(fatal!.attempts).toBe(1)
      expect(Batch.failureTag(fatal!.result)).toBe("InvalidRequestError")
      expect(Exit.isSuccess(ok!.result)).toBe(true)
      const summary = Chunk.toReadonlyArray(results).reduce(Batch.summarize, Batch.emptySummary)
      expect(summary).toEqual({
        total: 4,
        succeeded: 2,
        failed: 2,
        failuresByTag: { ServerError: 1, InvalidRequestError: 1 },
        usage: { inputTokens: 2, outputTokens: 4, totalTokens: 6, estimated: false },
        inputTokens: 2,
        outputTokens: 4
      })
    }))

  it("a summary sums the whole usage of its items with Usage.add: reasoning, cached input and estimates too", () => {
    const response = (usage: Message.Usage): Message.ChatResponse => ({
      id: "r",
      model: "m",
      provider: "p",
      text: "",
      toolCalls: [],
      finishReason: "stop",
      usage
    })
    const items: Array<Batch.Result<Message.ChatResponse>> = [
      { id: "a", index: 0, attempts: 1, durationMs: 1, result: Exit.succeed(response({ inputTokens: 10, outputTokens: 5, totalTokens: 15, reasoningTokens: 3, estimated: false })) },
      { id: "b", index: 1, attempts: 1, durationMs: 1, result: Exit.succeed(response({ inputTokens: 7, outputTokens: 1, totalTokens: 8, cachedInputTokens: 4, estimated: true })) }
    ]
    const summary = items.reduce(Batch.summarize, Batch.emptySummary)
    expect(summary.usage).toEqual({ inputTokens: 17, outputTokens: 6, totalTokens: 23, reasoningTokens: 3, cachedInputTokens: 4, estimated: true })
    expect([summary.inputTokens, summary.outputTokens]).toEqual([17, 6])
  })

  it.live("stopOnFirstError ends the stream after the first failure", () =>
    Effect.gen(function* () {
      const model = echoModel(() => 1)
      const results = yield* Batch.run(["a", "fatal", "b", "c"], { concurrency: 1, stopOnFirstError: true, ...fast }).pipe(
        Stream.runCollect,
        Effect.provide(model.layer)
      )
      expect(Chunk.toReadonlyArray(results).map((r) => r.id)).toEqual(["0", "1"])
      expect(model.calls.has("c")).toBe(false)
    }))

  it.live("accepts a Stream of items and works over any LanguageModel layer", () =>
    Effect.gen(function* () {
      const results = yield* Batch.run(Stream.make("x", "y"), { ...fast }).pipe(
        Stream.runCollect,
        Effect.provide(Testing.mockModel(["first", "second"]))
      )
      expect(Chunk.toReadonlyArray(results).map((r) => (Exit.isSuccess(r.result) ? r.result.value.text : "?"))).toEqual(["first", "second"])
    }))

  it.live("interrupting the run interrupts items in flight and leaks nothing", () =>
    Effect.gen(function* () {
      const model = echoModel(() => 10_000)
      const fiber = yield* Batch.run(["a", "b", "c"], { concurrency: 3, ...fast }).pipe(
        Stream.runCollect,
        Effect.provide(model.layer),
        Effect.fork
      )
      yield* Effect.sleep("30 millis")
      expect(model.calls.size).toBe(3)
      expect(model.inFlight()).toBe(3)
      yield* Fiber.interrupt(fiber)
      expect(model.inFlight()).toBe(0)
    }))
})
