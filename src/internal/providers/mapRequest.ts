/** Requests an API cannot take: a mapping deep in a message walk names the field, nothing is sent. */
import * as Err from "../../LlmError.js"

/** Thrown by a request mapping deep inside a message walk; `where` names the offending field. */
export class BadInput {
  constructor(readonly where: string, readonly why: string) {}
}

/** Runs a request mapping, turning its `BadInput` into the `InvalidRequestError` that names the field. */
export const mapRequest = <A>(provider: string, model: string, map: () => A): A | Err.InvalidRequestError => {
  try {
    return map()
  } catch (e) {
    if (e instanceof BadInput) return new Err.InvalidRequestError({ provider, model, message: `${provider}: ${e.where}: ${e.why}` })
    throw e
  }
}
