/**
 * What the economy costs per request, as ratios to a raw undici round trip on the fake
 * provider measured in the same run: `npx tsx bench/economy.ts`.
 */
import { Effect } from "effect"
import { request as undiciRequest } from "undici"
import { ContextWindow, Message, RateLimiter, ResponseCache, Tokenizer } from "../src/index.js"
import * as Testing from "../src/Testing.js"
import { toWireRequest } from "../src/internal/providers/openaiChat/request.js"

const time = async (label: string, n: number, f: () => unknown | Promise<unknown>) => {
  for (let i = 0; i < Math.min(200, n); i++) await f()
  const start = process.hrtime.bigint()
  for (let i = 0; i < n; i++) await f()
  const us = Number(process.hrtime.bigint() - start) / 1e3 / n
  return { label, us }
}

const main = Effect.gen(function* () {
  const fake = yield* Testing.FakeProvider.make({ record: false, reply: { text: "ok" } })
  const conversation = [
    Message.system("You are a helpful assistant. Answer briefly and cite sources when you can."),
    ...Array.from({ length: 10 }, (_, i) => [
      Message.user(`Question ${i}: what is the capital of country number ${i}, and why does it matter today?`),
      Message.assistant(`Answer ${i}: it is a city of some importance, for reasons of history, trade and governance.`)
    ]).flat(),
    Message.user("Thanks. One more: summarise all of the above in two sentences.")
  ]
  const request = Message.request(conversation, { temperature: 0.2, maxTokens: 256 })
  const body = JSON.stringify(toWireRequest(request, "gpt-4o-mini", false))
  const tokenizer = yield* Tokenizer.make
  yield* tokenizer.count(conversation, "gpt-4o-mini") // load the BPE outside the timing
  const run = <A>(e: Effect.Effect<A, unknown>) => Effect.runPromise(e)
  // built once, as a stack builds it: the benchmark times the call, not the decorating
  const fitted = yield* ContextWindow.decorator()({ provider: "p", model: "m", chat: (r) => Effect.succeed(r as never), stream: () => undefined as never })
  const fitting = Effect.succeed(fitted)
  const results = yield* Effect.promise(async () => [
    await time("raw undici JSON round trip (the floor)", 2_000, async () => {
      const res = await undiciRequest(`${fake.baseUrl}/chat/completions`, { method: "POST", body, headers: { "content-type": "application/json" } })
      await res.body.text()
    }),
    await time("RateLimiter.estimateTokens(body), ≈4 chars", 20_000, () => RateLimiter.estimateTokens(body)),
    await time("Tokenizer.count(messages, gpt-4o-mini), BPE", 2_000, () => run(tokenizer.count(conversation, "gpt-4o-mini"))),
    await time("Tokenizer BPE of the whole body text", 2_000, () => run(tokenizer.count(body, "gpt-4o-mini"))),
    await time("ResponseCache.keyOf(request)", 20_000, () => ResponseCache.keyOf("openai", "gpt-4o-mini", request)),
    await time("ContextWindow decorator, request far below the window", 20_000, () =>
      run(Effect.flatMap(fitting, (model) => model.chat(request))))
  ])
  const floor = results[0]!.us
  console.log(`body: ${body.length} characters, ${conversation.length} messages`)
  for (const r of results) console.log(`${r.label.padEnd(58)} ${r.us.toFixed(2).padStart(9)} µs   ${(r.us / floor).toFixed(3)}× the floor`)
})

Effect.runPromise(Effect.scoped(main)).catch((e) => {
  console.error(e)
  process.exit(1)
})
