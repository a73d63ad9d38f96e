/**
 * Decoding what a model wrote (tool arguments, structured output) with a Schema: JSON first,
 * then `null` on optional keys read as absent, then the Schema, with every issue in words.
 * A model's output is untrusted input: nesting past `maxJsonDepth` is an issue, not a stack
 * overflow, and an issue quotes at most `maxIssueChars` of what it found.
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as AST from "effect/SchemaAST"
import type * as Schema from "effect/Schema"
import * as SchemaRuntime from "effect/Schema"

/** Whether a value of the encoded side `ast` may be `null`. */
const acceptsNull = (ast: AST.AST): boolean => {
  switch (ast._tag) {
    case "Literal":
      return ast.literal === null
    case "UnknownKeyword":
    case "AnyKeyword":
      return true
    case "Union":
      return ast.types.some(acceptsNull)
    case "Refinement":
      return acceptsNull(ast.from)
    case "Transformation":
      return acceptsNull(ast.from)
    case "Suspend":
      return acceptsNull(ast.f())
    default:
      return false
  }
}

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

const resolve = (ast: AST.AST): AST.AST => {
  let current = ast
  for (;;) {
    if (current._tag === "Suspend") current = current.f()
    else if (current._tag === "Refinement" || current._tag === "Transformation") current = current.from
    else return current
  }
}

/** Sets an own property: a key such as `__proto__` is data here, never the prototype. */
const setOwn = (target: Record<string, unknown>, key: string, value: unknown): void => {
  Object.defineProperty(target, key, { value, writable: true, enumerable: true, configurable: true })
}

/**
 * Thrown from deep in `strip` for a `__proto__` key that a record's index signature would
 * copy: Schema's decoding assigns keys, so the key would become the decoded object's prototype.
 */
class ProtoKey {}

/** The issue for it. */
const protoKeyIssue = "a \"__proto__\" key is not accepted in a record: decoding would make its value the object's prototype"

const stripObject = (literals: ReadonlyArray<AST.TypeLiteral>, value: Record<string, unknown>): Record<string, unknown> => {
  const out: Record<string, unknown> = {}
  for (const key of Object.keys(value)) {
    const v = value[key]
    const signatures = literals.flatMap((literal) => literal.propertySignatures.filter((s) => s.name === key))
    if (signatures.length === 0) {
      const index = literals.flatMap((literal) => literal.indexSignatures)
      if (index.length > 0 && key === "__proto__") throw new ProtoKey()
      setOwn(out, key, index.length === 0 ? v : strip(index.length === 1 ? index[0]!.type : AST.Union.make(index.map((s) => s.type)), v))
      continue
    }
    // strict mode has the model send null for a property it leaves out
    if (v === null && signatures.every((s) => s.isOptional && !acceptsNull(s.type))) continue
    setOwn(out, key, strip(signatures.length === 1 ? signatures[0]!.type : AST.Union.make(signatures.map((s) => s.type)), v))
  }
  return out
}

/** A union's members, nested unions flattened (`optional(Union(A, B))` is `Union(Union(A, B), undefined)`). */
const membersOf = (union: AST.Union): Array<AST.AST> =>
  union.types.flatMap((member) => {
    const resolved = resolve(member)
    return resolved._tag === "Union" ? membersOf(resolved) : [resolved]
  })

const strip = (ast: AST.AST, value: unknown): unknown => {
  if (value === null || typeof value !== "object") return value
  const node = resolve(ast)
  switch (node._tag) {
    case "TypeLiteral":
      return isRecord(value) ? stripObject([node], value) : value
    case "TupleType": {
      if (!Array.isArray(value)) return value
      const rest = node.rest[0]?.type
      return value.map((v, i) => {
        const element = node.elements[i]?.type ?? rest
        return element === undefined ? v : strip(element, v)
      })
    }
    case "Union": {
      const members = membersOf(node)
      if (isRecord(value)) {
        const literals = members.filter((m): m is AST.TypeLiteral => m._tag === "TypeLiteral")
        return literals.length === 0 ? value : stripObject(literals, value)
      }
      const tuple = members.find((m): m is AST.TupleType => m._tag === "TupleType")
      return tuple === undefined ? value : strip(tuple, value)
    }
    default:
      return value
  }
}

/**
 * `value` with every `null` that sits on a key the Schema declares optional and not nullable
 * removed, at any depth. Strict JSON Schema (OpenAI's) makes every property required and the
 * optional ones nullable, so a model says "absent" with `null`.
 */
export const nullsAsAbsent = (schema: Schema.Schema.AnyNoContext, value: unknown): unknown => {
  if (value === null || typeof value !== "object") return value
  let encoded = encodedOf.get(schema.ast)
  if (encoded === undefined) encodedOf.set(schema.ast, encoded = AST.encodedAST(schema.ast))
  return strip(encoded, value)
}

// the encoded side of a Schema is a new AST each time it is computed
const encodedOf = new WeakMap<AST.AST, AST.AST>()

/** A path as a model reads it: `stops[0].hours`, `["odd key"]`. */
const pathText = (path: ReadonlyArray<PropertyKey>): string =>
  path.map((key, i) => {
    if (typeof key === "number") return `[${key}]`
    const name = String(key)
    if (/^[A-Za-z_$][\w$]*$/.test(name)) return i === 0 ? name : `.${name}`
    return `[${JSON.stringify(name)}]`
  }).join("")

/**
 * The deepest nesting of objects and arrays decoded: deeper JSON is refused as an issue.
 * Decoding a recursive Schema recurses once or more per level, and the stack runs out some
 * thousands of levels down; serde_json refuses past 128 by default, as does this.
 */
export const maxJsonDepth = 128

/** The most characters of one issue sent back to a model or put in an error: a wrong value may be megabytes. */
export const maxIssueChars = 300

/** The most issues listed; the rest are counted. */
export const maxIssues = 20

/** Whether `value` nests objects and arrays deeper than `max` (a scalar is 0, `{}` is 1); no recursion. */
export const deeperThan = (value: unknown, max: number): boolean => {
  const pending: Array<readonly [unknown, number]> = [[value, 0]]
  while (pending.length > 0) {
    const [node, depth] = pending.pop()!
    if (typeof node !== "object" || node === null) continue
    if (depth + 1 > max) return true
    for (const child of Array.isArray(node) ? node : Object.values(node)) {
      if (typeof child === "object" && child !== null) pending.push([child, depth + 1])
    }
  }
  return false
}

/** The issue for JSON nested past `maxJsonDepth`. */
export const tooDeep = `the JSON is nested deeper than ${maxJsonDepth} levels of objects and arrays`

/** One issue at most `maxIssueChars` long, saying so when cut. */
const bounded = (issue: string): string =>
  issue.length <= maxIssueChars ? issue : `${issue.slice(0, maxIssueChars)}… (cut at ${maxIssueChars} of ${issue.length} characters)`

/** Issues bounded in length and number. */
export const boundedIssues = (issues: ReadonlyArray<string>): Array<string> => {
  const shown = issues.slice(0, maxIssues).map(bounded)
  if (issues.length > maxIssues) shown.push(`… and ${issues.length - maxIssues} more issues`)
  return shown
}

/** The issues of a parse error, one line each, with the path where there is one; bounded. */
export const issuesOf = (error: ParseResult.ParseError): Array<string> =>
  boundedIssues(
    ParseResult.ArrayFormatter.formatErrorSync(error).map((issue) =>
      issue.path.length === 0 ? issue.message : `at ${pathText(issue.path)}: ${issue.message}`
    )
  )

/** Text without a Markdown code fence around it (```json … ```), as some models add. */
export const stripFence = (text: string): string => {
  const trimmed = text.trim()
  const fence = /^```[\w-]*\s*\n([\s\S]*?)\n?```$/.exec(trimmed)
  return fence === null ? trimmed : fence[1]!.trim()
}

/** Parses a model's JSON text: the value, or the issue (not JSON, or nested past `maxJsonDepth`). */
export const parseJson = (text: string): Either.Either<unknown, string> => {
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (error) {
    return Either.left(bounded(`not valid JSON: ${error instanceof Error ? error.message : String(error)}`))
  }
  return deeperThan(json, maxJsonDepth) ? Either.left(tooDeep) : Either.right(json)
}

/** Decodes JSON text with `schema`; on failure, the issues in words. */
export const decodeJson = <A, I>(schema: Schema.Schema<A, I, never>, text: string): Either.Either<A, ReadonlyArray<string>> =>
  Either.match(parseJson(stripFence(text)), {
    onLeft: (issue) => Either.left([issue]),
    onRight: (json) => decodeValue(schema, json)
  })

/** Decodes a parsed JSON value with `schema` (nulls on optional keys read as absent). */
export const decodeValue = <A, I>(schema: Schema.Schema<A, I, never>, json: unknown): Either.Either<A, ReadonlyArray<string>> => {
  if (deeperThan(json, maxJsonDepth)) return Either.left([tooDeep])
  try {
    return Either.mapLeft(
      SchemaRuntime.decodeUnknownEither(schema, { errors: "all", onExcessProperty: "ignore" })(
        nullsAsAbsent(schema as Schema.Schema.AnyNoContext, json)
      ),
      issuesOf
    )
  } catch (error) {
    if (error instanceof ProtoKey) return Either.left([protoKeyIssue])
    // the bound leaves the stack room to spare; a caller already deep in it may still run out
    if (error instanceof RangeError) return Either.left([`the value is nested too deeply to decode (${error.message})`])
    throw error
  }
}

/** `decodeJson` as an Effect whose failure is one sentence naming `what` and its issues. */
export const decodeJsonText = <A, I>(schema: Schema.Schema<A, I, never>, text: string, what: string): Effect.Effect<A, string> =>
  Either.match(decodeJson(schema, text), {
    onLeft: (issues) => Effect.fail(`${what} are invalid: ${issues.join("; ")}`),
    onRight: Effect.succeed
  })
