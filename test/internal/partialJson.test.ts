import { describe, expect, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import { PartialJson } from "../../src/internal/partialJson.js"

/** Every partial value the reader gives for `text` fed in `pieces`. */
const partials = (pieces: ReadonlyArray<string>, maxDepth = 128): Array<unknown> => {
  const reader = new PartialJson(maxDepth)
  const out: Array<unknown> = []
  for (const piece of pieces) {
    reader.feed(piece)
    const next = reader.next()
    if (next !== undefined) out.push(next.value)
  }
  return out
}

/** Each character its own delta. */
const byChar = (text: string) => [...text]

/**
 * Whether `partial` could be what `final` looked like part way: strings grown from the
 * start, scalars whole, containers holding equal members and at most one still growing.
 */
const grows = (partial: unknown, final: unknown): boolean => {
  if (typeof partial === "string") return typeof final === "string" && final.startsWith(partial)
  if (typeof partial !== "object" || partial === null) return Object.is(partial, final) || partial === final
  if (Array.isArray(partial)) {
    if (!Array.isArray(final) || partial.length > final.length) return false
    return partial.every((p, i) => (i === partial.length - 1 ? grows(p, final[i]) : JSON.stringify(p) === JSON.stringify(final[i])))
  }
  if (typeof final !== "object" || final === null || Array.isArray(final)) return false
  const keys = Object.keys(partial)
  let growing = 0
  for (const key of keys) {
    if (!Object.hasOwn(final, key)) return false
    const p = (partial as Record<string, unknown>)[key]
    const f = (final as Record<string, unknown>)[key]
    if (JSON.stringify(p) === JSON.stringify(f)) continue
    if (!grows(p, f)) return false
    growing++
  }
  return growing <= 1
}

describe("PartialJson", () => {
  it("shows strings as they grow, scalars only whole, keys only with the start of their value", () => {
    expect(partials(byChar("{\"name\": \"Ada\", \"age\": 36, \"ok\": true}"))).toEqual([
      {},
      { name: "" },
      { name: "A" },
      { name: "Ad" },
      { name: "Ada" },
      { name: "Ada", age: 36 },
      { name: "Ada", age: 36, ok: true }
    ])
    expect(partials(byChar("[1, 22, [\"x\"]]"))).toEqual([[], [1], [1, 22], [1, 22, []], [1, 22, [""]], [1, 22, ["x"]]])
  })

  it("never cuts inside an escape: a half-read \\n or \\u is left out until whole", () => {
    const seen = partials(byChar("[\"a\\nb\\u00e9c\"]"))
    expect(seen).toEqual([[], [""], ["a"], ["a\n"], ["a\nb"], ["a\nbé"], ["a\nbéc"]])
  })

  it("skips a leading Markdown fence and whatever follows the value", () => {
    expect(partials(["```json\n{\"a\"", ": [1", "]}\n``", "`"]).at(-1)).toEqual({ a: [1] })
    expect(partials(["  ``", "`\n[tr", "ue]"]).at(-1)).toEqual([true])
    expect(partials(["{\"a\":1} and some words"]).at(-1)).toEqual({ a: 1 })
  })

  it("a __proto__ key is an own key of the partial, never its prototype", () => {
    const [last] = partials(["{\"__proto__\": {\"polluted\": true}}"]) as Array<Record<string, unknown>>
    expect(Object.getPrototypeOf(last)).toBe(Object.prototype)
    expect(Object.hasOwn(last!, "__proto__")).toBe(true)
    expect(last!.polluted).toBeUndefined()
  })

  it("stops giving partials past the depth bound, or at text that is not JSON, without recursing", () => {
    const deep = "[".repeat(100_000)
    expect(partials([deep.slice(0, 3)], 4)).toEqual([[[[]]]])
    expect(partials([deep], 4)).toEqual([])
    expect(partials(["Here it is: {\"a\": 1}"])).toEqual([])
    expect(partials(["{\"a\": 1", "2x, \"b\": 2}"])).toEqual([{}])
  })

  it("property: fed in any pieces, every partial grows toward the value, and the whole text gives it", () =>
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 4 }), fc.array(fc.nat(), { maxLength: 30 }), (value, cuts) => {
        const text = JSON.stringify(value, null, cuts.length % 3)
        const points = [...new Set(cuts.map((c) => c % (text.length + 1)))].sort((a, b) => a - b)
        const pieces = [...points, text.length].map((p, i, all) => text.slice(i === 0 ? 0 : all[i - 1], p))
        const expected = JSON.parse(text)
        for (const partial of partials(pieces)) expect(grows(partial, expected), JSON.stringify(partial)).toBe(true)
        const whole = new PartialJson(128)
        whole.feed(text)
        const next = whole.next()
        // a bare number, true, false or null at the top only shows once something follows it
        if (typeof expected === "object" && expected !== null || typeof expected === "string") expect(next?.value).toEqual(expected)
      }),
      { numRuns: 500 }
    ))
})
