/**
 * Zhipu's signed tokens: an `id.secret` key becomes a short-lived HS256 JWT (header
 * `{"alg":"HS256","sign_type":"SIGN"}`, payload `api_key`, `exp` and `timestamp` in
 * milliseconds), so the secret never travels. The fake server verifies them with the same
 * rules (`verify`).
 */
import { createHmac, timingSafeEqual } from "node:crypto"
import * as Redacted from "effect/Redacted"

const header = Buffer.from(JSON.stringify({ alg: "HS256", sign_type: "SIGN" })).toString("base64url")

const sign = (input: string, secret: string) => createHmac("sha256", secret).update(input).digest("base64url")

/** `id.secret` split at its first dot; a key without one is not a Zhipu key pair. */
export const splitKey = (key: string): { readonly id: string; readonly secret: string } | undefined => {
  const dot = key.indexOf(".")
  return dot > 0 && dot < key.length - 1 ? { id: key.slice(0, dot), secret: key.slice(dot + 1) } : undefined
}

export const token = (id: string, secret: string, nowMs: number, ttlMs: number): string => {
  const payload = Buffer.from(JSON.stringify({ api_key: id, exp: nowMs + ttlMs, timestamp: nowMs })).toString("base64url")
  return `${header}.${payload}.${sign(`${header}.${payload}`, secret)}`
}

export interface TokenOptions {
  /** How long a token is valid. */
  readonly ttlMs: number
  /** A token is made anew this long before it expires. */
  readonly renewBeforeMs: number
  readonly now: () => number
}

/**
 * The auth of a spec in `zhipu` mode: a cached token per key, made anew shortly before it
 * expires. A key that is not `id.secret` has nothing to sign and goes as a Bearer token, as
 * the API accepts raw keys.
 */
export const auth = (options: TokenOptions) => {
  const cache = new Map<string, { readonly token: string; readonly renewAt: number }>()
  return (key: Redacted.Redacted<string>): Record<string, string> => {
    const raw = Redacted.value(key)
    const pair = splitKey(raw)
    if (pair === undefined) return { authorization: `Bearer ${raw}` }
    const now = options.now()
    const cached = cache.get(raw)
    if (cached !== undefined && now < cached.renewAt) return { authorization: `Bearer ${cached.token}` }
    const made = token(pair.id, pair.secret, now, options.ttlMs)
    // bounded: one entry per key of the pool, replaced when renewed
    cache.set(raw, { token: made, renewAt: now + options.ttlMs - options.renewBeforeMs })
    return { authorization: `Bearer ${made}` }
  }
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
