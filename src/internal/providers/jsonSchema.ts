/**
 * JSON Schema as each API accepts it. Tool parameters and response formats arrive as
 * `JSONSchema.make` output (a `$ref` root into `$defs`, `$schema`, `anyOf`, draft-07 tuples);
 * each API gets the dialect it takes, written once here:
 * - OpenAI strict mode (`toStrict`): every property required, optional ones nullable,
 *   `additionalProperties: false` on every object, unsupported keywords dropped; a schema
 *   that cannot be made strict without changing what it accepts is sent as it is, non-strict.
 * - Gemini (`toGemini`): the JSON Schema subset `parametersJsonSchema`/`responseJsonSchema` take.
 * - Everyone (`rootObject`): the root as an object schema, with `$schema` dropped.
 */
import type * as Message from "../../Message.js"

type Json = Record<string, unknown>

const isObject = (u: unknown): u is Json => typeof u === "object" && u !== null && !Array.isArray(u)

/** The definition a local `$ref` (`#/$defs/X` or `#/definitions/X`) points at. */
const resolveRef = (root: Json, ref: string): Json | undefined => {
  const match = /^#\/(\$defs|definitions)\/(.+)$/.exec(ref)
  if (match === null) return undefined
  const defs = root[match[1]!]
  const name = match[2]!.replace(/~1/g, "/").replace(/~0/g, "~")
  const target = isObject(defs) ? defs[name] : undefined
  return isObject(target) ? target : undefined
}

/**
 * The schema with a root `$ref` replaced by its definition (APIs want an object schema at the
 * root; `JSONSchema.make` of a named schema gives a reference) and `$schema` dropped. The
 * definitions stay, for references further in.
 */
export const rootObject = (schema: Message.JsonSchema): Json => {
  const { $schema: _, ...rest } = schema as Json
  if (typeof rest.$ref !== "string") return rest
  const target = resolveRef(rest, rest.$ref)
  if (target === undefined) return rest
  const { $ref: __, ...others } = rest
  return { ...target, ...others }
}

/** Whether the root is an object schema, as a tool's parameters must be. */
export const isObjectSchema = (schema: Json): boolean =>
  schema.type === "object" || (Array.isArray(schema.type) && schema.type.includes("object")) ||
  (schema.type === undefined && isObject(schema.properties))

// ---------------------------------------------------------------------------
// OpenAI strict mode
// ---------------------------------------------------------------------------

/** The string formats strict mode takes; others are dropped (the value is still checked by the caller's Schema). */
const strictFormats = new Set(["date-time", "time", "date", "duration", "email", "hostname", "ipv4", "ipv6", "uuid"])

/** Keywords kept as they are. */
const strictKept = new Set([
  "type",
  "enum",
  "const",
  "description",
  "title",
  "pattern",
  "minimum",
  "maximum",
  "exclusiveMinimum",
  "exclusiveMaximum",
  "multipleOf",
  "minItems",
  "maxItems"
])

/** Keywords that change what a schema accepts and that strict mode lacks: the schema stays non-strict. */
const strictBlocking = new Set([
  "allOf",
  "not",
  "if",
  "then",
  "else",
  "patternProperties",
  "propertyNames",
  "unevaluatedProperties",
  "unevaluatedItems",
  "dependentSchemas",
  "dependentRequired",
  "dependencies",
  "prefixItems",
  "contains"
])

/** `schema` that also accepts `null`. */
const nullable = (schema: Json): Json => {
  const accepts = (s: unknown) => isObject(s) && (s.type === "null" || (Array.isArray(s.type) && s.type.includes("null")))
  if (accepts(schema)) return schema
  if (Array.isArray(schema.anyOf)) return schema.anyOf.some(accepts) ? schema : { ...schema, anyOf: [...schema.anyOf, { type: "null" }] }
  if (typeof schema.type === "string" && schema.enum === undefined && schema.const === undefined) {
    return { ...schema, type: [schema.type, "null"] }
  }
  return { anyOf: [schema, { type: "null" }] }
}

/** One schema node in strict form, or undefined when it cannot be made strict. */
const strictNode = (node: unknown): Json | undefined => {
  if (!isObject(node)) return undefined
  // strict mode takes a reference alone
  if (typeof node.$ref === "string") return { $ref: node.$ref }
  const out: Json = {}
  for (const [key, value] of Object.entries(node)) {
    if (strictBlocking.has(key)) return undefined
    if (key === "format") {
      if (typeof value === "string" && strictFormats.has(value)) out.format = value
    } else if (strictKept.has(key)) out[key] = value
    else if (key === "anyOf" || key === "oneOf") {
      if (!Array.isArray(value)) return undefined
      const branches: Array<Json> = []
      for (const branch of value) {
        const strict = strictNode(branch)
        if (strict === undefined) return undefined
        branches.push(strict)
      }
      // exactly-one is any-of for a value the model writes to a schema
      out.anyOf = [...((out.anyOf as Array<Json> | undefined) ?? []), ...branches]
    } else if (key === "items") {
      // a draft-07 tuple (`items: [...]`) has no strict form
      const items = strictNode(value)
      if (items === undefined) return undefined
      out.items = items
    } else if (key === "$defs" || key === "definitions") {
      if (!isObject(value)) return undefined
      const defs: Json = {}
      for (const [name, def] of Object.entries(value)) {
        const strict = strictNode(def)
        if (strict === undefined) return undefined
        defs[name] = strict
      }
      out.$defs = defs
    }
    // properties, required and additionalProperties are read below; the rest ($schema, $id,
    // default, examples, minLength, maxLength, additionalItems, …) only annotate or narrow
  }
  const isObjectType = node.type === "object" || (Array.isArray(node.type) && node.type.includes("object"))
  if (isObjectType || isObject(node.properties)) {
    const extra = node.additionalProperties
    if (extra !== undefined && extra !== false) return undefined // a record: strict objects are closed
    if (!isObject(node.properties) && extra !== false) return undefined // any object at all
    const required = new Set(Array.isArray(node.required) ? node.required : [])
    const properties: Json = {}
    for (const [name, property] of Object.entries(isObject(node.properties) ? node.properties : {})) {
      const strict = strictNode(property)
      if (strict === undefined) return undefined
      properties[name] = required.has(name) ? strict : nullable(strict)
    }
    if (out.type === undefined) out.type = "object"
    out.properties = properties
    out.required = Object.keys(properties)
    out.additionalProperties = false
  }
  // a node with no type constraint accepts anything, which strict mode cannot say
  if (out.type === undefined && out.enum === undefined && out.const === undefined && out.anyOf === undefined) return undefined
  return out
}

/**
 * The schema in OpenAI's strict form, or the schema as it is (root object, no `$schema`) with
 * `strict: false` when strict mode cannot express it: a record, a tuple, a free-form value,
 * `allOf`/`not`/conditionals, or a root that is not an object. Never fails.
 * With strict, an optional property becomes required and nullable: the model sends `null`
 * for it, which the library's decoding (`Tool.decodeParameters`, `generateObject`) reads as absent.
 */
export const toStrict = (schema: Message.JsonSchema): { readonly schema: Json; readonly strict: boolean } => {
  const root = rootObject(schema)
  const strict = isObjectSchema(root) ? strictNode(root) : undefined
  return strict === undefined || strict.anyOf !== undefined ? { schema: root, strict: false } : { schema: strict, strict: true }
}

/**
 * A schema and its `strict` flag: `strict: true` asks for OpenAI's strict mode, granted when
 * the schema can be made strict (see `toStrict`) and otherwise sent as `strict: false`, never
 * failing; without `strict`, the schema goes as it is.
 */
export const schemaFields = (
  field: "parameters" | "schema",
  schema: Message.JsonSchema,
  strict: boolean | undefined
): Record<string, unknown> => {
  if (strict !== true) return strict === undefined ? { [field]: rootObject(schema) } : { [field]: rootObject(schema), strict }
  const adapted = toStrict(schema)
  return { [field]: adapted.schema, strict: adapted.strict }
}

// ---------------------------------------------------------------------------
// Gemini
// ---------------------------------------------------------------------------

/** What `parametersJsonSchema`/`responseJsonSchema` read; the API documents the rest as unsupported. */
const geminiKept = new Set([
  "$id",
  "$anchor",
  "type",
  "format",
  "title",
  "description",
  "minItems",
  "maxItems",
  "minimum",
  "maximum",
  "required",
  "propertyOrdering"
])

const geminiNode = (node: unknown): unknown => {
  if (!isObject(node)) return node
  // "if $ref is set on a sub-schema, no other properties, except those starting with $, may be set"
  if (typeof node.$ref === "string") {
    const out: Json = {}
    for (const [key, value] of Object.entries(node)) if (key.startsWith("$") && key !== "$schema" && key !== "$defs") out[key] = value
    return out
  }
  const out: Json = {}
  for (const [key, value] of Object.entries(node)) {
    if (geminiKept.has(key)) out[key] = value
    else if (key === "enum") {
      // enums of strings and numbers only
      if (Array.isArray(value) && value.every((v) => typeof v === "string" || typeof v === "number")) out.enum = value
    } else if (key === "const") {
      if (typeof value === "string" || typeof value === "number") out.enum = [value]
    } else if (key === "anyOf" || key === "oneOf") {
      if (Array.isArray(value)) out[key] = value.map(geminiNode)
    } else if (key === "items") {
      // a draft-07 tuple is `prefixItems` in the dialect Gemini reads
      if (Array.isArray(value)) out.prefixItems = value.map(geminiNode)
      else out.items = geminiNode(value)
    } else if (key === "prefixItems") {
      if (Array.isArray(value)) out.prefixItems = value.map(geminiNode)
    } else if (key === "additionalProperties") {
      out.additionalProperties = isObject(value) ? geminiNode(value) : value
    } else if (key === "properties" || key === "$defs" || key === "definitions") {
      if (!isObject(value)) continue
      const mapped: Json = {}
      for (const [name, child] of Object.entries(value)) mapped[name] = geminiNode(child)
      out[key === "properties" ? "properties" : "$defs"] = mapped
    }
  }
  return out
}

/** The schema in the JSON Schema subset Gemini's `*JsonSchema` fields take. */
export const toGemini = (schema: Message.JsonSchema): Json => {
  const root = rootObject(schema)
  // references into `definitions` are rewritten with them, to `$defs`
  const rewritten = JSON.parse(JSON.stringify(root).replace(/"#\/definitions\//g, "\"#/$defs/")) as Json
  return geminiNode(rewritten) as Json
}
