/**
 * The budget's store in memory (`Budget.makeStoreMemory`, the default): the rules of the
 * Redis store, in one process and timed by the caller's clock. Per period: the settled
 * spend, the reservations in flight (each a lease that ends `leaseTtlMillis` after it was
 * taken or last renewed) and the reservations whose lease ended unsettled. A settlement
 * counts when its reservation is held or ended, and takes it away: sent twice, it counts
 * once, with no record of every request kept. Every operation is one synchronous step, so
 * fibers cannot interleave inside it.
 */
import * as Effect from "effect/Effect"
import type { Claim, Held, Reservation, Settlement, Store, StoreSpec, StoreStatus, Window } from "../Budget.js"

/**
 * How long a reservation whose lease ended unsettled is remembered (so that its late
 * settlement still counts, once), and, in Redis, a settlement of a request admitted while
 * Redis could not answer (`failOpen`): longer than any retry of it.
 */
export const idempotencyWindow = (leaseTtlMillis: number): number => Math.max(3_600_000, 10 * leaseTtlMillis)

interface PeriodState {
  readonly end: number
  tokens: number
  cost: number
  reservedTokens: number
  reservedCost: number
  warned: boolean
  /** id -> the reservation and when its lease ends. */
  readonly held: Map<string, { readonly tokens: number; readonly cost: number; expiresAt: number }>
  /** id -> its estimate, for a reservation whose lease ended unsettled, oldest first. */
  readonly ended: Map<string, { readonly tokens: number; readonly cost: number; readonly at: number }>
}

export const memoryStore = (spec: StoreSpec): Effect.Effect<Store> =>
  Effect.sync(() => {
    const window = idempotencyWindow(spec.leaseTtlMillis)
    const periods = new Map<number, PeriodState>()
    let credit: { remaining: number; spentSince: number; source: string } | undefined

    const periodOf = (period: Window, now: number): PeriodState => {
      // periods long over, with nothing left to settle into them, go
      for (const [start, state] of periods) {
        if (state.end + window < now && state.held.size === 0) periods.delete(start)
      }
      let state = periods.get(period.start)
      if (state === undefined) {
        state = {
          end: period.end,
          tokens: 0,
          cost: 0,
          reservedTokens: 0,
          reservedCost: 0,
          warned: false,
          held: new Map(),
          ended: new Map()
        }
        periods.set(period.start, state)
      }
      return state
    }

    /** Ends the leases past their time, and forgets ended reservations past the window. */
    const sweep = (state: PeriodState, now: number) => {
      for (const [id, lease] of state.held) {
        if (lease.expiresAt <= now) {
          state.held.delete(id)
          state.reservedTokens -= lease.tokens
          state.reservedCost -= lease.cost
          state.ended.set(id, { tokens: lease.tokens, cost: lease.cost, at: now })
        }
      }
      if (state.held.size === 0) {
        state.reservedTokens = 0
        state.reservedCost = 0
      }
      for (const [id, { at }] of state.ended) {
        if (at > now - window) break
        state.ended.delete(id)
      }
    }

    const reserve = (claim: Claim): Reservation => {
      const state = periodOf(claim.period, claim.now)
      sweep(state, claim.now)
      const spentTokens = state.tokens + state.reservedTokens
      if (spec.maxTokens !== undefined && spentTokens + claim.tokens > spec.maxTokens) {
        return { _tag: "Refused", dimension: "tokens", limit: spec.maxTokens, spent: spentTokens }
      }
      const cost = claim.cost
      const spentCost = state.cost + state.reservedCost
      if (spec.maxCost !== undefined && cost !== undefined && spentCost + cost > spec.maxCost) {
        return { _tag: "Refused", dimension: "cost", limit: spec.maxCost, spent: spentCost }
      }
      if (credit !== undefined && cost !== undefined && credit.spentSince + state.reservedCost + cost > credit.remaining) {
        return {
          _tag: "Refused",
          dimension: "credit",
          limit: credit.remaining,
          spent: credit.spentSince + state.reservedCost,
          source: credit.source
        }
      }
      state.held.set(claim.id, { tokens: claim.tokens, cost: cost ?? 0, expiresAt: claim.now + spec.leaseTtlMillis })
      state.reservedTokens += claim.tokens
      state.reservedCost += cost ?? 0
      return { _tag: "Reserved" }
    }

    const settle = (settlement: Settlement): { readonly tokens: number; readonly cost: number } | undefined => {
      const state = periodOf(settlement.period, settlement.now)
      sweep(state, settlement.now)
      const lease = state.held.get(settlement.id)
      if (lease !== undefined) {
        state.held.delete(settlement.id)
        state.reservedTokens -= lease.tokens
        state.reservedCost -= lease.cost
      } else if (!state.ended.delete(settlement.id)) {
        // neither held nor ended: settled already
        return undefined
      }
      state.tokens += settlement.tokens
      state.cost += settlement.cost
      if (credit !== undefined) credit.spentSince += settlement.cost
      const fraction = Math.max(
        spec.maxTokens === undefined ? 0 : state.tokens / spec.maxTokens,
        spec.maxCost === undefined ? 0 : state.cost / spec.maxCost
      )
      if (state.warned || fraction < spec.warnAt || (spec.maxTokens === undefined && spec.maxCost === undefined)) return undefined
      state.warned = true
      return { tokens: state.tokens, cost: state.cost }
    }

    const renew = (held: ReadonlyArray<Held>, now: number) => {
      for (const reservation of held) {
        const state = periodOf(reservation.period, now)
        const lease = state.held.get(reservation.id)
        if (lease !== undefined) {
          lease.expiresAt = now + spec.leaseTtlMillis
        } else if (state.ended.delete(reservation.id)) {
          // ended while its holder still ran (it was held up past its lease): it is in flight, count it again
          state.held.set(reservation.id, { tokens: reservation.tokens, cost: reservation.cost, expiresAt: now + spec.leaseTtlMillis })
          state.reservedTokens += reservation.tokens
          state.reservedCost += reservation.cost
        }
      }
    }

    const status = (period: Window, now: number): StoreStatus => {
      const state = periodOf(period, now)
      sweep(state, now)
      return {
        tokens: state.tokens,
        cost: state.cost,
        reservedTokens: state.reservedTokens,
        reservedCost: state.reservedCost,
        warned: state.warned,
        credit: credit === undefined ? undefined : { ...credit }
      }
    }

    return {
      reserve: (claim) => Effect.sync(() => reserve(claim)),
      settle: (settlement) =>
        Effect.suspend(() => {
          const crossed = settle(settlement)
          return crossed === undefined ? Effect.void : spec.onWarning({ periodEnd: settlement.period.end, ...crossed })
        }),
      renew: (held, now) => Effect.sync(() => renew(held, now)),
      status: (period, now) => Effect.sync(() => status(period, now)),
      setCredit: (next) =>
        Effect.sync(() => {
          credit = next === undefined ? undefined : { remaining: next.remaining, spentSince: 0, source: next.source }
        })
    }
  })
