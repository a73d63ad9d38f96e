/**
 * Credentials an auth scheme makes from a key instead of sending the key itself (Zhipu's
 * signed tokens), and what the request path does with them: errors mask them wherever they
 * mask the key, and a 401 that says a credential expired gets one fresh credential and one
 * more send on the same key before the key is blamed.
 */
import type * as Redacted from "effect/Redacted"

/** A `Spec.auth` that signs short-lived credentials from its keys. */
export interface SigningAuth {
  (key: Redacted.Redacted<string>): Record<string, string>
  /**
   * Given a 401's body: true when it says the credential expired and the one cached for `key`
   * was dropped, so that the next call signs afresh; false for any other refusal.
   */
  readonly renewAfter: (key: Redacted.Redacted<string>, body: string) => boolean
}

/** Whether `auth` signs credentials and has just dropped an expired one for `key` (see `SigningAuth`). */
export const renewedAfter = (
  auth: (key: Redacted.Redacted<string>) => Record<string, string>,
  key: Redacted.Redacted<string>,
  body: string
): boolean => {
  const renew = (auth as Partial<SigningAuth>).renewAfter
  return typeof renew === "function" && renew(key, body)
}

// By the key's own Redacted object: a pool hands out the same one on every lease. Weak, so a
// pool's keys and their patterns go together.
const derived = new WeakMap<Redacted.Redacted<string>, RegExp>()

/**
 * Declares what the credentials made from `key` look like (a global RegExp), so that every
 * error masking the key masks them too, however old.
 */
export const maskDerived = (key: Redacted.Redacted<string>, pattern: RegExp): void => {
  if (!derived.has(key)) derived.set(key, pattern)
}

/** The pattern of the credentials made from `key`, when a scheme declared one. */
export const derivedPattern = (key: Redacted.Redacted<string>): RegExp | undefined => derived.get(key)
