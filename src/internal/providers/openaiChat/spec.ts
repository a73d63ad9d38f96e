/** Chat Completions as a `Provider.Spec`. */
import type * as Duration from "effect/Duration"
import type { Spec } from "../../../Provider.js"
import { mapRequest } from "../mapRequest.js"
import { bearer, specOf, urlAt, type WireOptions } from "../apiSpec.js"
import { readOpenAiError } from "./error.js"
import { type MaxTokensField, toWireRequest } from "./request.js"
import { fromWireResponse } from "./response.js"
import { ChunkParser } from "./stream.js"
import * as zhipu from "./zhipu.js"

export const defaultBaseUrl = "https://api.openai.com/v1"

/** What only Chat Completions has: set by a provider's row in the table, a configuration entry, or the options. */
export interface Settings {
  /** Which field carries `maxTokens`: `max_completion_tokens` for OpenAI itself, `max_tokens` elsewhere by default. */
  readonly maxTokensField?: MaxTokensField | undefined
  /** `zhipu` signs `id.secret` keys into short-lived tokens. */
  readonly auth?: "bearer" | "zhipu" | undefined
  readonly zhipuTokenTtl?: Duration.DurationInput | undefined
}

export interface Options extends WireOptions, Settings {}

export const spec = (options: Options): Spec => {
  const provider = options.provider ?? "openai"
  const url = urlAt(options.baseUrl, defaultBaseUrl, "/chat/completions")
  const maxTokensField = options.maxTokensField ?? (provider === "openai" ? "max_completion_tokens" : "max_tokens")
  return specOf(provider, {
    auth: options.auth === "zhipu" ? zhipu.authFor(options.zhipuTokenTtl) : bearer,
    framing: "sse",
    url: () => url,
    body: (request, model, stream) => mapRequest(provider, model, () => toWireRequest(request, model, stream, maxTokensField, provider)),
    decode: fromWireResponse,
    Parser: ChunkParser,
    readError: readOpenAiError
  })
}
