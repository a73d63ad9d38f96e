/**
 * Zhipu's signed tokens: an `id.secret` key becomes a short-lived HS256 JWT (header
 * `{"alg":"HS256","sign_type":"SIGN"}`, payload `api_key`, `exp` and `timestamp` in
 * milliseconds), so the secret never travels. The fake server verifies them with the same
 * rules (`verify`).
 *
 * What is refused before anything is sent: a key with nothing before or after its dot (it
 * would go raw, secret and all), and a token lifetime outside 1 minute to 24 hours (expired
 * on arrival, or `exp: null`). A 401 whose body says the token expired (Zhipu's code 1003)
 * drops the cached token, and the request path signs a fresh one and sends once more
 * (`SigningAuth`); tokens quoted back in errors are masked as the key is.
 */
import { createHmac, timingSafeEqual } from "node:crypto"
import * as ConfigError from "effect/ConfigError"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import type * as KeyPool from "../../../KeyPool.js"
import { maskDerived, type SigningAuth } from "../../request/credentials.js"

const header = Buffer.from(JSON.stringify({ alg: "HS256", sign_type: "SIGN" })).toString("base64url")

/** Every token made here: the fixed header, then payload and signature (base64url). */
const tokenPattern = new RegExp(`${header}\\.[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+`, "g")

const sign = (input: string, secret: string) => createHmac("sha256", secret).update(input).digest("base64url")

/** `id.secret` split at its first dot; a key without one is not a Zhipu key pair. */
export const splitKey = (key: string): { readonly id: string; readonly secret: string } | undefined => {
  const dot = key.indexOf(".")
  return dot > 0 && dot < key.length - 1 ? { id: key.slice(0, dot), secret: key.slice(dot + 1) } : undefined
}

/**
 * Why a key cannot be used with signed tokens, never quoting it: one with a dot but nothing
 * before or after it is a broken pair. A key without a dot is a raw key, which the API takes.
 */
export const keyProblem = (key: string): string | undefined => {
  const dot = key.indexOf(".")
  if (dot === 0) return "has nothing before its dot (no id)"
  if (dot === key.length - 1) return "has nothing after its dot (no secret)"
  return undefined
}

/** The first key `keyProblem` refuses, by index; undefined when every key can be used. */
export const firstKeyProblem = (keys: ReadonlyArray<string>): { readonly index: number; readonly problem: string } | undefined => {
  for (const [index, key] of keys.entries()) {
    const problem = keyProblem(key)
    if (problem !== undefined) return { index, problem }
  }
  return undefined
}

export const token = (id: string, secret: string, nowMs: number, ttlMs: number): string => {
  const payload = Buffer.from(JSON.stringify({ api_key: id, exp: nowMs + ttlMs, timestamp: nowMs })).toString("base64url")
  return `${header}.${payload}.${sign(`${header}.${payload}`, secret)}`
}

/** The shortest and longest token lifetimes taken: shorter expires in flight, longer outlives its purpose if leaked. */
export const minTtl = Duration.minutes(1)
export const maxTtl = Duration.hours(24)
export const defaultTtl = Duration.minutes(30)

/** A token lifetime in millis, or why it is refused. */
export const ttlMillis = (input: Duration.DurationInput | undefined): Either.Either<number, string> => {
  if (input === undefined) return Either.right(Duration.toMillis(defaultTtl))
  const ttl = Duration.decodeUnknown(input)
  const within = Option.isSome(ttl) && Duration.isFinite(ttl.value) &&
    Duration.greaterThanOrEqualTo(ttl.value, minTtl) && Duration.lessThanOrEqualTo(ttl.value, maxTtl)
  return within
    ? Either.right(Duration.toMillis(ttl.value))
    : Either.left(`must be from ${Duration.format(minTtl)} to ${Duration.format(maxTtl)}, got ${Option.match(ttl, { onNone: () => "no duration", onSome: Duration.format })}`)
}

/**
 * What a stack with `auth: "zhipu"` checks as it builds: the token lifetime, and every key of
 * its pool (named by position, never by value).
 */
export const check = (ttl: Duration.DurationInput | undefined, pool: KeyPool.Service): Effect.Effect<void, ConfigError.ConfigError> => {
  const ms = ttlMillis(ttl)
  if (Either.isLeft(ms)) return Effect.fail(ConfigError.InvalidData(["zhipuTokenTtl"], `zhipuTokenTtl ${ms.left}`))
  const refused = pool.checkKeys(keyProblem)
  return refused === undefined ? Effect.void : Effect.fail(ConfigError.InvalidData(
    [],
    `auth "zhipu": ${pool.providerId} ${refused}, so it cannot be signed and would travel raw; a Zhipu key is id.secret`
  ))
}

export interface TokenOptions {
  /** How long a token is valid. */
  readonly ttlMs: number
  /** A token is made anew this long before it expires. */
  readonly renewBeforeMs: number
  readonly now: () => number
}

/** Zhipu's 401 for an expired token: business code 1003, "Authentication Token已过期". */
const saysExpired = (body: string) => /"code"\s*:\s*"?1003\b|expired|已过期/i.test(body)

/**
 * The auth of a spec in `zhipu` mode: a cached token per key, made anew shortly before it
 * expires, or at once after a 401 says it expired (`renewAfter`). A key that is not `id.secret`
 * has nothing to sign and goes as a Bearer token, as the API accepts raw keys; a broken pair
 * (`keyProblem`, refused when the layer builds) is not sent at all.
 */
export const auth = (options: TokenOptions): SigningAuth => {
  const cache = new Map<string, { readonly token: string; readonly renewAt: number }>()
  const headers = (key: Redacted.Redacted<string>): Record<string, string> => {
    const raw = Redacted.value(key)
    const pair = splitKey(raw)
    if (pair === undefined) return keyProblem(raw) === undefined ? { authorization: `Bearer ${raw}` } : {}
    maskDerived(key, tokenPattern)
    const now = options.now()
    const cached = cache.get(raw)
    if (cached !== undefined && now < cached.renewAt) return { authorization: `Bearer ${cached.token}` }
    const made = token(pair.id, pair.secret, now, options.ttlMs)
    // bounded: one entry per key of the pool, replaced when renewed
    cache.set(raw, { token: made, renewAt: now + options.ttlMs - options.renewBeforeMs })
    return { authorization: `Bearer ${made}` }
  }
  return Object.assign(headers, {
    renewAfter: (key: Redacted.Redacted<string>, body: string) => saysExpired(body) && cache.delete(Redacted.value(key))
  })
}

/** The auth for a token lifetime that `check` accepted. */
export const authFor = (ttl: Duration.DurationInput | undefined): SigningAuth => {
  const ttlMs = Either.getOrThrowWith(ttlMillis(ttl), (why) => new RangeError(`zhipuTokenTtl ${why}`))
  // renewed a minute early (or at half its life, if shorter) so a token never expires in flight
  return auth({ ttlMs, renewBeforeMs: Math.min(60_000, ttlMs / 2), now: Date.now })
}

/** Why `authorization` is not a valid, unexpired token signed with one of `keys`, or undefined when it is. */
export const verify = (authorization: string | undefined, keys: ReadonlyArray<string>, nowMs: number): string | undefined => {
  const jwt = authorization?.startsWith("Bearer ") ? authorization.slice(7) : undefined
  if (jwt === undefined) return "no Bearer token"
  const [head, payload, signature, ...rest] = jwt.split(".")
  if (head === undefined || payload === undefined || signature === undefined || rest.length > 0) return "not a JWT"
  let claims: { api_key?: unknown; exp?: unknown; timestamp?: unknown }
  try {
    const parsedHead = JSON.parse(Buffer.from(head, "base64url").toString("utf8")) as { alg?: unknown; sign_type?: unknown }
    if (parsedHead.alg !== "HS256" || parsedHead.sign_type !== "SIGN") return "header is not {alg: HS256, sign_type: SIGN}"
    claims = JSON.parse(Buffer.from(payload, "base64url").toString("utf8")) as typeof claims
  } catch {
    return "not a JWT"
  }
  const pair = keys.map(splitKey).find((p) => p !== undefined && p.id === claims.api_key)
  if (pair === undefined) return "unknown api_key"
  const expected = Buffer.from(sign(`${head}.${payload}`, pair.secret))
  const given = Buffer.from(signature)
  if (expected.length !== given.length || !timingSafeEqual(expected, given)) return "bad signature"
  if (typeof claims.exp !== "number" || typeof claims.timestamp !== "number") return "exp and timestamp must be numbers (ms)"
  if (claims.exp <= nowMs) return "token expired"
  return undefined
}
