/** Gemini `generateContent` and `streamGenerateContent?alt=sse` as a `Provider.Spec`. */
import * as Redacted from "effect/Redacted"
import type { Spec } from "../../../Provider.js"
import { mediaTokens } from "../../mediaTokens.js"
import { specOf, urlAt, type WireOptions } from "../apiSpec.js"
import { toWireRequest } from "./request.js"
import { readGeminiError } from "./error.js"
import { fromWireResponse } from "./response.js"
import { ChunkParser } from "./stream.js"

export const defaultBaseUrl = "https://generativelanguage.googleapis.com/v1beta"

/** Gemini's key header. */
export const auth = (key: Redacted.Redacted<string>): Record<string, string> => ({ "x-goog-api-key": Redacted.value(key) })

/** `models/<name>` as the URL wants it; `models/…` and `tunedModels/…` names are used as given. */
export const modelPath = (model: string) =>
  model.startsWith("models/") || model.startsWith("tunedModels/") ? model : `models/${model}`

export const urlOf = (baseUrl: string | undefined, model: string, method: string): string =>
  urlAt(baseUrl, defaultBaseUrl, `/${modelPath(model)}:${method}`)

export const spec = (options: WireOptions): Spec => {
  const provider = options.provider ?? "gemini"
  return specOf(provider, {
    auth,
    framing: "sse",
    url: (model, stream) => urlOf(options.baseUrl, model, stream ? "streamGenerateContent?alt=sse" : "generateContent"),
    body: (request, model) => toWireRequest(request, model, provider),
    decode: fromWireResponse,
    Parser: ChunkParser,
    readError: readGeminiError,
    mediaTokens: (part) => mediaTokens(part, "gemini")
  })
}
