/**
 * Retries as a `Schedule` over `LlmError`, and a decorator that applies one to a model.
 *
 * The schedule retries only errors marked `retryable` (network, timeouts, 408, 409, 429,
 * 5xx, 529, or whatever `x-should-retry` said), backs off exponentially with jitter up to
 * `maxDelay`, and never retries earlier than a `retryAfter` the provider asked for. A
 * `retryAfter` longer than `maxRetryAfter` fails at once with the original error: waiting
 * a minute inside a request is worse than letting the caller (or `Fallback`) decide.
 *
 * @since 0.1.0
 */
import * as Channel from "effect/Channel"
import type * as Chunk from "effect/Chunk"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Random from "effect/Random"
import * as Schedule from "effect/Schedule"
import * as ScheduleDecision from "effect/ScheduleDecision"
import * as ScheduleInterval from "effect/ScheduleInterval"
import * as Stream from "effect/Stream"
import { attempt, isPartial, retryAfterMillis, toPartial } from "./internal/request/delivered.js"
import * as LanguageModel from "./LanguageModel.js"
import type { LlmError } from "./LlmError.js"
import type { ChatRequest, StreamEvent } from "./Message.js"

/** @since 0.1.0 @category models */
export interface ScheduleOptions {
  /** Retries after the first attempt. Default 3. */
  readonly maxRetries?: number | undefined
  /** The first backoff. Default 500 millis. */
  readonly initialDelay?: Duration.DurationInput | undefined
  /** Growth per retry. Default 2. */
  readonly factor?: number | undefined
  /** The cap on one backoff (not on a provider's `retryAfter`). Default 30 seconds. */
  readonly maxDelay?: Duration.DurationInput | undefined
  /**
   * Jitter: each backoff is drawn uniformly from `[delay × (1 − jitter), delay]`. Default
   * 0.5 ("equal jitter"), so that callers rate-limited together do not retry together.
   * `false` or 0 turns it off.
   */
  readonly jitter?: number | boolean | undefined
  /** The longest `retryAfter` worth waiting for. Default 60 seconds. */
  readonly maxRetryAfter?: Duration.DurationInput | undefined
  /** An extra condition; an error is retried only when it holds too. */
  readonly while?: ((error: LlmError) => boolean) | undefined
}

/** @since 0.1.0 @category models */
export interface ResolvedOptions {
  readonly maxRetries: number
  readonly initialDelayMillis: number
  readonly factor: number
  readonly maxDelayMillis: number
  readonly jitter: number
  readonly maxRetryAfterMillis: number
}

/** @since 0.1.0 @category constructors */
export const resolveOptions = (options: ScheduleOptions = {}): ResolvedOptions => {
  const jitter = options.jitter === undefined || options.jitter === true ? 0.5 : options.jitter === false ? 0 : options.jitter
  const resolved: ResolvedOptions = {
    maxRetries: options.maxRetries ?? 3,
    initialDelayMillis: Duration.toMillis(options.initialDelay ?? "500 millis"),
    factor: options.factor ?? 2,
    maxDelayMillis: Duration.toMillis(options.maxDelay ?? "30 seconds"),
    jitter,
    maxRetryAfterMillis: Duration.toMillis(options.maxRetryAfter ?? "60 seconds")
  }
  if (!(resolved.maxRetries >= 0) || !Number.isInteger(resolved.maxRetries)) {
    throw new RangeError(`Retry.schedule: maxRetries must be a whole number ≥ 0, got ${options.maxRetries}`)
  }
  if (!(resolved.factor >= 1)) throw new RangeError(`Retry.schedule: factor must be ≥ 1, got ${options.factor}`)
  if (!(jitter >= 0 && jitter <= 1)) throw new RangeError(`Retry.schedule: jitter must be within [0, 1], got ${options.jitter}`)
  return resolved
}

/**
 * The backoff before retry number `retry` (1-based), before jitter.
 * @since 0.1.0 @category utils
 */
export const backoffMillis = (options: ResolvedOptions, retry: number): number =>
  Math.min(options.maxDelayMillis, options.initialDelayMillis * Math.pow(options.factor, retry - 1))

/**
 * Whether the schedule would retry this error at all (ignoring how many retries are left).
 * @since 0.1.0 @category utils
 */
export const isRetryable = (error: LlmError, options: ResolvedOptions = resolveOptions()): boolean => {
  if (!error.retryable || isPartial(error)) return false
  const retryAfter = retryAfterMillis(error)
  return retryAfter === undefined || retryAfter <= options.maxRetryAfterMillis
}

const retries = Metric.counter("effect_llm_retries_total", { description: "Retries scheduled by Retry.schedule" })

/**
 * A `Schedule` over `LlmError` whose output is the delay before the retry it schedules.
 * Delays use the `Clock`, so `TestClock` drives them in tests.
 * @since 0.1.0 @category constructors
 */
export const schedule = (options?: ScheduleOptions): Schedule.Schedule<Duration.Duration, LlmError> => {
  const resolved = resolveOptions(options)
  const extra = options?.while
  return Schedule.makeWithState(0, (now, error: LlmError, done: number) => {
    if (done >= resolved.maxRetries || !isRetryable(error, resolved) || (extra !== undefined && !extra(error))) {
      return Effect.succeed([done, Duration.zero, ScheduleDecision.done] as const)
    }
    const retry = done + 1
    const backoff = backoffMillis(resolved, retry)
    return Effect.map(Random.next, (random) => {
      const jittered = backoff * (1 - resolved.jitter * random)
      // never earlier than the provider asked, even when that exceeds maxDelay
      const delay = Math.max(jittered, retryAfterMillis(error) ?? 0)
      return [retry, Duration.millis(delay), ScheduleDecision.continueWith(ScheduleInterval.after(now + delay))] as const
    }).pipe(Effect.tap(() => Metric.increment(Metric.tagged(retries, "error", error._tag))))
  })
}

/**
 * Retries a stream only before its first event. A failure after that becomes a partial,
 * non-retryable `StreamError` carrying the text delivered, so no prefix is ever repeated.
 * @since 0.1.0 @category combinators
 */
export const retryStream = <A, R2>(
  stream: Stream.Stream<StreamEvent, LlmError>,
  policy: Schedule.Schedule<A, LlmError, R2>
): Stream.Stream<StreamEvent, LlmError, R2> => retrying({ stream: () => stream }, undefined, policy, undefined)

/**
 * No Stream.retry (it plus a counting stage cost ~3× as much per stream): a catchAll that asks
 * what the attempt delivered and re-runs it on a failure before the first event. A stream that
 * `reports` (a provider's, or a decorator's over one) says what it delivered; any other is
 * counted. The schedule's driver is made on the first failure only (most streams never fail).
 */
const retrying = <A, R2>(
  model: Pick<LanguageModel.Service, "stream">,
  request: ChatRequest | undefined,
  policy: Schedule.Schedule<A, LlmError, R2>,
  around: LanguageModel.Tracker | undefined
): Stream.Stream<StreamEvent, LlmError, R2> =>
  Stream.fromChannel(Channel.suspend(() => new Retrying(model, request, policy, around).once()))

type Events<R> = Channel.Channel<Chunk.Chunk<StreamEvent>, unknown, LlmError, unknown, unknown, unknown, R>

/** One retried stream: its attempt in progress and the schedule's driver. An object, not closures: every open stream holds one. */
class Retrying<A, R2> {
  private driver: Schedule.ScheduleDriver<A, LlmError, R2> | undefined = undefined
  private delivered: (() => { readonly events: number; readonly text: string }) | undefined = undefined

  constructor(
    private readonly model: Pick<LanguageModel.Service, "stream">,
    private readonly request: ChatRequest | undefined,
    private readonly policy: Schedule.Schedule<A, LlmError, R2>,
    private readonly around: LanguageModel.Tracker | undefined
  ) {}

  once(): Events<R2> {
    const run = attempt(this.model, this.request as ChatRequest, this.around)
    this.delivered = run.delivered
    return Channel.catchAll(Stream.toChannel(run.stream), (error) => this.failed(error))
  }

  private failed(error: LlmError): Events<R2> {
    const sent = this.delivered!()
    if (sent.events > 0) return Channel.fail(toPartial(error, sent.text))
    return isPartial(error)
      ? Channel.fail(error)
      : Channel.unwrap(Effect.match(this.next(error), { onFailure: () => Channel.fail(error), onSuccess: () => this.once() }))
  }

  private next(error: LlmError) {
    const driver = this.driver
    return driver === undefined
      ? Effect.flatMap(Schedule.driver(this.policy), (made) => {
        this.driver = made
        return made.next(error)
      })
      : driver.next(error)
  }
}

/**
 * `Effect.retry`, but the schedule's driver is made on the first failure only: most calls
 * never fail, and making it up front cost ~20 KB of allocation per call (measured with
 * bench/overhead.ts, ALLOC=1).
 */
const retryChat = <A, E>(effect: Effect.Effect<A, E>, policy: Schedule.Schedule<unknown, E>, provider: string): Effect.Effect<A, E> =>
  Effect.catchAll(effect, (first) =>
    Effect.flatMap(Schedule.driver(policy), (driver) => {
      const again = (error: E): Effect.Effect<A, E> =>
        Effect.matchEffect(driver.next(error), {
          onFailure: () => Effect.fail(error),
          onSuccess: () => Effect.catchAll(effect, again)
        })
      return again(first)
    }).pipe(Effect.withSpan("Retry.chat", { attributes: { "gen_ai.system": provider }, captureStackTrace: false })))

/**
 * The decorator: the model below, with `chat` retried by `policy` and `stream` retried by it
 * before its first event.
 * @since 0.1.0 @category decorators
 */
export const decorator = <A = Duration.Duration, R = never>(
  policy?: Schedule.Schedule<A, LlmError, R>
): LanguageModel.Decorator<never, R> =>
(inner) =>
  Effect.map(Effect.context<R>(), (context) => {
    // the schedule's requirements are provided once here, not on every call
    const used = Schedule.provideContext((policy ?? schedule()) as Schedule.Schedule<unknown, LlmError, R>, context)
    const chatPolicy = Schedule.whileInput(used, (error: LlmError) => !isPartial(error))
    return LanguageModel.wrap(inner, {
      // the first attempt runs as it is; only re-tries run in a `Retry.chat` span, so an idle
      // Retry costs next to nothing
      chat: (request) => retryChat(inner.chat(request), chatPolicy, inner.provider),
      stream: (request, tracker) => retrying(inner, request, used, tracker)
    })
  })

/**
 * @since 0.1.0 @category layers
 */
export const layer = <A = Duration.Duration, R = never>(
  policy?: Schedule.Schedule<A, LlmError, R>
): Layer.Layer<LanguageModel.LanguageModel, never, LanguageModel.LanguageModel | R> => LanguageModel.decorate(decorator(policy))
