/** Ollama's native `/api/chat` (JSON, and NDJSON streaming) as a `Provider.Spec`. */
import type { Spec } from "../../../Provider.js"
import { bearer, specOf, urlAt, type WireOptions } from "../apiSpec.js"
import { toWireRequest } from "./request.js"
import { readOllamaError } from "./error.js"
import { fromWireResponse } from "./response.js"
import { ChunkParser } from "./stream.js"

export const defaultBaseUrl = "http://localhost:11434"

/** A key, for an Ollama behind a proxy that wants one, goes as a bearer token. */
export const auth = bearer

export const urlOf = (baseUrl: string | undefined, path: "/api/chat" | "/api/embed"): string => urlAt(baseUrl, defaultBaseUrl, path)

export interface Options extends WireOptions {
  readonly keepAlive?: string | undefined
}

export const spec = (options: Options): Spec => {
  const provider = options.provider ?? "ollama"
  const url = urlOf(options.baseUrl, "/api/chat")
  return specOf(provider, {
    auth,
    framing: "ndjson",
    url: () => url,
    body: (request, model, stream) => toWireRequest(request, model, stream, { provider, keepAlive: options.keepAlive }),
    decode: fromWireResponse,
    Parser: ChunkParser,
    readError: readOllamaError
  })
}
