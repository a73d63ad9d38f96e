/**
 * A `provider.json`'s text as JSON: strict, with no key given twice in one object, and errors
 * that give the line and column, never an excerpt of the text (it may hold keys).
 */
import * as Either from "effect/Either"
import { type Node as JsonNode, type ParseError as JsonParseError, parseTree, printParseErrorCode } from "jsonc-parser"
import { fail, jsonPathOf, type ProviderConfigError } from "./schema.js"

const lineAt = (text: string, offset: number): { readonly line: number; readonly column: number } => {
  const before = text.slice(0, offset)
  const lastBreak = before.lastIndexOf("\n")
  return { line: before.split("\n").length, column: offset - lastBreak }
}

/** jsonc-parser's codes in words; the parser's own messages are never used as they quote the text. */
const syntaxMessages: Readonly<Record<string, string>> = {
  InvalidSymbol: "unexpected character (strings need double quotes)",
  InvalidNumberFormat: "invalid number",
  PropertyNameExpected: "a property name in double quotes was expected (no trailing commas in JSON)",
  ValueExpected: "a value was expected (no trailing commas in JSON)",
  ColonExpected: "':' was expected",
  CommaExpected: "',' was expected",
  CloseBraceExpected: "'}' was expected",
  CloseBracketExpected: "']' was expected",
  EndOfFileExpected: "nothing may follow the top-level object",
  InvalidCommentToken: "comments are not allowed in JSON",
  UnexpectedEndOfComment: "a comment is not closed",
  UnexpectedEndOfString: "a string is not closed",
  UnexpectedEndOfNumber: "a number is cut short",
  InvalidUnicode: "invalid \\u escape",
  InvalidEscapeCharacter: "invalid escape character",
  InvalidCharacter: "a control character inside a string"
}

interface DuplicateKey {
  readonly path: ReadonlyArray<PropertyKey>
  readonly first: number
  readonly second: number
}

/** `JSON.parse` keeps the last of two equal keys without a word; the tree still has both. */
const findDuplicateKey = (node: JsonNode, path: ReadonlyArray<PropertyKey>): DuplicateKey | undefined => {
  if (node.type === "object") {
    const seen = new Map<string, number>()
    for (const property of node.children ?? []) {
      const [keyNode, valueNode] = property.children ?? []
      if (keyNode === undefined) continue
      const key = String(keyNode.value)
      const first = seen.get(key)
      if (first !== undefined) return { path: [...path, key], first, second: keyNode.offset }
      seen.set(key, keyNode.offset)
      const inner = valueNode === undefined ? undefined : findDuplicateKey(valueNode, [...path, key])
      if (inner !== undefined) return inner
    }
  } else if (node.type === "array") {
    for (const [index, child] of (node.children ?? []).entries()) {
      const inner = findDuplicateKey(child, [...path, index])
      if (inner !== undefined) return inner
    }
  }
  return undefined
}

export const parseText = (text: string, path?: string): Either.Either<unknown, ProviderConfigError> => {
  const errors: Array<JsonParseError> = []
  const tree = parseTree(text, errors, { disallowComments: true, allowTrailingComma: false, allowEmptyContent: false })
  const syntax = errors[0]
  if (syntax !== undefined || tree === undefined) {
    const { line, column } = lineAt(text, syntax?.offset ?? 0)
    const code = syntax === undefined ? "ValueExpected" : printParseErrorCode(syntax.error)
    return Either.left(fail(`not valid JSON at line ${line}, column ${column}: ${syntaxMessages[code] ?? code}`, undefined, path))
  }
  const duplicate = findDuplicateKey(tree, [])
  if (duplicate !== undefined) {
    const where = (offset: number) => {
      const { column, line } = lineAt(text, offset)
      return `line ${line}, column ${column}`
    }
    const name = JSON.stringify(String(duplicate.path[duplicate.path.length - 1]))
    const what = duplicate.path.length === 1 ? `duplicate provider ${name}` : `duplicate field ${name}`
    const hint = duplicate.path.length === 1 ? "merge the two lists into one" : "keep one"
    return Either.left(
      fail(
        `${what} at ${where(duplicate.first)} and ${where(duplicate.second)} (JSON would silently keep only the last; ${hint})`,
        jsonPathOf(duplicate.path),
        path
      )
    )
  }
  try {
    // the same value JSON.parse gives, now that the text is known to be strict JSON
    return Either.right(JSON.parse(text))
  } catch {
    return Either.left(fail("not valid JSON", undefined, path))
  }
}
