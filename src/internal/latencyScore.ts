/**
 * The latency-aware choice among interchangeable targets (a pool's keys, a fallback chain's
 * equivalent steps): per target an exponentially weighted latency and error rate, kept in
 * this process; a choice by the power of two choices over the targets' costs (latency,
 * raised by errors, times the calls in flight there plus one; costs within a tolerance of each
 * other tie), so that the load spreads over the fast targets instead of piling onto the fastest; and a small share of calls sent to
 * the target heard from least recently, so that a target that recovered is noticed.
 *
 * Synchronous and free of Effect: each call is one step on the JS thread, and the random
 * draws come from the caller (Effect's `Random`, seedable in tests).
 */
import * as ConfigError from "effect/ConfigError"
import * as Either from "effect/Either"

/** The options of a latency-aware choice (`KeyPool`'s `latency`, `Fallback`'s `latency`). */
export interface Options {
  /** The weight of a new latency sample in the average, in (0, 1]. Default 0.3. */
  readonly smoothing?: number | undefined
  /** The share of calls sent to the target heard from least recently, in [0, 1). Default 0.05. */
  readonly exploration?: number | undefined
  /** How much a target's error rate raises its cost: latency × (1 + errorPenalty × errorRate). Default 4. */
  readonly errorPenalty?: number | undefined
  /** Two costs within this fraction of each other count as equal (the pick is then random). Default 0.25. */
  readonly tolerance?: number | undefined
}

export interface Resolved {
  readonly smoothing: number
  readonly exploration: number
  readonly errorPenalty: number
  readonly tolerance: number
}

/** The options, checked: a `ConfigError` names the first one out of its range (`where` says whose). */
export const resolve = (options: Options | true, where: string, path: ReadonlyArray<string>): Either.Either<Resolved, ConfigError.ConfigError> => {
  const given: Options = options === true ? {} : options
  const resolved: Resolved = {
    smoothing: given.smoothing ?? 0.3,
    exploration: given.exploration ?? 0.05,
    errorPenalty: given.errorPenalty ?? 4,
    tolerance: given.tolerance ?? 0.25
  }
  const bad = (name: string, range: string, value: unknown) =>
    Either.left(ConfigError.InvalidData([...path, name], `${where}: latency.${name} must be ${range}, got ${String(value)}`))
  if (!(resolved.smoothing > 0 && resolved.smoothing <= 1)) return bad("smoothing", "within (0, 1]", given.smoothing)
  if (!(resolved.exploration >= 0 && resolved.exploration < 1)) return bad("exploration", "within [0, 1)", given.exploration)
  if (!(resolved.errorPenalty >= 0 && Number.isFinite(resolved.errorPenalty))) return bad("errorPenalty", "a number ≥ 0", given.errorPenalty)
  if (!(resolved.tolerance >= 0 && Number.isFinite(resolved.tolerance))) return bad("tolerance", "a number ≥ 0", given.tolerance)
  return Either.right(resolved)
}

interface Target {
  /** The weighted latency in millis; undefined before the first sample. */
  latency: number | undefined
  /** The weighted share of failed calls, in [0, 1]. */
  errors: number
  /** Calls this process has in flight on the target. */
  inFlight: number
  /** The choice count when the target was last heard from (a sample or an error). */
  heardAt: number
}

/** What a target's score reads as, for status and tests. */
export interface Score {
  readonly latencyMillis: number | undefined
  readonly errorRate: number
  readonly inFlight: number
}

/** Two uniform draws in [0, 1) and one more, from the caller's random source. */
export interface Draws {
  readonly explore: number
  readonly first: number
  readonly second: number
}

export class Scores {
  private readonly targets = new Map<string, Target>()
  private choices = 0

  constructor(readonly options: Resolved) {}

  private of(id: string): Target {
    let target = this.targets.get(id)
    if (target === undefined) {
      target = { latency: undefined, errors: 0, inFlight: 0, heardAt: this.choices }
      this.targets.set(id, target)
    }
    return target
  }

  /** A successful call's latency (a reply's time, or a stream's time to its first event). */
  latency(id: string, millis: number): void {
    const target = this.of(id)
    const a = this.options.smoothing
    target.latency = target.latency === undefined ? millis : target.latency + a * (millis - target.latency)
    target.errors = target.errors * (1 - a)
    target.heardAt = this.choices
  }

  /** A call that failed on the target (its latency says nothing). */
  failure(id: string): void {
    const target = this.of(id)
    const a = this.options.smoothing
    target.errors = target.errors + a * (1 - target.errors)
    target.heardAt = this.choices
  }

  /**
   * A call that ended without a sample (interrupted, say, as a hedge's loser) after `millis`:
   * its latency was at least that. Counted only when it says the target is slower than its
   * average, so that a target whose calls are always cut short is not taken for a fast one.
   */
  censored(id: string, millis: number): void {
    const target = this.of(id)
    if (target.latency === undefined || millis > target.latency) this.latency(id, millis)
  }

  started(id: string): void {
    this.of(id).inFlight++
  }

  ended(id: string): void {
    const target = this.of(id)
    if (target.inFlight > 0) target.inFlight--
  }

  score(id: string): Score {
    const target = this.of(id)
    return { latencyMillis: target.latency, errorRate: target.errors, inFlight: target.inFlight }
  }

  /**
   * The cost of sending one more call to `id`. A target not yet measured costs as little as
   * the best measured one, so that it is tried soon.
   */
  private cost(target: Target, floor: number): number {
    const latency = target.latency ?? floor
    return Math.max(latency, 1e-3) * (1 + this.options.errorPenalty * target.errors) * (target.inFlight + 1)
  }

  /**
   * `candidates` (ids), best first for this call: the pick, then the others by cost. The pick
   * is the cheaper of two drawn at random, or, for an `exploration` share of calls, the target
   * heard from least recently.
   */
  order(candidates: ReadonlyArray<string>, draws: Draws): Array<string> {
    this.choices++
    const n = candidates.length
    if (n <= 1) return [...candidates]
    const targets = candidates.map((id) => this.of(id))
    let floor = Infinity
    for (const t of targets) if (t.latency !== undefined && t.latency < floor) floor = t.latency
    if (floor === Infinity) floor = 0
    const costs = targets.map((t) => this.cost(t, floor))
    let pick: number
    if (draws.explore < this.options.exploration) {
      pick = 0
      for (let i = 1; i < n; i++) if (targets[i]!.heardAt < targets[pick]!.heardAt) pick = i
      // a probe in flight counts as heard: the next exploration goes elsewhere
      targets[pick]!.heardAt = this.choices
    } else {
      const i = Math.min(n - 1, Math.floor(draws.first * n))
      // the second draw is among the other n - 1
      let j = Math.min(n - 2, Math.floor(draws.second * (n - 1)))
      if (j >= i) j++
      // near-equal costs are a tie, and the first draw (random) takes it
      pick = costs[j]! * (1 + this.options.tolerance) < costs[i]! ? j : i
    }
    const rest = candidates.map((_, k) => k).filter((k) => k !== pick).sort((x, y) => costs[x]! - costs[y]!)
    return [candidates[pick]!, ...rest.map((k) => candidates[k]!)]
  }
}
