/**
 * streamObject's work is linear in the reply, counted rather than timed: the characters
 * handed to `JSON.parse` (where every JSON reader of the reply ends, a partial parser's
 * strings and numbers included) add up to a bounded multiple of the reply, whether it comes
 * in a hundred deltas or in thousands, while partial values still arrive all along.
 */
import { afterEach, describe, expect, it, vi } from "@effect/vitest"
import { Chunk, Effect, Schema, Stream } from "effect"
import { LanguageModel, Message } from "../src/index.js"
import * as Testing from "../src/Testing.js"

const Catalog = Schema.Struct({ items: Schema.Array(Schema.Struct({ name: Schema.String, note: Schema.String, price: Schema.Number })) })

const catalog = (items: number) => ({
  items: Array.from({ length: items }, (_, i) => ({ name: `item ${i}`, note: `a note about item ${i}, long enough to matter`, price: i * 1.5 }))
})

/** The characters `JSON.parse` was given while `body` ran, and its result. */
const parsedChars = <A, E>(body: Effect.Effect<A, E>) =>
  Effect.suspend(() => {
    let chars = 0
    const parse = JSON.parse
    const spy = vi.spyOn(JSON, "parse").mockImplementation((text: string, reviver?: Parameters<typeof JSON.parse>[1]) => {
      chars += text.length
      return parse(text, reviver)
    })
    return Effect.map(Effect.ensuring(body, Effect.sync(() => spy.mockRestore())), (result) => ({ result, chars }))
  })

afterEach(() => {
  vi.restoreAllMocks()
})

describe("streamObject's work", () => {
  it.effect("the characters parsed stay within a fixed multiple of the reply, however many deltas carry it", () =>
    Effect.gen(function*() {
      const value = catalog(1200)
      const text = JSON.stringify(value)
      expect(text.length).toBeGreaterThan(100_000)
      for (const chunks of [100, 4000]) {
        const { chars, result } = yield* parsedChars(
          Stream.runCollect(LanguageModel.streamObject({ request: Message.request("list"), schema: Catalog })).pipe(
            Effect.provide(Testing.mockModel([{ text, chunks }]))
          )
        )
        const events = Chunk.toArray(result)
        const last = events.at(-1)
        expect(last?._tag === "Object" && last.value).toEqual(value)
        // partials keep coming as the reply grows, to its last part
        const partials = events.flatMap((e) => (e._tag === "Partial" ? [e.value as { items?: Array<unknown> }] : []))
        expect(partials.length, `${chunks} deltas`).toBeGreaterThan(20)
        expect(partials.at(-1)!.items?.length ?? 0).toBeGreaterThan(1000)
        // a re-parse of the whole text on every delta would be ~chunks/2 times the reply
        expect(chars, `${chunks} deltas: ${chars} characters parsed for a reply of ${text.length}`).toBeLessThan(12 * text.length)
      }
    }))
})
