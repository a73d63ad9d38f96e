import { createHash } from "node:crypto"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as Ref from "effect/Ref"
import type { KeyStatus, Lease, Options, Outcome, Service } from "../KeyPool.js"
import { NoKeyAvailableError } from "../LlmError.js"

export const fingerprint = (key: string): string =>
  "key_" + createHash("sha256").update(key).digest("hex").slice(0, 10)

interface KeyState {
  readonly keyId: string
  readonly key: Redacted.Redacted<string>
  inFlight: number
  successes: number
  failures: number
  cooldownUntil: number | undefined
  disabledReason: string | undefined
  disabledUntil: number | undefined
  lastUsed: number
}

const healthyAt = (state: KeyState, now: number): boolean =>
  (state.disabledReason === undefined || (state.disabledUntil !== undefined && state.disabledUntil <= now)) &&
  (state.cooldownUntil === undefined || state.cooldownUntil <= now)

export const make = (options: Options): Effect.Effect<Service> =>
  Effect.gen(function* () {
    const defaultCooldown = Duration.toMillis(options.defaultCooldown ?? "10 seconds")
    const quotaReset = Duration.toMillis(options.quotaResetAfter ?? "1 hour")
    const seen = new Set<string>()
    const states: Array<KeyState> = []
    for (const raw of options.keys) {
      const key = typeof raw === "string" ? Redacted.make(raw) : raw
      const keyId = fingerprint(Redacted.value(key))
      if (seen.has(keyId)) continue
      seen.add(keyId)
      states.push({
        keyId,
        key,
        inFlight: 0,
        successes: 0,
        failures: 0,
        cooldownUntil: undefined,
        disabledReason: undefined,
        disabledUntil: undefined,
        lastUsed: 0
      })
    }
    const byId = new Map(states.map((s) => [s.keyId, s]))
    // The Ref serialises every mutation of the key states; all updates happen inside modify.
    const ref = yield* Ref.make(states)
    const keyless: Lease = { keyId: "none", key: undefined }

    /** The least-loaded healthy key, or when the earliest unhealthy key comes back. */
    const pick = (now: number): { readonly state: KeyState } | { readonly back: number | undefined } => {
      let best: KeyState | undefined
      let earliest: number | undefined
      for (const state of states) {
        if (healthyAt(state, now)) {
          if (
            best === undefined ||
            state.inFlight < best.inFlight ||
            (state.inFlight === best.inFlight && state.lastUsed < best.lastUsed)
          ) best = state
        } else {
          const back = state.disabledReason !== undefined ? state.disabledUntil : state.cooldownUntil
          if (back !== undefined && (earliest === undefined || back < earliest)) earliest = back
        }
      }
      return best === undefined ? { back: earliest } : { state: best }
    }

    const take = Effect.flatMap(Clock.currentTimeMillis, (now) =>
      Ref.modify(ref, (s: Array<KeyState>) => {
        const picked = pick(now)
        if ("state" in picked) {
          const state = picked.state
          state.inFlight++
          state.lastUsed = now
          if (state.disabledReason !== undefined) {
            // a timed disable (quota) has expired: half-open again
            state.disabledReason = undefined
            state.disabledUntil = undefined
          }
        }
        return [picked, s] as const
      }).pipe(
        Effect.flatMap((picked) =>
          "state" in picked
            ? Effect.succeed(picked.state)
            : Effect.fail(
              new NoKeyAvailableError({
                provider: options.providerId,
                model: "*",
                message: picked.back === undefined
                  ? `every key of ${options.providerId} is disabled`
                  : `every key of ${options.providerId} is cooling down`,
                ...(picked.back === undefined ? {} : { retryAfter: Duration.millis(Math.max(0, picked.back - now)) })
              })
            )
        )
      )
    )

    const release = (state: KeyState) =>
      Ref.update(ref, (s) => {
        state.inFlight--
        return s
      })

    const acquire: Service["acquire"] = states.length === 0
      ? Effect.succeed(keyless)
      : Effect.acquireRelease(take, release).pipe(
        Effect.map((state): Lease => ({ keyId: state.keyId, key: state.key }))
      )

    const report = (keyId: string, outcome: Outcome): Effect.Effect<void> => {
      const state = byId.get(keyId)
      if (state === undefined) return Effect.void
      return Effect.flatMap(Clock.currentTimeMillis, (now) =>
        Ref.update(ref, (s) => {
          switch (outcome._tag) {
            case "Success":
              state.successes++
              state.cooldownUntil = undefined
              break
            case "RateLimited": {
              state.failures++
              const wait = outcome.retryAfter === undefined ? defaultCooldown : Duration.toMillis(outcome.retryAfter)
              state.cooldownUntil = Math.max(state.cooldownUntil ?? 0, now + wait)
              break
            }
            case "Rejected":
              state.failures++
              state.disabledReason = outcome.reason
              state.disabledUntil = undefined
              break
            case "QuotaExceeded":
              state.failures++
              state.disabledReason = outcome.reason
              state.disabledUntil = now + quotaReset
              break
            case "Failure":
              state.failures++
              break
          }
          return s
        })
      )
    }

    const withKey: Service["withKey"] = (f) =>
      Effect.scoped(
        Effect.flatMap(acquire, (lease) =>
          f(lease).pipe(
            Effect.tapBoth({
              onSuccess: () => report(lease.keyId, { _tag: "Success" }),
              onFailure: (error) => report(lease.keyId, outcomeOf(error))
            })
          ))
      )

    const status = Ref.get(ref).pipe(
      Effect.map((s) =>
        s.map((state): KeyStatus => ({
          keyId: state.keyId,
          inFlight: state.inFlight,
          successes: state.successes,
          failures: state.failures,
          cooldownUntil: state.cooldownUntil,
          disabledReason: state.disabledReason,
          lastUsed: state.lastUsed
        }))
      )
    )

    const hasHealthyKey = (exceptKeyId?: string) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        Effect.map(Ref.get(ref), (s) => s.some((state) => state.keyId !== exceptKeyId && healthyAt(state, now))))

    return { providerId: options.providerId, acquire, withKey, report, status, hasHealthyKey }
  })

/** Accepts unknown so that `withKey` can classify whatever its callback failed with. */
export const outcomeOf = (error: unknown): Outcome => {
  if (typeof error === "object" && error !== null && "_tag" in error) {
    switch ((error as { _tag: string })._tag) {
      case "RateLimitError":
        return { _tag: "RateLimited", retryAfter: (error as { retryAfter?: Duration.Duration }).retryAfter }
      case "AuthenticationError":
      case "PermissionError":
        return { _tag: "Rejected", reason: String((error as { message?: string }).message ?? "rejected") }
      case "QuotaExceededError":
        return { _tag: "QuotaExceeded", reason: String((error as { message?: string }).message ?? "quota exceeded") }
    }
  }
  return { _tag: "Failure" }
}
