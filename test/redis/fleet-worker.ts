/**
 * One process of the fleet tests (fleet.test.ts), run as `node --import tsx fleet-worker.ts`
 * with REDIS_TARGET and PREFIX set. It builds the Redis budget, breaker and usage stores once,
 * prints "ready", then runs the commands its parent writes on stdin, one JSON line each, and
 * answers each with one JSON line on stdout:
 * - `budget`: requests through a Redis budget to a mock model, for `durationMs` or until every
 *   fiber is refused `refusals` times in a row; each request's actual usage is its estimate
 *   times a factor in [minFactor, maxFactor]. Answers what was sent (when, its estimate and
 *   actual tokens) and the errors met.
 * - `hold`: reservations of requests that never end; answers once they are reserved.
 * - `breakerFail`: calls that fail with a 503 through the fleet's breaker; answers when the
 *   last failure happened.
 * - `breakerPoll`: calls whose answers the breaker ignores (429s), until the breaker refuses
 *   one; answers when.
 * - `breakerProbe`: concurrent calls to a slow, healthy model; answers how many reached it.
 * - `usage`: records usages into the fleet's mirrored tracker; answers their sum.
 */
import * as readline from "node:readline"
import { Cause, Effect, Either, Exit, Layer, ManagedRuntime } from "effect"
import { Budget, CircuitBreaker, LlmError, Message, Tokenizer, Usage } from "../../src/index.js"
import * as Redis from "../../src/Redis.js"
import * as Testing from "../../src/Testing.js"
import { targetFromEnv } from "./workerTarget.js"

const prefix = process.env.PREFIX ?? ""
const target = targetFromEnv()
const options = { ...target, prefix, commandTimeout: "400 millis" as const }

const makeRuntime = () =>
  ManagedRuntime.make(
    Layer.mergeAll(
      Redis.layerBudgetStore(options),
      Redis.layerCircuitBreakerStore({ ...options, probeTtl: "10 seconds" }),
      Redis.layerUsage(options)
    )
  )
let runtime = makeRuntime()

const send = (answer: unknown) => process.stdout.write(JSON.stringify(answer) + "\n")

const mock = Testing.makeMockModel({ steps: ["ok"], provider: "fleet", model: "m" })

interface Sent {
  readonly sentAt: number
  readonly settledAt: number
  readonly estimate: number
  readonly actual: number
}

const budget = (cmd: {
  readonly name: string
  readonly maxTokens: number
  readonly leaseTtlMs: number
  readonly durationMs: number
  readonly concurrency: number
  readonly refusals: number
  readonly minFactor: number
  readonly maxFactor: number
}) =>
  Effect.gen(function* () {
    const controller = yield* Budget.make({ period: "day", maxTokens: cmd.maxTokens, name: cmd.name, leaseTtl: cmd.leaseTtlMs })
    const base = yield* mock
    const sentAt = new Map<string, number>()
    const model = yield* controller.decorator({
      ...base.service,
      chat: (request) =>
        Effect.suspend(() => {
          const estimate = Tokenizer.estimate(request.messages).tokens + (request.maxTokens ?? 0)
          const factor = cmd.minFactor + Math.random() * (cmd.maxFactor - cmd.minFactor)
          const actual = Math.max(1, Math.round(estimate * factor))
          sentAt.set(Message.contentText(request.messages[0]!), Date.now())
          return Effect.as(Effect.sleep(5 + Math.random() * 20), {
            id: "r",
            model: "m",
            provider: "fleet",
            text: "ok",
            toolCalls: [],
            finishReason: "stop" as const,
            usage: { inputTokens: actual, outputTokens: 0, totalTokens: actual, estimated: false }
          })
        })
    })
    const sent: Array<Sent> = []
    const errors: Record<string, number> = {}
    let unretryable = 0
    let counter = 0
    const until = Date.now() + cmd.durationMs
    const fiber = Effect.gen(function* () {
      let refusedInARow = 0
      while (Date.now() < until && refusedInARow < cmd.refusals) {
        const text = `${process.pid}-${counter++}`
        const request = Message.request(text, { maxTokens: 10 + Math.floor(Math.random() * 40) })
        const result = yield* Effect.either(model.chat(request))
        if (Either.isRight(result)) {
          refusedInARow = 0
          const estimate = Tokenizer.estimate(request.messages).tokens + (request.maxTokens ?? 0)
          sent.push({ sentAt: sentAt.get(text)!, settledAt: Date.now(), estimate, actual: result.right.usage.totalTokens })
        } else {
          const error = result.left
          errors[error._tag] = (errors[error._tag] ?? 0) + 1
          if (error._tag === "BudgetExceededError") refusedInARow++
          else if (!error.retryable) unretryable++
          yield* Effect.sleep(error._tag === "StoreUnavailableError" ? 50 : 5)
        }
      }
    })
    yield* Effect.all(Array.from({ length: cmd.concurrency }, () => fiber), { concurrency: "unbounded", discard: true })
    return { sent, errors, unretryable }
  })

const hold = (cmd: { readonly name: string; readonly maxTokens: number; readonly leaseTtlMs: number; readonly count: number }) =>
  Effect.gen(function* () {
    const controller = yield* Budget.make({ period: "day", maxTokens: cmd.maxTokens, name: cmd.name, leaseTtl: cmd.leaseTtlMs })
    const base = yield* mock
    const model = yield* controller.decorator({ ...base.service, chat: () => Effect.never })
    for (let i = 0; i < cmd.count; i++) yield* Effect.forkDaemon(model.chat(Message.request("hold", { maxTokens: 92 })))
    yield* Effect.sleep(200)
    return { held: cmd.count }
  })

// the fleet's breaker: the same endpoint and settings in every process
const makeBreaker = Effect.gen(function* () {
    const breaker = yield* CircuitBreaker.make({ endpoint: "fleet/m", provider: "fleet", model: "m", consecutiveFailures: 3, cooldown: "1500 millis" })
    const base = yield* mock
    let behaviour: "fail" | "ignored" | "slow" = "fail"
    let reached = 0
    let failedAt = 0
    const model = yield* breaker.decorator({
      ...base.service,
      chat: (request) =>
        Effect.suspend(() => {
          reached++
          if (behaviour === "fail") {
            failedAt = Date.now()
            return Effect.fail(new LlmError.ServerError({ provider: "fleet", model: "m", status: 503, message: "down" }))
          }
          if (behaviour === "ignored") return Effect.fail(new LlmError.RateLimitError({ provider: "fleet", model: "m", status: 429, message: "slow down" }))
          return Effect.zipRight(Effect.sleep(300), base.service.chat(request))
        })
    })
    return {
      model,
      set: (next: typeof behaviour) => void (behaviour = next),
      reached: () => reached,
      failedAt: () => failedAt
    }
  })

let breaker: Effect.Effect.Success<typeof makeBreaker>

const commands: Record<string, (cmd: never) => Effect.Effect<unknown, unknown, Budget.BudgetStore | CircuitBreaker.CircuitBreakerStore | Usage.UsageTracker>> = {
  budget,
  hold,
  breakerFail: (cmd: { readonly calls: number }) =>
    Effect.gen(function* () {
      breaker.set("fail")
      const tags: Array<string> = []
      for (let i = 0; i < cmd.calls; i++) tags.push((yield* Effect.flip(breaker.model.chat(Message.request("x"))))._tag)
      return { tags, failedAt: breaker.failedAt() }
    }),
  breakerPoll: (cmd: { readonly timeoutMs: number }) =>
    Effect.gen(function* () {
      breaker.set("ignored")
      const until = Date.now() + cmd.timeoutMs
      let polls = 0
      while (Date.now() < until) {
        polls++
        const error = yield* Effect.flip(breaker.model.chat(Message.request("x")))
        if (error._tag === "CircuitOpenError") return { refusedAt: Date.now(), polls }
      }
      return { refusedAt: undefined, polls }
    }),
  breakerProbe: (cmd: { readonly calls: number }) =>
    Effect.gen(function* () {
      breaker.set("slow")
      const before = breaker.reached()
      const results = yield* Effect.all(
        Array.from({ length: cmd.calls }, () => Effect.either(breaker.model.chat(Message.request("x")))),
        { concurrency: "unbounded" }
      )
      return { reached: breaker.reached() - before, tags: results.map((r) => (Either.isLeft(r) ? r.left._tag : "ok")) }
    }),
  usage: (cmd: { readonly count: number }) =>
    Effect.gen(function* () {
      const tracker = yield* Usage.UsageTracker
      const models = [["openai", "gpt-4o-mini"], ["anthropic", "claude-sonnet-4"], ["fleet", "unpriced"]] as const
      const local = yield* Usage.make()
      for (let i = 0; i < cmd.count; i++) {
        const [provider, model] = models[i % models.length]!
        const input = 1 + Math.floor(Math.random() * 1000)
        const output = Math.floor(Math.random() * 200)
        const usage = { inputTokens: input, outputTokens: output, totalTokens: input + output, estimated: i % 7 === 0, cachedInputTokens: Math.floor(input / 3) }
        yield* tracker.record(provider, model, usage)
        yield* local.record(provider, model, usage)
      }
      // sends what this process still holds
      yield* tracker.snapshot
      return (yield* local.snapshot).total
    })
}

const main = async () => {
  // the first PING may take longer than the 400 ms command timeout on a busy machine: connect
  // again (a failed ManagedRuntime keeps its failure), three times at most
  for (let attempt = 1; ; attempt++) {
    const built = await runtime.runPromiseExit(Effect.void)
    if (Exit.isSuccess(built)) break
    await runtime.dispose()
    if (attempt === 3) throw Cause.squash(built.cause)
    runtime = makeRuntime()
  }
  breaker = await runtime.runPromise(makeBreaker)
  send({ ready: true })
  const lines = readline.createInterface({ input: process.stdin })
  for await (const line of lines) {
    if (line.trim() === "") continue
    const cmd = JSON.parse(line) as { readonly cmd: string }
    const run = commands[cmd.cmd]
    if (run === undefined) {
      send({ error: `unknown command ${cmd.cmd}` })
      continue
    }
    const exit = await runtime.runPromiseExit(run(cmd as never))
    send(Exit.isSuccess(exit) ? { ok: exit.value } : { error: Cause.pretty(exit.cause) })
  }
  await runtime.dispose()
  process.exit(0)
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})
