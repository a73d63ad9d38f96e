/** A stream's deadlines, kept as one budget per step of the stream. */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Err from "../../LlmError.js"
import type { Endpoint } from "./endpoint.js"
import type { Budget } from "./exchange.js"
/**
 * A stream's three deadlines: the total (`timeout`), the first event (`firstTokenTimeout`,
 * counted from the start) and the wait for the next event (`idleTimeout`). `step(started)`
 * makes it the budget of the next step of the stream (opening it, or one read of the body):
 * the nearest deadline, which names the phase when it passes.
 *
 * Idle time is the time spent waiting on the provider since the last event: reads that bring
 * only comments, pings or empty deltas spend it without renewing it, and the time the consumer
 * takes between reads is not counted against the provider.
 */
export const streamDeadlines = (endpoint: Endpoint, model: string, clock: Clock.Clock) => {
  const finite = (d: Duration.Duration) => (Duration.isFinite(d) ? Duration.toMillis(d) : undefined)
  const total = finite(endpoint.streamTimeout)
  const firstToken = finite(endpoint.firstTokenTimeout)
  const idle = finite(endpoint.idleTimeout)
  const start = clock.unsafeCurrentTimeMillis()
  let idleLeft = idle ?? Infinity
  let readStart = start
  let started = false
  let phase: Err.TimeoutPhase = "request"
  let configured = 0
  const budget = {
    /** The budget of the next step; `started`: events were delivered. */
    step: (delivered: boolean): Budget => {
      started = delivered
      return budget
    },
    left: (): number => {
      const now = clock.unsafeCurrentTimeMillis()
      readStart = now
      phase = "request"
      configured = total ?? 0
      let limit = total === undefined ? Infinity : start + total - now
      if (!started && firstToken !== undefined && start + firstToken - now < limit) {
        limit = start + firstToken - now
        phase = "firstToken"
        configured = firstToken
      }
      if (started && idle !== undefined && idleLeft < limit) {
        limit = idleLeft
        phase = "idle"
        configured = idle
      }
      return limit
    },
    timeout: () =>
      new Err.TimeoutError({
        provider: endpoint.provider,
        model,
        phase,
        message: `${endpoint.provider} stream timed out (${phase}) after ${Duration.format(Duration.millis(configured))}${
          started ? ", after output began" : ""
        }`,
        // events were delivered: a transparent re-try would repeat them
        retryable: !started
      }),
    /** A read ended: its wait is spent, and renewed when it brought events. */
    read: (events: boolean) => {
      if (events) idleLeft = idle ?? Infinity
      else idleLeft -= clock.unsafeCurrentTimeMillis() - readStart
    }
  }
  return budget
}

