/** Tool: the definition a request carries, and the decoding of a model's arguments. */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, JSONSchema, Schema } from "effect"
import { Tool } from "../src/index.js"

const Search = Tool.make("search", {
  description: "Searches the web",
  parameters: Schema.Struct({
    query: Schema.String,
    limit: Schema.optional(Schema.Number),
    filters: Schema.optional(Schema.Array(Schema.Struct({ field: Schema.String, value: Schema.optional(Schema.String) }))),
    since: Schema.optional(Schema.NullOr(Schema.String)),
    page: Schema.optionalWith(Schema.Number, { default: () => 1 }),
    sort: Schema.optional(Schema.Union(
      Schema.Struct({ kind: Schema.Literal("date"), order: Schema.optional(Schema.Literal("asc", "desc")) }),
      Schema.Struct({ kind: Schema.Literal("score") })
    ))
  })
})

const decode = (text: string) => Effect.runSync(Effect.either(Tool.decodeParameters(Search, text)))

describe("Tool.make", () => {
  it("carries JSONSchema.make(parameters), strict, and the description; success defaults to Unknown, failure to Never", () => {
    expect(Search.definition).toEqual({
      name: "search",
      description: "Searches the web",
      parameters: JSONSchema.make(Search.parameters),
      strict: true
    })
    expect(Search.success).toBe(Schema.Unknown)
    expect(Search.failure).toBe(Schema.Never)
    const bare = Tool.make("bare", { parameters: Schema.Struct({}) })
    expect("description" in bare.definition).toBe(false)
  })
})

describe("Tool.decodeParameters", () => {
  it("decodes JSON arguments with the Schema (defaults applied)", () => {
    expect(decode("{\"query\":\"effect\"}")).toEqual(Either.right({ query: "effect", page: 1 }))
  })

  it("reads null on an optional, non-nullable key as absent, at any depth, and keeps it where the Schema allows null", () => {
    const decoded = decode(JSON.stringify({
      query: "q",
      limit: null,
      page: null,
      filters: [{ field: "lang", value: null }],
      since: null,
      sort: { kind: "date", order: null }
    }))
    expect(decoded).toEqual(Either.right({ query: "q", page: 1, filters: [{ field: "lang" }], since: null, sort: { kind: "date" } }))
  })

  it("a null on a required key is still an error", () => {
    const decoded = decode("{\"query\":null}")
    expect(Either.isLeft(decoded)).toBe(true)
    expect(Either.isLeft(decoded) && decoded.left).toContain("at query: Expected string, actual null")
  })

  it("names the problem: not JSON, or each issue with its path", () => {
    expect(decode("{\"query\":")).toMatchObject({ _tag: "Left", left: expect.stringContaining("the arguments of search are invalid: not valid JSON") })
    const both = decode("{\"limit\":\"ten\"}")
    expect(both).toMatchObject({ _tag: "Left", left: expect.stringContaining("at query: is missing") })
    expect(both).toMatchObject({ _tag: "Left", left: expect.stringContaining("at limit:") })
  })
})

describe("Tool.dynamic", () => {
  const schema = { type: "object", properties: { path: { type: "string" } }, required: ["path"] }
  const read = Tool.dynamic("read", {
    description: "Reads a file",
    parameters: schema,
    validate: (params) => (typeof (params as { path?: unknown }).path === "string" ? [] : ["path must be a string"]),
    source: "the tool \"read\" of the MCP server \"files\"",
    handle: (params) => Effect.succeed({ isError: false, content: `read ${(params as { path: string }).path}` })
  })

  it("carries the JSON Schema as given, not strict unless asked, and its source", () => {
    expect(read.definition).toEqual({ name: "read", description: "Reads a file", parameters: schema, strict: false })
    expect(Tool.isDynamic(read)).toBe(true)
    expect(Tool.isDynamic(Search)).toBe(false)
    expect(read.source).toBe("the tool \"read\" of the MCP server \"files\"")
    expect(Tool.dynamic("s", { parameters: schema, strict: true, handle: () => Effect.succeed({ isError: false, content: "" }) }).definition.strict).toBe(true)
  })

  it("checks the arguments with its validator; without one, any JSON object passes", () => {
    expect(Effect.runSync(Effect.either(Tool.decodeParameters(read, "{\"path\":\"a.md\"}")))).toEqual(Either.right({ path: "a.md" }))
    expect(Effect.runSync(Effect.either(Tool.decodeParameters(read, "{\"path\":3}")))).toEqual(
      Either.left("the arguments of read are invalid: path must be a string")
    )
    const open = Tool.dynamic("open", { parameters: schema, handle: () => Effect.succeed({ isError: false, content: "" }) })
    expect(Effect.runSync(Effect.either(Tool.decodeParameters(open, "{\"anything\":[1]}")))).toEqual(Either.right({ anything: [1] }))
  })
})
