/**
 * Tolerant decoding of provider replies: a 2xx body or a stream frame decoded with only the
 * fields a reader uses, or the `MalformedResponseError` that says what was wrong.
 */
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import * as Err from "../../LlmError.js"
import type * as Message from "../../Message.js"
import { malformed } from "../request/errors.js"
import { tryJson } from "../request/errorBody.js"

/** A field providers send as absent, `null` or a value. */
export const optionalNullable = <S extends Schema.Schema.Any>(schema: S) => Schema.optional(Schema.NullOr(schema))

/**
 * A JSON body decoded with a provider's tolerant response schema, or the typed error that
 * says what was wrong with it.
 */
export const decodeJsonBody = <A>(
  decode: (u: unknown) => Either.Either<A, ParseResult.ParseError>,
  provider: string,
  model: string,
  body: string,
  status: number
): Either.Either<A, Err.MalformedResponseError> => {
  const json = tryJson(body)
  if (json === undefined) return Either.left(malformed(provider, model, body, "body is not JSON", status))
  return Either.mapLeft(decode(json), (error) => malformed(provider, model, body, ParseResult.TreeFormatter.formatErrorSync(error), status))
}

/** A decoder of a 2xx JSON body with a tolerant schema: the value, or the typed error saying what was wrong. */
export const jsonDecoder = <A, I>(schema: Schema.Schema<A, I>) => {
  const decode = Schema.decodeUnknownEither(schema)
  return (provider: string, model: string, body: string, status: number): A | Err.MalformedResponseError =>
    Either.getOrElse(decodeJsonBody(decode, provider, model, body, status), (error): A | Err.MalformedResponseError => error)
}

/** What a reply's reader knows besides the decoded body. */
export interface ReplyContext {
  readonly provider: string
  readonly model: string
  readonly request: Message.ChatRequest
  readonly body: string
  readonly status: number
}

/**
 * An API's reply decoder: the body decoded with its tolerant schema, then read into a
 * `ChatResponse`, or into the error the reply means.
 */
export const replyDecoder = <A, I>(
  schema: Schema.Schema<A, I>,
  read: (wire: A, reply: ReplyContext) => Message.ChatResponse | Err.LlmError
) => {
  const decode = jsonDecoder(schema)
  return (provider: string, model: string, request: Message.ChatRequest, body: string, status = 200): Message.ChatResponse | Err.LlmError => {
    const wire = decode(provider, model, body, status)
    return wire instanceof Err.MalformedResponseError ? wire : read(wire, { provider, model, request, body, status })
  }
}

/** One stream frame parsed as a JSON object, or the typed error for a frame that is not one. */
export const jsonObjectFrame = (
  provider: string,
  model: string,
  data: string,
  what = "a stream event"
): Record<string, unknown> | Err.MalformedResponseError => {
  const json = tryJson(data)
  return typeof json === "object" && json !== null && !Array.isArray(json)
    ? (json as Record<string, unknown>)
    : malformed(provider, model, data, `${what} is not a JSON object`)
}
