/**
 * What a request adds to any API's body last: its `providerOptions` for that API, deep-merged,
 * then `extra`, assigned at the top level.
 */
import type * as Message from "../../Message.js"

type Json = Record<string, unknown>

const isPlainObject = (u: unknown): u is Json =>
  typeof u === "object" && u !== null && !Array.isArray(u) && Object.getPrototypeOf(u) === Object.prototype

/** `patch` merged into `into`: objects key by key, anything else (arrays included) replaced. */
export const deepMerge = (into: Json, patch: Json): Json => {
  for (const [key, value] of Object.entries(patch)) {
    if (value === undefined) continue
    const current = into[key]
    into[key] = isPlainObject(current) && isPlainObject(value) ? deepMerge({ ...current }, value) : value
  }
  return into
}

/** The `providerOptions` keys a wire API reads, in merge order. */
export type OptionsKey = keyof Message.ProviderOptions

/** `body` with the request's options for `keys` deep-merged in, then its `extra` on top. */
export const withRequestOptions = (body: Json, request: Message.ChatRequest, keys: ReadonlyArray<OptionsKey>): Json => {
  const options = request.providerOptions
  if (options !== undefined) {
    for (const key of keys) {
      const own = options[key]
      if (own !== undefined) deepMerge(body, own as Json)
    }
  }
  if (request.extra !== undefined) Object.assign(body, request.extra)
  return body
}
