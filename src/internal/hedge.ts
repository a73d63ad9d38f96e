/**
 * Hedging (`Hedge`): the delay (fixed, or a percentile of a window of latencies), the budget
 * of extra attempts, and the race of attempts for `chat` and for `stream`.
 *
 * The window keeps the first attempt's latency. When a hedge wins, the first attempt's latency
 * is unknown but at least its time so far, which is at least the delay: counted as that, it
 * lands above the percentile, as its true value would, so the percentile does not drift down
 * as hedges cut the tail short.
 */
import * as Cause from "effect/Cause"
import * as Channel from "effect/Channel"
import * as Chunk from "effect/Chunk"
import * as Clock from "effect/Clock"
import * as ConfigError from "effect/ConfigError"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Fiber from "effect/Fiber"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Runtime from "effect/Runtime"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type { Controller, Options, Percentile, Stats } from "../Hedge.js"
import type { Service as Model, Tracker } from "../LanguageModel.js"
import type { LlmError } from "../LlmError.js"
import type { ChatRequest, ChatResponse, StreamEvent, Usage } from "../Message.js"
import { liveClock, maxTimerMillis } from "./liveClock.js"
import { attempt, reporting } from "./request/delivered.js"
import * as Streams from "./streams.js"

export const hedgesStarted = Metric.counter("effect_llm_hedges_total", {
  description: "Extra attempts sent by Hedge",
  incremental: true
})
export const hedgesRefused = Metric.counter("effect_llm_hedges_refused_total", {
  description: "Extra attempts Hedge's budget refused",
  incremental: true
})
export const hedgeWins = Metric.counter("effect_llm_hedge_wins_total", {
  description: "Hedged calls, tagged by the attempt that won (0 the first)",
  incremental: true
})

/** What the decorator needs from outside: where losers' usage goes, and an input estimate. */
export interface Deps {
  readonly record: (provider: string, model: string, usage: Usage) => Effect.Effect<void>
  readonly estimate: (request: ChatRequest) => number
}

interface Resolved {
  /** The fixed delay in millis, or the percentile's settings. */
  readonly fixed: number | undefined
  readonly percentile: { readonly p: number; readonly floor: number; readonly size: number; readonly warmup: number } | undefined
  readonly max: number
  readonly budget: number
}

const invalid = (path: string, message: string) => Effect.fail(ConfigError.InvalidData([path], `Hedge: ${message}`))

const isPercentile = (after: Options["after"]): after is Percentile =>
  typeof after === "object" && after !== null && "percentile" in after

const millisOf = (input: Duration.DurationInput): number | undefined => {
  // a negative number of millis decodes as zero: refuse it instead
  if (typeof input === "number" && !(input >= 0)) return undefined
  const decoded = Duration.decodeUnknown(input)
  return Option.isSome(decoded) ? Duration.toMillis(decoded.value) : undefined
}

const resolve = (options: Options): Effect.Effect<Resolved, ConfigError.ConfigError> => {
  const max = options.max ?? 1
  const budget = options.budget ?? 0.1
  if (!(Number.isInteger(max) && max >= 1)) return invalid("max", `max must be a whole number ≥ 1, got ${String(options.max)}`)
  if (!(budget > 0 && budget <= 1)) return invalid("budget", `budget must be within (0, 1], got ${String(options.budget)}`)
  const after = options.after
  if (!isPercentile(after)) {
    const fixed = millisOf(after)
    if (fixed === undefined || !(fixed >= 0) || !Number.isFinite(fixed)) {
      return invalid("after", `after must be a finite duration ≥ 0 or a percentile, got ${String(after)}`)
    }
    return Effect.succeed({ fixed, percentile: undefined, max, budget })
  }
  const p = after.percentile
  const floor = after.floor === undefined ? 0 : millisOf(after.floor)
  const size = after.window ?? 1000
  const warmup = after.warmup ?? Math.min(20, size)
  if (!(p > 0 && p < 100)) return invalid("after.percentile", `after.percentile must be within (0, 100), got ${String(p)}`)
  if (floor === undefined || !(floor >= 0) || !Number.isFinite(floor)) {
    return invalid("after.floor", `after.floor must be a finite duration ≥ 0, got ${String(after.floor)}`)
  }
  if (!(Number.isInteger(size) && size >= 1)) return invalid("after.window", `after.window must be a whole number ≥ 1, got ${String(after.window)}`)
  if (!(Number.isInteger(warmup) && warmup >= 1 && warmup <= size)) {
    return invalid("after.warmup", `after.warmup must be a whole number within [1, window], got ${String(after.warmup)}`)
  }
  return Effect.succeed({ fixed: undefined, percentile: { p, floor, size, warmup }, max, budget })
}


/** A sliding window of latencies and its percentile, recomputed every few samples. */
export class Window {
  private readonly ring: Float64Array
  private count = 0
  private next = 0
  private sinceSort = 0
  private cached: number | undefined = undefined
  private readonly every: number

  constructor(readonly size: number, readonly p: number, readonly floor: number, readonly warmup: number) {
    this.ring = new Float64Array(size)
    this.every = Math.max(1, Math.floor(size / 50))
  }

  add(millis: number): void {
    this.ring[this.next] = millis
    this.next = (this.next + 1) % this.size
    if (this.count < this.size) this.count++
    this.sinceSort++
  }

  /** The delay, or undefined while fewer than `warmup` latencies are in. */
  delay(): number | undefined {
    if (this.count < this.warmup) return undefined
    if (this.cached === undefined || this.sinceSort >= this.every) {
      const sorted = this.ring.slice(0, this.count).sort()
      // nearest rank
      const rank = Math.max(0, Math.ceil((this.p / 100) * this.count) - 1)
      this.cached = Math.max(this.floor, sorted[rank]!)
      this.sinceSort = 0
    }
    return this.cached
  }
}

/**
 * Credit for extra attempts: each call adds `ratio`, each extra attempt spends one. It starts
 * at one and holds at most enough for a burst of a hundred calls' worth.
 */
class Credits {
  private credit = 1
  private readonly cap: number
  constructor(private readonly ratio: number) {
    this.cap = Math.max(1, ratio * 100)
  }
  earn(): void {
    this.credit = Math.min(this.cap, this.credit + this.ratio)
  }
  spend(): boolean {
    if (this.credit < 1) return false
    this.credit -= 1
    return true
  }
}

interface Counters {
  requests: number
  hedges: number
  refused: number
  readonly wins: Array<number>
}

/** One call's race: the attempts in flight, and the first error seen. */
interface Race<A> {
  readonly done: Deferred.Deferred<readonly [A, number], LlmError>
  running: number
  firstError: LlmError | undefined
}

export const make = (options: Options, deps: Deps): Effect.Effect<Controller, ConfigError.ConfigError> =>
  Effect.map(resolve(options), (resolved) => {
    const counters: Counters = { requests: 0, hedges: 0, refused: 0, wins: Array.from({ length: resolved.max + 1 }, () => 0) }
    const credits = new Credits(resolved.budget)
    const windows = new Map<string, Window>()
    const pct = resolved.percentile

    const windowOf = (model: string): Window | undefined => {
      if (pct === undefined) return undefined
      let window = windows.get(model)
      if (window === undefined) {
        window = new Window(pct.size, pct.p, pct.floor, pct.warmup)
        windows.set(model, window)
      }
      return window
    }

    /** Called once per call: counts it, earns its credit, and says after how long it hedges. */
    const begin = (window: Window | undefined): number | undefined => {
      counters.requests++
      credits.earn()
      return resolved.fixed ?? window?.delay()
    }

    // tagged once: a metric tagged per call is looked up in the registry by its full key each time
    const winsOf = counters.wins.map((_, index) => Metric.increment(Metric.tagged(hedgeWins, "attempt", String(index))))
    const won = (index: number) =>
      Effect.suspend(() => {
        counters.wins[index]!++
        return winsOf[index]!
      })

    /**
     * Sends the k-th extra attempt k × `delay` after the call began, while the race is not
     * decided and the budget allows; stops at the first refusal.
     */
    const launcher = <R>(
      delay: number,
      race: Race<unknown>,
      launch: (index: number) => Effect.Effect<void, never, R>,
      model: string,
      waited = false
    ) => {
      const next = (k: number): Effect.Effect<void, never, R> =>
        k > resolved.max ? Effect.void : Effect.zipRight(
          // the first delay may already be over (the chat's fast path waited it)
          k === 1 && waited ? Effect.void : Effect.sleep(Duration.millis(delay)),
          Effect.suspend(() => {
            if (race.running === 0) return Effect.void
            return Effect.flatMap(Deferred.isDone(race.done), (decided) => {
              if (decided) return Effect.void
              if (!credits.spend()) {
                counters.refused++
                return Metric.increment(Metric.tagged(hedgesRefused, "model", model))
              }
              counters.hedges++
              return Effect.zipRight(
                Effect.zipRight(Metric.increment(Metric.tagged(hedgesStarted, "model", model)), launch(k)),
                next(k + 1)
              )
            })
          })
        )
      return next(1)
    }

    /** An attempt ended: a success decides the race, a failure decides it once nothing else runs. */
    const settle = <A>(race: Race<A>, index: number, exit: Exit.Exit<A, LlmError>): Effect.Effect<void> =>
      Effect.suspend(() => {
        if (Exit.isSuccess(exit)) return Effect.asVoid(Deferred.succeed(race.done, [exit.value, index] as const))
        if (Exit.isInterrupted(exit)) return Effect.void
        race.running--
        const failure = Cause.failureOption(exit.cause)
        if (Option.isSome(failure)) race.firstError ??= failure.value
        if (race.running > 0) return Effect.void
        return Effect.asVoid(Deferred.failCause(race.done, race.firstError === undefined ? exit.cause : Cause.fail(race.firstError)))
      })

    const loserUsage = (provider: string, model: string, request: ChatRequest) => {
      const input = deps.estimate(request)
      return deps.record(provider, model, { inputTokens: input, outputTokens: 0, totalTokens: input, estimated: true })
    }

    const decorator = (inner: Model): Effect.Effect<Model> =>
      Effect.sync(() => {
        const chat = (request: ChatRequest): Effect.Effect<ChatResponse, LlmError> =>
          Effect.suspend(() => {
            const model = request.model ?? inner.model
            const window = windowOf(model)
            const delay = begin(window)
            if (delay === undefined) {
              // warming up: measured, not hedged
              return window === undefined ? inner.chat(request) : Effect.clockWith((clock) => {
                const start = clock.unsafeCurrentTimeMillis()
                return Effect.tap(inner.chat(request), () => Effect.sync(() => window.add(clock.unsafeCurrentTimeMillis() - start)))
              })
            }
            // the common case, an answer before the delay, costs no scope, Deferred or span: under the
            // live clock one fiber and a plain timer, else one race of the attempt and the clock's sleep
            return Effect.clockWith((clock) => {
              const start = clock.unsafeCurrentTimeMillis()
              if (clock === liveClock && delay <= maxTimerMillis) return timedChat(request, model, window, delay, start, clock)
              return Effect.raceWith(inner.chat(request), Effect.sleep(Duration.millis(delay)), {
                onSelfDone: (exit, timer) =>
                  Effect.zipRight(
                    Effect.zipRight(Fiber.interrupt(timer), measured(window, 0, exit, start, clock.unsafeCurrentTimeMillis())),
                    Exit.isSuccess(exit) ? Effect.as(won(0), exit.value) : exit
                  ),
                onOtherDone: (_, first) => hedgedChat(request, model, window, delay, start, first)
              })
            })
          })

        /**
         * The first attempt on a fiber of its own, started at once and run as far as it goes now,
         * and the delay a plain timer: an answer in time clears the timer (an answer at once sets
         * none); the timer, when it fires first, hands the running attempt to `hedgedChat`.
         */
        const timedChat = (
          request: ChatRequest,
          model: string,
          window: Window | undefined,
          delay: number,
          start: number,
          clock: Clock.Clock
        ): Effect.Effect<ChatResponse, LlmError> =>
          Effect.flatMap(Effect.runtime<never>(), (runtime) => {
            const answered = (exit: Exit.Exit<ChatResponse, LlmError>): Effect.Effect<ChatResponse, LlmError> => {
              if (window !== undefined && (Exit.isSuccess(exit) || Exit.isInterrupted(exit))) window.add(clock.unsafeCurrentTimeMillis() - start)
              return Exit.isSuccess(exit) ? Effect.as(won(0), exit.value) : exit
            }
            // the attempt is held by this cell, emptied once the call is decided: with the fiber in
            // the canceler's closure V8 promoted half as much heap again per call (bench/idle-profile.ts)
            const cell: { first: Fiber.RuntimeFiber<ChatResponse, LlmError> | undefined; timer: ReturnType<typeof setTimeout> | undefined } = {
              first: Runtime.runFork(runtime)(inner.chat(request)),
              timer: undefined
            }
            const now = cell.first!.unsafePoll()
            if (now !== null) {
              cell.first = undefined
              return answered(now)
            }
            return Effect.async<ChatResponse, LlmError>((resume) => {
              const onExit = (exit: Exit.Exit<ChatResponse, LlmError>) => {
                clearTimeout(cell.timer)
                cell.first = undefined
                resume(answered(exit))
              }
              cell.timer = setTimeout(() => {
                const first = cell.first
                if (first === undefined) return
                cell.first = undefined
                first.removeObserver(onExit)
                // the attempt is the race's from here; until the race holds it, an interruption stops it here
                resume(Effect.onInterrupt(hedgedChat(request, model, window, delay, start, first), () => Fiber.interrupt(first)))
              }, delay)
              cell.first!.addObserver(onExit)
              // the caller was interrupted
              return Effect.suspend(() => {
                const first = cell.first
                if (first === undefined) return Effect.void
                cell.first = undefined
                clearTimeout(cell.timer)
                first.removeObserver(onExit)
                return Fiber.interrupt(first)
              })
            })
          })

        /** The race once the delay is over, the first attempt (`first`) still running. */
        const hedgedChat = (
          request: ChatRequest,
          model: string,
          window: Window | undefined,
          delay: number,
          start: number,
          first: Fiber.Fiber<ChatResponse, LlmError>
        ) =>
          Effect.scoped(Effect.gen(function* () {
            const clock = yield* Effect.clock
            const race: Race<ChatResponse> = { done: yield* Deferred.make<readonly [ChatResponse, number], LlmError>(), running: 0, firstError: undefined }
            const launch = (index: number) =>
              Effect.suspend(() => {
                race.running++
                const call = index === 0
                  // the first attempt runs on; ending this race (or the caller) interrupts it
                  ? Effect.onInterrupt(Fiber.join(first), () => Fiber.interrupt(first))
                  : Effect.withSpan(inner.chat(request), "Hedge.attempt", { attributes: { "hedge.attempt": index }, captureStackTrace: false })
                return Effect.asVoid(Effect.forkScoped(Effect.onExit(call, (exit) =>
                  Effect.zipRight(
                    measured(window, index, exit, start, clock.unsafeCurrentTimeMillis()),
                    Exit.isInterrupted(exit)
                      ? Effect.flatMap(Deferred.isDone(race.done), (decided) => decided ? loserUsage(inner.provider, model, request) : Effect.void)
                      : settle(race, index, exit)
                  ))))
              })
            yield* launch(0)
            yield* Effect.forkScoped(launcher(delay, race as Race<unknown>, launch, model, true))
            const [response, index] = yield* Deferred.await(race.done)
            yield* won(index)
            return response
          })).pipe(Effect.withSpan("Hedge.chat", { attributes: { "hedge.delay_ms": delay }, captureStackTrace: false }))

        /** The first attempt's latency to the window: its own on a success, a lower bound when it lost. */
        const measured = (window: Window | undefined, index: number, exit: Exit.Exit<unknown, unknown>, start: number, now: number) =>
          Effect.sync(() => {
            if (window === undefined || index !== 0) return
            if (Exit.isSuccess(exit) || Exit.isInterrupted(exit)) window.add(now - start)
          })

        const stream = (request: ChatRequest, tracker?: Tracker): Stream.Stream<StreamEvent, LlmError> =>
          Stream.suspend(() => {
            const model = request.model ?? inner.model
            const window = windowOf(model)
            const delay = begin(window)
            if (delay === undefined) {
              const run = attempt(inner, request, tracker)
              return window === undefined ? run.stream : timedToFirst(run.stream, window)
            }
            return Streams.withSpan(hedgedStream(request, model, window, delay, tracker), "Hedge.stream", {
              attributes: { "hedge.delay_ms": delay }
            })
          })

        /** A stream whose time to its first event goes to the window. */
        const timedToFirst = (events: Stream.Stream<StreamEvent, LlmError>, window: Window) =>
          Streams.unwrap(Effect.clockWith((clock) =>
            Effect.sync(() => {
              const start = clock.unsafeCurrentTimeMillis()
              let first = true
              return Stream.mapChunks(events, (chunk) => {
                if (first && Chunk.isNonEmpty(chunk)) {
                  first = false
                  window.add(clock.unsafeCurrentTimeMillis() - start)
                }
                return chunk
              })
            })
          ))

        interface Started {
          readonly first: Chunk.Chunk<StreamEvent>
          readonly ended: boolean
          readonly pull: Effect.Effect<Chunk.Chunk<StreamEvent>, Option.Option<LlmError>>
          readonly delivered: Parameters<Tracker["watch"]>[0]
        }

        const hedgedStream = (
          request: ChatRequest,
          model: string,
          window: Window | undefined,
          delay: number,
          tracker: Tracker | undefined
        ): Stream.Stream<StreamEvent, LlmError> =>
          // the scope is the stream's: closing it (the stream ended, or its consumer stopped or
          // was interrupted) interrupts every attempt still running and closes every attempt's scope
          Stream.fromChannel(Channel.unwrapScoped(Effect.gen(function* () {
            const outer = yield* Effect.scope
            const clock = yield* Effect.clock
            const start = clock.unsafeCurrentTimeMillis()
            const race: Race<Started> = { done: yield* Deferred.make<readonly [Started, number], LlmError>(), running: 0, firstError: undefined }
            interface Running {
              readonly fiber: Fiber.Fiber<unknown, unknown>
              readonly scope: Scope.CloseableScope
              /** It failed (not paid for), or its reply reached its Finish (recorded by the provider). */
              settled: boolean
            }
            const attempts: Array<Running> = []
            // an attempt's first events: the first chunk that holds any, or the end
            const firstOf = (pull: Started["pull"]): Effect.Effect<readonly [Chunk.Chunk<StreamEvent>, boolean], LlmError> =>
              Effect.matchEffect(pull, {
                onFailure: Option.match({ onNone: () => Effect.succeed([Chunk.empty<StreamEvent>(), true] as const), onSome: Effect.fail }),
                onSuccess: (chunk) => (Chunk.isNonEmpty(chunk) ? Effect.succeed([chunk, false] as const) : firstOf(pull))
              })
            const launch = (index: number): Effect.Effect<void> =>
              Effect.gen(function* () {
                race.running++
                const scope = yield* Scope.fork(outer, ExecutionStrategy.sequential)
                // each attempt counts what it delivers on its own: only the winner's count reaches the caller's tracker
                const run = attempt(inner, request, undefined)
                const started = Effect.flatMap(Scope.extend(Stream.toPull(run.stream), scope), (pull) =>
                  Effect.map(firstOf(pull), ([first, ended]): Started => ({ first, ended, pull, delivered: run.delivered })))
                const spanned = index === 0
                  ? started
                  : Effect.withSpan(started, "Hedge.attempt", { attributes: { "hedge.attempt": index }, captureStackTrace: false })
                const running: { settled: boolean } = { settled: false }
                const fiber = yield* Effect.forkIn(
                  Effect.onExit(spanned, (exit) =>
                    Effect.zipRight(
                      Effect.zipRight(
                        measured(window, index, exit, start, clock.unsafeCurrentTimeMillis()),
                        Effect.sync(() => {
                          if (Exit.isFailure(exit)) running.settled = !Exit.isInterrupted(exit)
                          else running.settled = Chunk.some(exit.value.first, (event) => event._tag === "Finish")
                        })
                      ),
                      Exit.isInterrupted(exit) ? Effect.void : settle(race, index, exit)
                    )),
                  outer
                )
                attempts[index] = Object.assign(running, { fiber, scope })
              })
            yield* launch(0)
            const hedger = yield* Effect.forkIn(launcher(delay, race as Race<unknown>, launch, model), outer)
            const [winner, index] = yield* Deferred.await(race.done)
            yield* Fiber.interrupt(hedger)
            // the losers stop before the winner's first event goes out: their leases are released
            // and their connections closed, and none of their events is ever written
            yield* Effect.forEach(attempts, (other, i) => {
              if (other === undefined || i === index) return Effect.void
              return Effect.zipRight(
                Fiber.interrupt(other.fiber),
                Effect.zipRight(
                  Scope.close(other.scope, Exit.void),
                  // a loser was sent and is paid for, unless it failed or the provider recorded it
                  Effect.suspend(() => (other.settled ? Effect.void : loserUsage(inner.provider, model, request)))
                )
              )
            }, { discard: true })
            yield* won(index)
            tracker?.watch(winner.delivered)
            const rest = winner.ended ? Stream.empty : Stream.repeatEffectChunkOption(winner.pull)
            return Stream.toChannel(Stream.concat(Stream.fromChunk(winner.first), rest))
          })))

        return {
          provider: inner.provider,
          model: inner.model,
          contextWindow: inner.contextWindow,
          chat,
          // the winner's stream reports to the caller's tracker whatever the model below does
          stream: reporting(stream, true)
        } satisfies Model
      })

    const stats = Effect.sync((): Stats => {
      const delays: Record<string, number | undefined> = {}
      for (const [model, window] of windows) delays[model] = window.delay()
      if (resolved.fixed !== undefined && windows.size === 0) delays["*"] = resolved.fixed
      return { requests: counters.requests, hedges: counters.hedges, refused: counters.refused, wins: [...counters.wins], delays }
    })

    return { decorator, stats }
  })

