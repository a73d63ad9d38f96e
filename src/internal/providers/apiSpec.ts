/** An API's `Provider.Spec` for one provider id, and what every API's spec options hold. */
import * as Redacted from "effect/Redacted"
import type * as Err from "../../LlmError.js"
import type * as Message from "../../Message.js"
import type { ErrorBody, Spec, StreamParser } from "../../Provider.js"
import { tryJson } from "../request/errorBody.js"

/** `path` under the given base URL (a trailing slash tolerated), or under the API's default. */
export const urlAt = (baseUrl: string | undefined, defaultBaseUrl: string, path: string): string =>
  `${(baseUrl ?? defaultBaseUrl).replace(/\/+$/, "")}${path}`

/** What every API's spec options hold: the provider id, and where it is served. */
export interface WireOptions {
  readonly provider?: string | undefined
  readonly baseUrl?: string | undefined
}

/** An API's spec for one provider id: its decode and stream parser bound to that id, its error reader for both. */
export const specOf = (
  provider: string,
  api: Omit<Spec, "provider" | "decode" | "parser" | "readError"> & {
    readonly decode: (
      provider: string,
      model: string,
      request: Message.ChatRequest,
      body: string,
      status: number
    ) => Message.ChatResponse | Err.LlmError
    readonly Parser: new(
      provider: string,
      model: string,
      request: Message.ChatRequest,
      readError: (json: unknown) => ErrorBody | undefined
    ) => StreamParser
    /** The API's reader of its parsed error bodies, for replies and stream error events alike. */
    readonly readError: (json: unknown) => ErrorBody | undefined
  }
): Spec => ({
  provider,
  auth: api.auth,
  headers: api.headers,
  framing: api.framing,
  streamAccept: api.streamAccept,
  url: api.url,
  body: api.body,
  mediaTokens: api.mediaTokens,
  decode: (request, model, body, status) => api.decode(provider, model, request, body, status),
  parser: (request, model) => new api.Parser(provider, model, request, api.readError),
  readError: (body) => api.readError(tryJson(body))
})

/** The key as a bearer token: OpenAI's scheme, and most compatible servers'. */
export const bearer = (key: Redacted.Redacted<string>): Record<string, string> => ({ authorization: `Bearer ${Redacted.value(key)}` })
