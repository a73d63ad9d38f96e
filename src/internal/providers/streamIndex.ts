/**
 * The indices stream formats number their parts by: a Chat Completions tool call's `index`,
 * an Anthropic content block's `index`, a Responses item's `output_index` and
 * `content_index`, a Gemini argument path's `[n]`. Parsers key their parts by them in a
 * `Map`, never use them as array positions, and refuse an index no honest server sends.
 */
import { excerptOf } from "../../LlmError.js"

/**
 * The largest index accepted. Every block, item or call costs at least one output token,
 * and no model's output limit comes near a million tokens; a bound keeps a hostile index
 * from meaning anything (an array written at 4294967294 is walked slot by slot).
 */
export const maxStreamIndex = 1_000_000

/** Whether `value` is an index an honest server sends: an integer from 0 to `maxStreamIndex`. */
export const isStreamIndex = (value: unknown): value is number =>
  typeof value === "number" && Number.isInteger(value) && value >= 0 && value <= maxStreamIndex

/** Why `value`, sent as `field`, is refused: for a `MalformedResponseError`. */
export const badIndex = (field: string, value: unknown): string =>
  `${field} ${excerptOf(JSON.stringify(value) ?? String(value), 40)} is not an index from 0 to ${maxStreamIndex}`

/**
 * The entries of an index-keyed Map in index order: a stream's parts may arrive out of
 * order, and its result lists them in order.
 */
export const inIndexOrder = <A>(map: ReadonlyMap<number, A>): Array<[number, A]> => [...map.entries()].sort(([a], [b]) => a - b)
