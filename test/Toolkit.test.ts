/** Toolkit: handlers typed from the tools, provided as services that generateText requires. */
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Layer, Schema } from "effect"
import { LanguageModel, Message, Tool, Toolkit } from "../src/index.js"
import * as Testing from "../src/Testing.js"

const Get = Tool.make("get", { parameters: Schema.Struct({ key: Schema.String }), success: Schema.Struct({ value: Schema.Number }) })
const Put = Tool.make("put", { parameters: Schema.Struct({ key: Schema.String, value: Schema.Number }), failure: Schema.Literal("read-only") })
const Kit = Toolkit.make(Get, Put)

class Store extends Context.Tag("test/Store")<Store, Map<string, number>>() {}

describe("Toolkit", () => {
  it("lists the tools by name and their definitions in order", () => {
    expect(Object.keys(Kit.tools)).toEqual(["get", "put"])
    expect(Kit.tools.get).toBe(Get)
    expect(Kit.definitions).toEqual([Get.definition, Put.definition])
  })

  it("refuses two tools of one name", () => {
    expect(() => Toolkit.make(Get, Tool.make("get", { parameters: Schema.Struct({}) }))).toThrow("two tools are named get")
  })

  it.effect("tools named toString, constructor and __proto__ are tools like any other, found by the loop", () =>
    Effect.gen(function*() {
      const named = <const N extends string>(name: N) => Tool.make(name, { parameters: Schema.Struct({}), success: Schema.String })
      const Odd = Toolkit.make(named("toString"), named("constructor"), named("__proto__"), named("hasOwnProperty"))
      expect(Object.keys(Odd.tools)).toEqual(["toString", "constructor", "__proto__", "hasOwnProperty"])
      expect(Odd.tools.__proto__.name).toBe("__proto__")
      expect(() => Toolkit.make(named("__proto__"), named("__proto__"))).toThrow("two tools are named __proto__")
      const handlers = Odd.toLayer({
        toString: () => Effect.succeed("s"),
        constructor: () => Effect.succeed("c"),
        ["__proto__"]: () => Effect.succeed("p"),
        hasOwnProperty: () => Effect.succeed("h")
      })
      const calls = ["toString", "constructor", "__proto__", "hasOwnProperty", "valueOf"].map((name, i) => ({ id: `c${i}`, name, arguments: "{}" }))
      const result = yield* LanguageModel.generateText({ request: Message.request("x"), toolkit: Odd }).pipe(
        Effect.provide(Layer.merge(Testing.mockModel([{ toolCalls: calls }, "done"]), handlers))
      )
      expect(result.steps[0]!.toolResults.map((r) => [r.name, r.isError, r.content])).toEqual([
        ["toString", false, "\"s\""],
        ["constructor", false, "\"c\""],
        ["__proto__", false, "\"p\""],
        ["hasOwnProperty", false, "\"h\""],
        ["valueOf", true, expect.stringContaining("no tool named")]
      ])
    }))

  it.effect("a handler's requirements become the layer's; generateText finds each handler by its tool's name", () =>
    Effect.gen(function*() {
      const handlers: Layer.Layer<Tool.Handler<"get"> | Tool.Handler<"put">, never, Store> = Kit.toLayer({
        get: ({ key }) => Effect.map(Store, (store) => ({ value: store.get(key) ?? 0 })),
        put: ({ key, value }) => (key === "locked" ? Effect.fail("read-only" as const) : Effect.map(Store, (store) => void store.set(key, value)))
      })
      const store = new Map([["a", 1]])
      const result = yield* LanguageModel.generateText({ request: Message.request("x"), toolkit: Kit }).pipe(
        Effect.provide(Layer.mergeAll(
          Testing.mockModel([{ toolCalls: [{ name: "put", params: { key: "b", value: 2 } }, { name: "get", params: { key: "a" } }, { name: "put", params: { key: "locked", value: 0 } }] }, "ok"]),
          handlers.pipe(Layer.provide(Layer.succeed(Store, store)))
        ))
      )
      expect(store.get("b")).toBe(2)
      expect(result.steps[0]!.toolResults.map((r) => [r.isError, r.content])).toEqual([[false, "null"], [false, "{\"value\":1}"], [true, "\"read-only\""]])
    }))

  it("types: handler names and parameters come from the tools; generateText requires the handlers", () => {
    // @ts-expect-error a handler is missing
    Kit.toLayer({ get: () => Effect.succeed({ value: 1 }) })
    Kit.toLayer({
      // @ts-expect-error the success must be the tool's
      get: () => Effect.succeed({ value: "one" }),
      put: () => Effect.void
    })
    Kit.toLayer({
      get: ({ key }) => Effect.succeed({ value: key.length }),
      // @ts-expect-error a failure not of the tool's failure schema
      put: () => Effect.fail("other")
    })
    const program = LanguageModel.generateText({ request: Message.request("x"), toolkit: Kit })
    const requires: Effect.Effect<unknown, unknown, LanguageModel.LanguageModel | Tool.Handler<"get"> | Tool.Handler<"put">> = program
    // @ts-expect-error without the handlers it cannot run
    const cannot: Effect.Effect<unknown, unknown, LanguageModel.LanguageModel> = program
    void requires
    void cannot
  })
})
