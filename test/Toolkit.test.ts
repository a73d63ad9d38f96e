/** Toolkit: handlers typed from the tools, provided as services that generateText requires. */
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Layer, Logger, Schema, Stream } from "effect"
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

const dynamicTool = (name: string, source: string, reply: Tool.Result = { isError: false, content: `${name} ran` }) =>
  Tool.dynamic(name, { parameters: { type: "object" }, source, handle: () => Effect.succeed(reply) })

/** A toolkit whose list changes, as an MCP server's does: `change` swaps it, `refresh` counts the loop's calls. */
const changing = (initial: ReadonlyArray<Tool.Dynamic>) => {
  let tools = initial
  let definitions = tools.map((t) => t.definition)
  const refreshed = { count: 0 }
  const kit: Toolkit.Toolkit<Tool.Dynamic> = {
    [Toolkit.TypeId]: Toolkit.TypeId,
    get tools() {
      return Object.fromEntries(tools.map((t) => [t.name, t]))
    },
    get definitions() {
      return definitions
    },
    toLayer: () => Layer.empty as Layer.Layer<never>,
    refresh: Effect.sync(() => void refreshed.count++)
  }
  return {
    kit,
    refreshed,
    change: (next: ReadonlyArray<Tool.Dynamic>) => {
      tools = next
      definitions = next.map((t) => t.definition)
    }
  }
}

describe("Toolkit with dynamic tools", () => {
  it.effect("a dynamic tool needs no handler; its result, value and error reach the loop's ToolResult", () =>
    Effect.gen(function*() {
      const failure = { reason: "gone" }
      const Mixed = Toolkit.make(Get, dynamicTool("shell", "a test", { isError: true, content: "exit 1", value: { code: 1 }, error: failure }))
      // the dynamic tool is not among the handlers
      const handlers = Mixed.toLayer({ get: () => Effect.succeed({ value: 7 }) })
      const result = yield* LanguageModel.generateText({ request: Message.request("go"), toolkit: Mixed, maxSteps: 2 }).pipe(
        Effect.provide(Testing.mockModel([{ toolCalls: [{ name: "get", params: { key: "a" } }, { name: "shell", params: {} }] }, "done"])),
        Effect.provide(handlers)
      )
      expect(result.steps[0]!.toolResults).toEqual([
        { id: "call_1_1", name: "get", isError: false, content: "{\"value\":7}", value: { value: 7 } },
        { id: "call_1_2", name: "shell", isError: true, content: "exit 1", value: { code: 1 }, error: failure }
      ])
      const onlyDynamic = Toolkit.make(dynamicTool("shell", "a test"))
      // types: a toolkit of dynamic tools requires nothing but the model
      const program: Effect.Effect<unknown, unknown, LanguageModel.LanguageModel> = LanguageModel.generateText({ request: Message.request("x"), toolkit: onlyDynamic })
      void program
    }))

  it.effect("merge joins toolkits in order and refuses a clash, naming both", () =>
    Effect.gen(function*() {
      const merged = yield* Toolkit.merge(Kit, Toolkit.make(dynamicTool("search", "the tool \"search\" of the MCP server \"web\"")))
      expect(merged.definitions.map((d) => d.name)).toEqual(["get", "put", "search"])
      expect(merged.tools.get).toBe(Get)
      const clash = yield* Effect.flip(Toolkit.merge(Kit, Toolkit.make(dynamicTool("put", "the tool \"put\" of the MCP server \"web\""))))
      expect(clash).toMatchObject({ _tag: "ToolNameClashError", name: "put", first: "the tool \"put\" of toolkit 1", second: "the tool \"put\" of the MCP server \"web\"" })
      expect(clash.message).toBe("two tools are named \"put\": the tool \"put\" of toolkit 1, and the tool \"put\" of the MCP server \"web\"")
      // the merged toolkit's layer is the handlers of its typed tools
      const result = yield* LanguageModel.generateText({ request: Message.request("go"), toolkit: merged, maxSteps: 2 }).pipe(
        Effect.provide(Testing.mockModel([{ toolCalls: [{ name: "get", params: { key: "k" } }, { name: "search", params: {} }] }, "done"])),
        Effect.provide(merged.toLayer({ get: () => Effect.succeed({ value: 1 }), put: () => Effect.void }))
      )
      expect(result.steps[0]!.toolResults.map((r) => r.content)).toEqual(["{\"value\":1}", "search ran"])
    }))

  it.effect("the loop runs refresh before each step and offers the list as it is then; a later clash is left out and logged", () =>
    Effect.gen(function*() {
      const web = changing([dynamicTool("search", "the web server's search")])
      const merged = yield* Toolkit.merge(Kit, web.kit)
      const offered: Array<ReadonlyArray<string>> = []
      const warnings: Array<string> = []
      const capture = Logger.add(Logger.make(({ logLevel, message }) => {
        if (logLevel._tag === "Warning") warnings.push(String(message))
      }))
      const script = Testing.mockModel({
        steps: (request, n) => {
          offered.push((request.tools ?? []).map((t) => t.name))
          if (n === 0) {
            web.change([dynamicTool("search", "the web server's search"), dynamicTool("get", "the web server's get"), dynamicTool("fetch", "the web server's fetch")])
            return { toolCalls: [{ name: "search", params: {} }] }
          }
          return n === 1 ? { toolCalls: [{ name: "fetch", params: {} }] } : "done"
        }
      })
      const handlers = Kit.toLayer({ get: () => Effect.succeed({ value: 1 }), put: () => Effect.void })
      const result = yield* LanguageModel.generateText({ request: Message.request("go"), toolkit: merged, maxSteps: 3 }).pipe(
        Effect.provide(script),
        Effect.provide(handlers),
        Effect.provide(capture)
      )
      expect(offered).toEqual([["get", "put", "search"], ["get", "put", "search", "fetch"], ["get", "put", "search", "fetch"]])
      expect(result.steps[1]!.toolResults[0]!.content).toBe("fetch ran")
      expect(web.refreshed.count).toBe(3)
      expect(warnings).toEqual(["Toolkit.merge: two tools are named \"get\": the tool \"get\" of toolkit 1, and the web server's get; the second is not offered"])
      // streamText runs it before each step too
      yield* Stream.runDrain(LanguageModel.streamText({ request: Message.request("go"), toolkit: merged, maxSteps: 2 }).pipe(
        Stream.provideLayer(Layer.mergeAll(Testing.mockModel([{ toolCalls: [{ name: "search", params: {} }] }, "done"]), handlers))
      ))
      expect(web.refreshed.count).toBe(5)
    }))
})
