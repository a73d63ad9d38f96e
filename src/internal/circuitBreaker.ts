/**
 * The breaker's state machine, free of Effect so that every transition is one synchronous
 * step (atomic on the JS thread) and easy to test; and the in-memory store over it.
 */
import * as Effect from "effect/Effect"
import type { Store, StoreSpec } from "../CircuitBreaker.js"

export type State = "closed" | "open" | "halfOpen"

export interface Settings {
  readonly consecutiveFailures: number
  readonly failureRate: number
  readonly windowSize: number
  readonly minimumRequests: number
  readonly cooldownMillis: number
}

export type Admission =
  | { readonly _tag: "Allowed"; readonly probe: boolean; readonly ticket?: string | undefined }
  | { readonly _tag: "Rejected"; readonly retryAfterMillis: number }

export type Outcome = "success" | "failure" | "ignore"

export interface Snapshot {
  readonly state: State
  readonly consecutiveFailures: number
  readonly failureRate: number
  readonly requestsInWindow: number
  readonly openedAt: number | undefined
  readonly retryAt: number | undefined
}

export class Machine {
  private state: State = "closed"
  private consecutive = 0
  /** The last `windowSize` outcomes, true for a failure, as a ring. */
  private readonly ring: Array<boolean> = []
  private next = 0
  private failuresInRing = 0
  private openedAt: number | undefined = undefined
  private probeInFlight = false

  constructor(readonly settings: Settings, private readonly onTransition: (to: State) => void) {}

  admit(now: number): Admission {
    if (this.state === "open") {
      const retryAt = this.openedAt! + this.settings.cooldownMillis
      if (now < retryAt) return { _tag: "Rejected", retryAfterMillis: retryAt - now }
      this.transition("halfOpen")
    }
    if (this.state === "halfOpen") {
      if (this.probeInFlight) return { _tag: "Rejected", retryAfterMillis: 0 }
      this.probeInFlight = true
      return { _tag: "Allowed", probe: true }
    }
    return { _tag: "Allowed", probe: false }
  }

  settle(now: number, probe: boolean, outcome: Outcome): void {
    if (probe) this.probeInFlight = false
    if (outcome === "ignore") return
    if (probe && this.state === "halfOpen") {
      if (outcome === "success") this.close()
      else this.open(now)
      return
    }
    if (this.state !== "closed") return
    this.record(outcome === "failure")
    if (outcome === "success") {
      this.consecutive = 0
      return
    }
    this.consecutive++
    const s = this.settings
    const count = this.ring.length
    if (this.consecutive >= s.consecutiveFailures || (count >= s.minimumRequests && this.failuresInRing / count >= s.failureRate)) {
      this.open(now)
    }
  }

  snapshot(now: number): Snapshot {
    const state = this.state === "open" && now >= this.openedAt! + this.settings.cooldownMillis ? "halfOpen" : this.state
    return {
      state,
      consecutiveFailures: this.consecutive,
      failureRate: this.ring.length === 0 ? 0 : this.failuresInRing / this.ring.length,
      requestsInWindow: this.ring.length,
      openedAt: this.state === "closed" ? undefined : this.openedAt,
      retryAt: this.state === "open" ? this.openedAt! + this.settings.cooldownMillis : undefined
    }
  }

  private record(failed: boolean): void {
    const size = this.settings.windowSize
    if (this.ring.length < size) {
      this.ring.push(failed)
    } else {
      if (this.ring[this.next]) this.failuresInRing--
      this.ring[this.next] = failed
      this.next = (this.next + 1) % size
    }
    if (failed) this.failuresInRing++
  }

  private open(now: number): void {
    this.openedAt = now
    this.transition("open")
  }

  private close(): void {
    this.consecutive = 0
    this.ring.length = 0
    this.next = 0
    this.failuresInRing = 0
    this.openedAt = undefined
    this.transition("closed")
  }

  private transition(to: State): void {
    if (this.state === to && to !== "open") return
    this.state = to
    this.onTransition(to)
  }
}

/** One breaker in memory: the machine, its transitions reported after each step. */
export const memoryStore = (spec: StoreSpec): Effect.Effect<Store> =>
  Effect.sync(() => {
    const changed: Array<State> = []
    const machine = new Machine(spec.settings, (to) => changed.push(to))
    const report = Effect.suspend(() =>
      changed.length === 0 ? Effect.void : Effect.forEach(changed.splice(0), spec.onTransition, { discard: true })
    )
    return {
      admit: (now) => Effect.suspend(() => Effect.as(report, machine.admit(now))),
      settle: (admission, outcome, now) =>
        Effect.suspend(() => {
          machine.settle(now, admission.probe, outcome)
          return report
        }),
      status: (now) => Effect.sync(() => machine.snapshot(now))
    }
  })

