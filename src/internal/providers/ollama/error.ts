/**
 * Ollama's error body: a bare `{ "error": "…" }`, in a reply and as a stream's last line. Its
 * words say what it is ("model 'x' not found").
 */
import type { ErrorBody } from "../../../Provider.js"
import { errorFields, statusOfFields, tryJson } from "../../request/errorBody.js"

/** A parsed Ollama error body (or the common shape, from a proxy in front of it); undefined for any other value. */
export const readOllamaError = (json: unknown): ErrorBody | undefined => {
  const fields = errorFields(json)
  return fields === undefined ? undefined : { message: fields.message, type: fields.type, status: statusOfFields(fields) }
}

/** The spec's `readError`. */
export const readError = (body: string): ErrorBody | undefined => readOllamaError(tryJson(body))
