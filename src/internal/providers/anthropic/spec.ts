/** Anthropic Messages as a `Provider.Spec`. */
import * as Redacted from "effect/Redacted"
import type { Spec } from "../../../Provider.js"
import { mediaTokens } from "../../mediaTokens.js"
import { specOf, urlAt, type WireOptions } from "../apiSpec.js"
import { type ThinkingBudgets, toWireRequest } from "./request.js"
import { readAnthropicError } from "./error.js"
import { fromWireResponse } from "./response.js"
import { EventParser } from "./stream.js"

export const defaultBaseUrl = "https://api.anthropic.com"

/** The `anthropic-version` header every request carries. */
export const defaultVersion = "2023-06-01"

export interface Options extends WireOptions {
  readonly version?: string | undefined
  readonly defaultMaxTokens?: number | undefined
  readonly thinkingBudgets?: ThinkingBudgets | undefined
}

export const spec = (options: Options): Spec => {
  const provider = options.provider ?? "anthropic"
  const url = urlAt(options.baseUrl, defaultBaseUrl, "/v1/messages")
  const wireOptions = { provider, defaultMaxTokens: options.defaultMaxTokens, thinkingBudgets: options.thinkingBudgets }
  return specOf(provider, {
    auth: (key) => ({ "x-api-key": Redacted.value(key) }),
    headers: { "anthropic-version": options.version ?? defaultVersion },
    framing: "sse",
    url: () => url,
    body: (request, model, stream) => toWireRequest(request, model, stream, wireOptions),
    decode: fromWireResponse,
    Parser: EventParser,
    readError: readAnthropicError,
    mediaTokens: (part) => mediaTokens(part, "anthropic")
  })
}
