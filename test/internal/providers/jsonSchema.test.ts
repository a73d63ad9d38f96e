import { describe, expect, it } from "@effect/vitest"
import { Effect, JSONSchema, Schema } from "effect"
import * as fc from "fast-check"
import { rootObject, toGemini, toStrict } from "../../../src/internal/providers/jsonSchema.js"
import { Tool } from "../../../src/index.js"

class Person extends Schema.Class<Person>("Person")({
  name: Schema.String,
  age: Schema.optional(Schema.Number),
  nick: Schema.NullOr(Schema.String),
  kind: Schema.Literal("a", "b"),
  tags: Schema.Array(Schema.String.pipe(Schema.minLength(2))),
  pet: Schema.optional(Schema.Union(Schema.Struct({ cat: Schema.String }), Schema.Struct({ dog: Schema.Number })))
}) {}

type Json = Record<string, any>

/** Every object of a strict schema is closed and requires all its properties. */
const everyObjectStrict = (node: unknown): boolean => {
  if (Array.isArray(node)) return node.every(everyObjectStrict)
  if (typeof node !== "object" || node === null) return true
  const n = node as Json
  if (n.type === "object" || (Array.isArray(n.type) && n.type.includes("object"))) {
    if (n.additionalProperties !== false) return false
    if (JSON.stringify([...(n.required ?? [])].sort()) !== JSON.stringify(Object.keys(n.properties ?? {}).sort())) return false
  }
  return Object.values(n).every(everyObjectStrict)
}

describe("jsonSchema", () => {
  it("rootObject: a JSONSchema.make root reference is inlined, $schema dropped, definitions kept", () => {
    const root = rootObject(JSONSchema.make(Person))
    expect(root.$schema).toBeUndefined()
    expect(root.$ref).toBeUndefined()
    expect(root.type).toBe("object")
    expect((root.$defs as Json).Person).toBeDefined()
  })

  it("toStrict: optional properties required and nullable, every object closed, unsupported keywords dropped", () => {
    const { schema, strict } = toStrict(JSONSchema.make(Person))
    expect(strict).toBe(true)
    expect(schema.required).toEqual(["name", "age", "nick", "kind", "tags", "pet"])
    const properties = schema.properties as Json
    expect(properties.age).toEqual({ type: ["number", "null"] })
    expect(properties.nick).toEqual({ anyOf: [{ type: "string" }, { type: "null" }] }) // already nullable: unchanged
    expect(properties.kind).toEqual({ type: "string", enum: ["a", "b"] })
    expect(properties.tags.items.minLength).toBeUndefined() // not in strict mode's subset
    expect(properties.pet.anyOf).toHaveLength(3)
    expect(properties.pet.anyOf[2]).toEqual({ type: "null" })
    expect(everyObjectStrict(schema)).toBe(true)
  })

  it("toStrict: an object with properties but no additionalProperties is closed", () => {
    const { schema, strict } = toStrict({ type: "object", properties: { a: { type: "string" } } })
    expect(strict).toBe(true)
    expect(schema).toEqual({ type: "object", properties: { a: { type: ["string", "null"] } }, required: ["a"], additionalProperties: false })
  })

  it.each([
    ["a record", JSONSchema.make(Schema.Struct({ r: Schema.Record({ key: Schema.String, value: Schema.Number }) }))],
    ["a tuple", JSONSchema.make(Schema.Struct({ t: Schema.Tuple(Schema.String, Schema.Number) }))],
    ["an unknown value", JSONSchema.make(Schema.Struct({ u: Schema.Unknown }))],
    ["a free-form object", { type: "object" }],
    ["allOf", { type: "object", properties: { a: { allOf: [{ type: "string" }] } } }],
    ["a root that is not an object", JSONSchema.make(Schema.Array(Schema.String))],
    ["a root union", JSONSchema.make(Schema.Union(Schema.Struct({ a: Schema.String }), Schema.Struct({ b: Schema.String })))]
  ])("toStrict: %s cannot be strict: the schema goes as it is, strict false", (_, input) => {
    const { schema, strict } = toStrict(input)
    expect(strict).toBe(false)
    expect(schema).toEqual(rootObject(input))
  })

  it("toStrict is idempotent on strict schemas", () => {
    const once = toStrict(JSONSchema.make(Person)).schema
    expect(toStrict(once)).toEqual({ schema: once, strict: true })
  })

  it.effect("what strict mode makes a model write (null for an optional property) decodes through a tool's parameters; real nulls are kept", () =>
    Effect.gen(function* () {
      const value = { name: "x", age: null, nick: null, kind: "a", tags: [], pet: null }
      expect(() => Schema.decodeUnknownSync(Person)(value)).toThrow()
      const decoded = yield* Tool.decodeParameters(Tool.make("person", { parameters: Person }), JSON.stringify(value))
      expect(decoded).toEqual(Schema.decodeUnknownSync(Person)({ name: "x", nick: null, kind: "a", tags: [] }))
    }))

  it("toGemini: root inlined, the subset kept, tuples as prefixItems, const as enum, boolean enums and unknown keywords dropped", () => {
    const schema = toGemini(JSONSchema.make(Schema.Struct({
      t: Schema.Tuple(Schema.String, Schema.Number),
      b: Schema.Literal(true),
      s: Schema.String.pipe(Schema.minLength(2)),
      r: Schema.Record({ key: Schema.String, value: Schema.Number })
    })))
    const properties = schema.properties as Json
    expect(schema.$schema).toBeUndefined()
    expect(schema.additionalProperties).toBe(false)
    expect(properties.t).toEqual({ type: "array", minItems: 2, prefixItems: [{ type: "string" }, { type: "number" }] })
    expect(properties.b).toEqual({ type: "boolean" })
    expect(properties.s.minLength).toBeUndefined()
    expect(properties.r.additionalProperties).toEqual({ type: "number" })
    expect(toGemini({ type: "object", properties: { k: { const: "x" } } }).properties).toEqual({ k: { enum: ["x"] } })
    // a reference takes no siblings but $-keywords
    expect(toGemini({ type: "object", properties: { p: { $ref: "#/definitions/P", description: "d" } }, definitions: { P: { type: "string" } } }))
      .toEqual({ type: "object", properties: { p: { $ref: "#/$defs/P" } }, $defs: { P: { type: "string" } } })
  })

  // generated schemas: objects, arrays, unions, scalars, with optional properties and noise keywords
  const scalar = fc.constantFrom<Json>({ type: "string" }, { type: "number", minimum: 0 }, { type: "integer" }, { type: "boolean" }, { type: "string", enum: ["x", "y"] }, { type: "string", format: "uri" }, { type: "string", maxLength: 3 })
  const { node } = fc.letrec<{ node: Json }>((tie) => ({
    node: fc.oneof(
      { depthSize: "small", withCrossShrink: true },
      scalar,
      fc.record({ type: fc.constant("array"), items: tie("node") }),
      fc.record({ anyOf: fc.array(tie("node"), { minLength: 1, maxLength: 3 }) }),
      fc.dictionary(fc.stringMatching(/^[a-z]{1,4}$/), tie("node"), { maxKeys: 4 }).chain((properties) =>
        fc.subarray(Object.keys(properties)).chain((required) =>
          fc.constantFrom(false, undefined).map((additional) => ({
            type: "object",
            properties,
            required,
            ...(additional === undefined ? {} : { additionalProperties: additional })
          }))
        )
      )
    )
  }))
  const rootSchema = node.filter((n) => n.type === "object")

  it("property: a strictable schema comes out with every object closed and fully required; optional properties accept null", () => {
    fc.assert(fc.property(rootSchema, (schema) => {
      const result = toStrict(schema)
      expect(result.strict).toBe(true) // every generated schema has a strict form
      expect(everyObjectStrict(result.schema)).toBe(true)
      for (const key of Object.keys(schema.properties)) {
        if ((schema.required as Array<string>).includes(key)) continue
        const p = (result.schema.properties as Json)[key]
        expect(p.type === "null" || (Array.isArray(p.type) && p.type.includes("null")) || p.anyOf?.some((b: Json) => b.type === "null")).toBe(true)
      }
      // and toStrict never fails, nor changes a schema it cannot make strict
      const open = { ...schema, properties: { ...schema.properties, extra: { type: "object" } } }
      expect(toStrict(open)).toEqual({ schema: open, strict: false })
    }))
  })

  it("property: toGemini keeps only the documented subset", () => {
    const allowed = new Set(["$id", "$defs", "$ref", "$anchor", "type", "format", "title", "description", "enum", "items", "prefixItems", "minItems", "maxItems", "minimum", "maximum", "anyOf", "oneOf", "properties", "additionalProperties", "required", "propertyOrdering"])
    const keysOf = (n: unknown, inProperties = false): Array<string> => {
      if (Array.isArray(n)) return n.flatMap((x) => keysOf(x))
      if (typeof n !== "object" || n === null) return []
      // the keys of a `properties` object are names, not keywords
      return Object.entries(n).flatMap(([k, v]) => [...(inProperties ? [] : [k]), ...keysOf(v, k === "properties" && !inProperties)])
    }
    fc.assert(fc.property(rootSchema, (schema) => {
      for (const key of keysOf(toGemini(schema))) expect(allowed.has(key)).toBe(true)
    }))
  })
})
