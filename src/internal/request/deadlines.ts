/** A stream's deadlines, kept as one budget per step of the stream. */
import type * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Err from "../../LlmError.js"
import type { Endpoint } from "./endpoint.js"
import type { Budget } from "./exchange.js"

const finite = (d: Duration.Duration) => (Duration.isFinite(d) ? Duration.toMillis(d) : undefined)

/**
 * A stream's three deadlines: the total (`timeout`), the first event (`firstTokenTimeout`,
 * counted from the start) and the wait for the next event (`idleTimeout`). `step(started)`
 * makes it the budget of the next step of the stream (opening it, or one read of the body):
 * the nearest deadline, which names the phase when it passes.
 *
 * Idle time is the time spent waiting on the provider since the last event: reads that bring
 * only comments, pings or empty deltas spend it without renewing it, and the time the consumer
 * takes between reads is not counted against the provider.
 *
 * A class, not closures: every open stream holds one.
 */
export class StreamDeadlines implements Budget {
  private readonly total: number | undefined
  private readonly firstToken: number | undefined
  private readonly idle: number | undefined
  private readonly start: number
  private idleLeft: number
  private readStart: number
  private started = false
  private phase: Err.TimeoutPhase = "request"
  private configured = 0

  constructor(private readonly endpoint: Endpoint, private readonly model: string, private readonly clock: Clock.Clock) {
    this.total = finite(endpoint.streamTimeout)
    this.firstToken = finite(endpoint.firstTokenTimeout)
    this.idle = finite(endpoint.idleTimeout)
    this.start = clock.unsafeCurrentTimeMillis()
    this.idleLeft = this.idle ?? Infinity
    this.readStart = this.start
  }

  /** The budget of the next step; `delivered`: events were delivered. */
  step(delivered: boolean): Budget {
    this.started = delivered
    return this
  }

  left(): number {
    const now = this.clock.unsafeCurrentTimeMillis()
    const { total, firstToken, idle, start } = this
    this.readStart = now
    this.phase = "request"
    this.configured = total ?? 0
    let limit = total === undefined ? Infinity : start + total - now
    if (!this.started && firstToken !== undefined && start + firstToken - now < limit) {
      limit = start + firstToken - now
      this.phase = "firstToken"
      this.configured = firstToken
    }
    if (this.started && idle !== undefined && this.idleLeft < limit) {
      limit = this.idleLeft
      this.phase = "idle"
      this.configured = idle
    }
    return limit
  }

  timeout(): Err.TimeoutError {
    const { endpoint, phase, started } = this
    return new Err.TimeoutError({
      provider: endpoint.provider,
      model: this.model,
      phase,
      message: `${endpoint.provider} stream timed out (${phase}) after ${Duration.format(Duration.millis(this.configured))}${
        started ? ", after output began" : ""
      }`,
      // events were delivered: a transparent re-try would repeat them
      retryable: !started
    })
  }

  /** A read ended: its wait is spent, and renewed when it brought events. */
  read(events: boolean): void {
    if (events) this.idleLeft = this.idle ?? Infinity
    else this.idleLeft -= this.clock.unsafeCurrentTimeMillis() - this.readStart
  }
}
