/**
 * Fallback over a list of models. Steps are tried in order, each with its own attempts and
 * schedule; `chat` and `stream` walk them by one policy (`Schedule`s stepped by the errors,
 * as Effect's `ExecutionPlan` steps them).
 *
 * - An error moves to the next step when `when(error)` holds (by default: anything but
 *   invalid requests, content filters, budgets and partial streams). The move is
 *   immediate; a step's schedule only spaces retries within that step.
 * - `ContextLengthError` moves only to a step with a larger known `contextWindow`.
 * - A step whose breaker is open, or (with `skipDisconnected`) that `Health` reports
 *   disconnected, fails at once with `CircuitOpenError` and is skipped.
 * - A stream falls back, and retries, only before its first event. After that a failure
 *   ends it with `StreamError { partial: true, partialText }`: never silently, never with
 *   a repeated prefix.
 * - When every step fails, the error is `AllModelsFailedError`, listing each attempt.
 *
 * @since 0.1.0
 */
import type { NonEmptyReadonlyArray } from "effect/Array"
import * as Channel from "effect/Channel"
import type * as Chunk from "effect/Chunk"
import * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import type * as ExecutionPlan from "effect/ExecutionPlan"
import * as Layer from "effect/Layer"
import * as Either from "effect/Either"
import * as Metric from "effect/Metric"
import * as Random from "effect/Random"
import * as Schedule from "effect/Schedule"
import * as ScheduleDecision from "effect/ScheduleDecision"
import * as ScheduleInterval from "effect/ScheduleInterval"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as CircuitBreaker from "./CircuitBreaker.js"
import * as Health from "./Health.js"
import { guardPartial, isPartial, reporting, reportsOf } from "./internal/request/delivered.js"
import * as latencyScore from "./internal/latencyScore.js"
import * as Streams from "./internal/streams.js"
import { LanguageModel, type Service as Model, type Tracker } from "./LanguageModel.js"
import * as Err from "./LlmError.js"
import type { ChatRequest, ChatResponse, StreamEvent } from "./Message.js"

/** @since 0.1.0 @category models */
export interface Step<E = never, R = never> {
  /** The model of this step, built once when the fallback layer builds. */
  readonly model: Layer.Layer<LanguageModel, E, R>
  /** Attempts on this step before moving on. Default 1, or unbounded when `schedule` is set (the schedule decides). */
  readonly attempts?: number | undefined
  /** Spaces retries within this step, e.g. `Retry.schedule()`. */
  readonly schedule?: Schedule.Schedule<unknown, Err.LlmError> | undefined
  /** The endpoint's name in breaker status, health and errors. Default `provider/model`. */
  readonly name?: string | undefined
  /** Puts this step behind its own circuit breaker. */
  readonly breaker?: CircuitBreaker.Options | undefined
  /** The health probe for this step (with `skipDisconnected`); default `Health.probeChat`. */
  readonly probe?: Effect.Effect<unknown, unknown> | undefined
  /**
   * This step serves as well as the one before it (another deployment, base URL or model you
   * hold interchangeable): with the `latency` option, each call tries the steps of such a run
   * in the order their latency scores give, then the steps after it. Without it, no effect.
   */
  readonly equivalent?: boolean | undefined
}

/** @since 0.1.0 @category models */
export interface Options {
  /** Which errors move on to the next step. Default `defaultWhen`. */
  readonly when?: ((error: Err.LlmError) => boolean) | undefined
  /**
   * Skip steps that `Health` reports disconnected. The layer then requires `Health` (its
   * type says so); each step is registered with it, probed by its `probe`.
   */
  readonly skipDisconnected?: boolean | undefined
  /**
   * Choose among equivalent steps by latency (opt-in; without it, steps go in their order).
   * This process keeps, per step, a weighted latency (a reply's time; a stream's time to its
   * first event) and error rate; each call starts a run of equivalent steps with the cheaper of
   * two drawn at random (latency, raised by errors, times calls in flight plus one) and goes on
   * through the others by cost; a small share starts with the step heard from least recently,
   * so that a recovered one is noticed. `true` takes the defaults of `LatencyOptions`.
   */
  readonly latency?: true | LatencyOptions | undefined
}

/**
 * The latency-aware choice's settings: `smoothing` (default 0.3), `exploration` (default
 * 0.05), `errorPenalty` (default 4), `tolerance` (default 0.25); see `KeyPool.LatencyOptions`.
 * @since 0.1.0 @category models
 */
export type LatencyOptions = latencyScore.Options

/**
 * The default `when`: fall back on everything that another model might serve.
 * @since 0.1.0 @category utils
 */
export const defaultWhen = (error: Err.LlmError): boolean => {
  switch (Err.classify(error).fallback) {
    case "always":
      return true
    case "never":
      return false
    case "ifRetryable":
      return error.retryable
    case "ifNotPartial":
      return !isPartial(error)
  }
}

/** One built step; what the plan provides for each of its steps. */
interface Built {
  readonly index: number
  readonly name: string
  readonly model: Model
  readonly health: Health.Service | undefined
}

/** What one call remembers across its steps. */
interface CallState {
  readonly attempts: Array<Err.Attempt>
  /** The step that produced the last error; -1 before any. */
  lastStep: number
  /** The largest context window that failed with `ContextLengthError`. */
  largestTooSmall: number
  /** The steps' indices in the order this call tries them; positions below are into it. */
  readonly order: ReadonlyArray<number>
}

/**
 * The latency-aware choice among equivalent steps: the runs of steps marked `equivalent`
 * (each with the step before it), one score per step (this process's), and the samples.
 */
const makeChooser = (resolved: latencyScore.Resolved, steps: ReadonlyArray<Step<any, any>>) => {
  const scores = new latencyScore.Scores(resolved)
  const runs: Array<Array<number>> = []
  steps.forEach((step, index) => {
    if (index > 0 && step.equivalent === true) runs[runs.length - 1]!.push(index)
    else runs.push([index])
  })
  const draws = Effect.map(Effect.all([Random.next, Random.next, Random.next]), ([explore, first, second]) => ({ explore, first, second }))
  const order: Effect.Effect<ReadonlyArray<number>> = Effect.suspend(() => {
    const out: Array<number> = []
    const next = (i: number): Effect.Effect<ReadonlyArray<number>> => {
      if (i >= runs.length) return Effect.succeed(out)
      const run = runs[i]!
      if (run.length === 1) {
        out.push(run[0]!)
        return next(i + 1)
      }
      return Effect.flatMap(draws, (d) => {
        for (const id of scores.order(run.map(String), d)) out.push(Number(id))
        return next(i + 1)
      })
    }
    return next(0)
  })
  const timed = <A>(index: number, call: Effect.Effect<A, Err.LlmError>): Effect.Effect<A, Err.LlmError> =>
    Effect.clockWith((clock) => {
      const id = String(index)
      const start = clock.unsafeCurrentTimeMillis()
      scores.started(id)
      let sampled = false
      return Effect.onExit(
        Effect.tapBoth(call, {
          onSuccess: () => Effect.sync(() => ((sampled = true), scores.latency(id, clock.unsafeCurrentTimeMillis() - start))),
          onFailure: () => Effect.sync(() => ((sampled = true), scores.failure(id)))
        }),
        () =>
          Effect.sync(() => {
            scores.ended(id)
            if (!sampled) scores.censored(id, clock.unsafeCurrentTimeMillis() - start)
          })
      )
    })
  const timedStream = (index: number, stream: Stream.Stream<StreamEvent, Err.LlmError>): Stream.Stream<StreamEvent, Err.LlmError> =>
    Stream.fromChannel(Channel.unwrap(Effect.clockWith((clock) =>
      Effect.sync(() => {
        const id = String(index)
        const start = clock.unsafeCurrentTimeMillis()
        let sampled = false
        scores.started(id)
        // one stage, only for a chain that chooses by latency: its time to first event and how it ended
        const source = Stream.mapChunks(stream, (chunk) => {
          if (!sampled && chunk.length > 0) {
            sampled = true
            scores.latency(id, clock.unsafeCurrentTimeMillis() - start)
          }
          return chunk
        })
        return Channel.ensuringWith(
          Channel.catchAll(Stream.toChannel(source), (error) => {
            if (!sampled) {
              sampled = true
              scores.failure(id)
            }
            return Channel.fail(error)
          }),
          () =>
            Effect.sync(() => {
              scores.ended(id)
              if (!sampled) scores.censored(id, clock.unsafeCurrentTimeMillis() - start)
            })
        )
      })
    )))
  return { order, timed, timedStream }
}

const fallbacks = Metric.counter("effect_llm_fallbacks_total", { description: "Moves from one Fallback step to the next" })

type StepsError<Steps extends ReadonlyArray<Step<any, any>>> = Layer.Layer.Error<Steps[number]["model"]>
type StepsContext<Steps extends ReadonlyArray<Step<any, any>>> = Layer.Layer.Context<Steps[number]["model"]>

/**
 * What options add to the layer's requirements: `Health` when `skipDisconnected` may be true.
 * @since 0.1.0 @category models
 */
export type OptionsContext<O extends Options> = O extends { readonly skipDisconnected: infer S } ? (true extends S ? Health.Health : never)
  : never

/**
 * A decorator over its steps: `Fallback.layer([{ model: primary, attempts: 3, schedule:
 * Retry.schedule() }, { model: secondary }])`. A step's `attempts` that is not a whole number
 * of at least 1 fails the layer with a `ConfigError` naming it.
 * @since 0.1.0 @category layers
 */
export const layer = <const Steps extends NonEmptyReadonlyArray<Step<any, any>>, const O extends Options = {}>(
  steps: Steps,
  options?: O
): Layer.Layer<LanguageModel, StepsError<Steps> | ConfigError.ConfigError, StepsContext<Steps> | OptionsContext<O>> =>
  Layer.scoped(LanguageModel, make(steps, options))

/**
 * The fallback of an Effect `ExecutionPlan` over model layers: each plan step is a `Step`
 * (its `provide` the model, its `attempts` and `schedule` as given, its `while` deciding which
 * errors that step retries), walked by the same policy as `layer`'s.
 *
 * ```ts
 * const plan = ExecutionPlan.make(
 *   { provide: primary, attempts: 3, schedule: Retry.schedule() },
 *   { provide: secondary }
 * )
 * const Stack = Fallback.fromPlan(plan)
 * ```
 * @since 0.1.0 @category layers
 */
export const fromPlan = <
  Types extends { provides: LanguageModel; input: Err.LlmError; error: any; requirements: any },
  const O extends Options = {}
>(
  plan: ExecutionPlan.ExecutionPlan<Types>,
  options?: O
): Layer.Layer<LanguageModel, Types["error"] | ConfigError.ConfigError, Types["requirements"] | OptionsContext<O>> =>
  Layer.unwrapEffect(
    Effect.map(Effect.context<Types["requirements"]>(), (context) => {
      const steps = plan.steps.map((step): Step<Types["error"], Types["requirements"]> => {
        const model = Layer.isLayer(step.provide)
          ? (step.provide as Layer.Layer<LanguageModel, Types["error"], Types["requirements"]>)
          : Layer.succeedContext(step.provide as Context.Context<LanguageModel>)
        const guard = step.while
        const base: Schedule.Schedule<unknown, Err.LlmError, Types["requirements"]> | undefined = step.schedule === undefined
          ? guard === undefined ? undefined : Schedule.forever
          : step.schedule
        // a plan step's schedule and `while` may need the plan's requirements: the layer's context
        const schedule = base === undefined ? undefined : Schedule.provideContext(
          guard === undefined ? base : Schedule.whileInputEffect(base, (error: Err.LlmError) => {
            const decided = guard(error) as boolean | Effect.Effect<boolean, unknown, Types["requirements"]>
            return typeof decided === "boolean" ? Effect.succeed(decided) : Effect.orElseSucceed(decided, () => false)
          }),
          context
        )
        return { model, attempts: step.attempts, schedule }
      }) as unknown as NonEmptyReadonlyArray<Step<Types["error"], Types["requirements"]>>
      return layer(steps, options)
    })
  ) as Layer.Layer<LanguageModel, Types["error"] | ConfigError.ConfigError, Types["requirements"] | OptionsContext<O>>

/**
 * Builds every step once (sharing memoized layers with the rest of the stack) and returns
 * the fallback model.
 * @since 0.1.0 @category constructors
 */
export const make = <const Steps extends NonEmptyReadonlyArray<Step<any, any>>, const O extends Options = {}>(
  steps: Steps,
  options?: O
): Effect.Effect<Model, StepsError<Steps> | ConfigError.ConfigError, StepsContext<Steps> | OptionsContext<O> | Scope.Scope> =>
  Effect.gen(function* () {
    const when = options?.when ?? defaultWhen
    const memoMap = yield* Layer.CurrentMemoMap
    const scope = yield* Effect.scope
    // required by the type whenever skipDisconnected may be true
    const health = options?.skipDisconnected === true ? yield* (Health.Health as unknown as Effect.Effect<Health.Service>) : undefined
    const built: Array<Built> = []
    for (const [index, step] of steps.entries()) {
      if (step.attempts !== undefined && !(Number.isInteger(step.attempts) && step.attempts >= 1)) {
        return yield* Effect.fail(
          ConfigError.InvalidData([String(index), "attempts"], `Fallback.layer: step ${index} attempts must be a whole number ≥ 1, got ${step.attempts}`)
        )
      }
      const context = yield* Layer.buildWithMemoMap(step.model as Layer.Layer<LanguageModel, StepsError<Steps>, never>, memoMap, scope)
      const raw = Context.get(context, LanguageModel)
      const name = step.name ?? `${raw.provider}/${raw.model}`
      let model = raw
      if (step.breaker !== undefined) {
        const breaker = yield* CircuitBreaker.make({ endpoint: name, ...step.breaker, provider: raw.provider, model: raw.model })
        yield* CircuitBreaker.register(breaker)
        model = yield* breaker.decorator(raw)
      }
      if (health !== undefined) yield* health.register({ name, probe: step.probe ?? Health.probeChat(raw) })
      built.push({ index, name, model, health })
    }
    const chooser = options?.latency === undefined ? undefined : yield* Either.match(
      latencyScore.resolve(options.latency, "Fallback.layer", ["latency"]),
      { onLeft: Effect.fail, onRight: (resolved) => Effect.succeed(makeChooser(resolved, steps)) }
    )
    const primary = built[0]!.model
    const windows = built.map((b) => b.model.contextWindow).filter((w): w is number => w !== undefined)

    /** Fails fast, as `CircuitOpenError`, when Health says the step is down. */
    const skipIfDown = (step: Built): Effect.Effect<void, Err.LlmError> =>
      step.health === undefined ? Effect.void : Effect.flatMap(step.health.get(step.name), (status) =>
        status?.status === "disconnected"
          ? Effect.fail(
            new Err.CircuitOpenError({
              provider: step.model.provider,
              model: step.model.model,
              message: `skipped ${step.name}: Health reports it disconnected (${status.lastError ?? "no detail"})`
            })
          )
          : Effect.void)

    const record = (state: CallState, position: number, step: Built, error: Err.LlmError) =>
      Effect.sync(() => {
        state.lastStep = position
        state.attempts.push({ provider: step.model.provider, model: step.model.model, error })
        if (error._tag === "ContextLengthError") {
          state.largestTooSmall = Math.max(state.largestTooSmall, step.model.contextWindow ?? 0)
        }
      })

    /** `request.model` names the primary's model; the other steps use their own. */
    const requestFor = (step: Built, request: ChatRequest): ChatRequest => {
      if (step.index === 0 || request.model === undefined) return request
      const { model: _, ...rest } = request
      return rest
    }

    /**
     * The schedule of step `j`. It is stepped with the previous step's error when the call
     * reaches `j` (we answer at once: enter, or skip), then with `j`'s own errors (retries).
     */
    const scheduleFor = (j: number, state: CallState): Schedule.Schedule<unknown, Err.LlmError> => {
      const index = state.order[j]!
      const inner = steps[index]!.schedule
      const maxAttempts = steps[index]!.attempts ?? (inner === undefined ? 1 : Infinity)
      return Schedule.makeWithState(
        { inner: inner?.initial as unknown, attempts: 1 },
        (now, error: Err.LlmError, s) => {
          if (state.lastStep < j) {
            const enter = !isPartial(error) && when(error) &&
              (error._tag !== "ContextLengthError" || (built[index]!.model.contextWindow ?? 0) > state.largestTooSmall)
            return enter
              ? Effect.as(Metric.increment(fallbacks), [s, undefined, ScheduleDecision.continueWith(ScheduleInterval.after(now))] as const)
              : Effect.succeed([s, undefined, ScheduleDecision.done] as const)
          }
          const retry = s.attempts < maxAttempts && error.retryable && !isPartial(error) && error._tag !== "CircuitOpenError"
          if (!retry) return Effect.succeed([s, undefined, ScheduleDecision.done] as const)
          if (inner === undefined) {
            return Effect.succeed([{ ...s, attempts: s.attempts + 1 }, undefined, ScheduleDecision.continueWith(ScheduleInterval.after(now))] as const)
          }
          return Effect.map(inner.step(now, error, s.inner), ([next, out, decision]) => [{ inner: next, attempts: s.attempts + 1 }, out, decision] as const)
        }
      )
    }

    /**
     * The policy, one per call, that `chat` and `stream` both walk: after step `from` failed
     * with `error` (recorded), the step to try next, once its schedule's delay has passed
     * (`from` again, a retry, or a later step that takes the error), or `undefined`: the call
     * ends with `finalError`. Each step's schedule driver is made on its first decision only.
     */
    const policy = (state: CallState) => {
      const drivers: Array<Schedule.ScheduleDriver<unknown, Err.LlmError> | undefined> = []
      const next = (j: number, error: Err.LlmError) =>
        Effect.flatMap(
          drivers[j] === undefined
            ? Effect.tap(Schedule.driver(scheduleFor(j, state)), (made) => void (drivers[j] = made))
            : Effect.succeed(drivers[j]!),
          (driver) => driver.next(error)
        )
      const decide = (j: number, error: Err.LlmError): Effect.Effect<number | undefined> =>
        j >= built.length
          ? Effect.succeed(undefined)
          : Effect.matchEffect(next(j, error), { onSuccess: () => Effect.succeed(j), onFailure: () => decide(j + 1, error) })
      return (from: number, error: Err.LlmError): Effect.Effect<number | undefined> =>
        Effect.zipRight(record(state, from, built[state.order[from]!]!, error), decide(from, error))
    }

    /** The error a call ends with once the policy gave up. */
    const finalError = (state: CallState, error: Err.LlmError): Err.LlmError => {
      if (isPartial(error) || !when(error) || state.attempts.length === 0) return error
      const summary = state.attempts.map((a) => `${a.provider}/${a.model}: ${a.error._tag}`).join("; ")
      return new Err.AllModelsFailedError({
        provider: primary.provider,
        model: primary.model,
        message: `all ${built.length} models failed (${state.attempts.length} attempts): ${summary}`,
        attempts: state.attempts
      })
    }

    const identity = built.map((b) => b.index)
    const newState = (order: ReadonlyArray<number>): CallState => ({ attempts: [], lastStep: -1, largestTooSmall: -1, order })
    /** The order of the steps for one call: as given, or with each run of equivalent steps ordered by latency. */
    const orderOf: Effect.Effect<ReadonlyArray<number>> = chooser === undefined ? Effect.succeed(identity) : chooser.order

    // without the latency option, no effect per call for the order: the steps' own
    const withOrder = <A, E>(body: (order: ReadonlyArray<number>) => Effect.Effect<A, E>): Effect.Effect<A, E> =>
      chooser === undefined ? Effect.suspend(() => body(identity)) : Effect.flatMap(orderOf, body)

    const chat = (request: ChatRequest) =>
      withOrder((order) => {
        const state = newState(order)
        const after = policy(state)
        const run = (j: number): Effect.Effect<ChatResponse, Err.LlmError> => {
          const step = built[order[j]!]!
          const call = step.model.chat(requestFor(step, request))
          return skipIfDown(step).pipe(
            Effect.zipRight(chooser === undefined ? call : chooser.timed(step.index, call)),
            Effect.catchAll((error) =>
              Effect.flatMap(after(j, error), (k) => (k === undefined ? Effect.fail(finalError(state, error)) : run(k))))
          )
        }
        return run(0)
      }).pipe(Effect.withSpan("Fallback.chat", { attributes: { "fallback.steps": built.length } }))

    /**
     * The same walk as `chat`, in one channel: `Stream.withExecutionPlan` would run every step
     * through `Stream.retry`, which resets its schedule and re-provides a context on every chunk
     * (~25 KB per read of a provider's body). Each step's stream is guarded, so that a failure
     * after its first event is a partial error, which no step's schedule takes.
     */
    const stream = (request: ChatRequest, tracker?: Tracker): Stream.Stream<StreamEvent, Err.LlmError> =>
      Stream.fromChannel(Channel.unwrap(withOrder((order) => Effect.sync(() => {
        const state = newState(order)
        const after = policy(state)
        type Events = Channel.Channel<Chunk.Chunk<StreamEvent>, unknown, Err.LlmError, unknown, unknown, unknown>
        const run = (j: number): Events => {
          const step = built[order[j]!]!
          // the model's own stream is guarded, so a provider's can say what it delivered
          const guarded = guardPartial(step.model, requestFor(step, request), tracker)
          const source = Streams.unwrap(Effect.as(skipIfDown(step), chooser === undefined ? guarded : chooser.timedStream(step.index, guarded)))
          return Channel.catchAll(Stream.toChannel(source), (error) =>
            Channel.unwrap(Effect.map(after(j, error), (k) => (k === undefined ? Channel.fail(finalError(state, error)) : run(k)))))
        }
        return run(0)
      })))).pipe((stream) => Streams.withSpan(stream, "Fallback.stream", { attributes: { "fallback.steps": built.length } }))

    return {
      provider: primary.provider,
      model: primary.model,
      // the stack serves the largest window it has: context-length errors fall back to it
      contextWindow: windows.length === 0 ? undefined : Math.max(...windows),
      chat,
      // its stream passes a step's events through: it reports when every step's does
      stream: reporting(stream, built.every((step) => reportsOf(step.model)))
    } satisfies Model
  }) as Effect.Effect<Model, StepsError<Steps> | ConfigError.ConfigError, StepsContext<Steps> | OptionsContext<O> | Scope.Scope>

/** @since 0.1.0 @category utils */
export const attemptsOf = (error: Err.LlmError): ReadonlyArray<Err.Attempt> =>
  error._tag === "AllModelsFailedError" ? error.attempts : []
