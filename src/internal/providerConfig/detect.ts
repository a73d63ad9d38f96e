/** A model name alone: its provider detected by the provider table, and its stack with keys from the environment. */
import type * as HttpClient from "@effect/platform/HttpClient"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type { LanguageModel } from "../../LanguageModel.js"
import type { ModelEntry } from "../../ProviderConfig.js"
import * as registry from "../providers/registry.js"
import { fail, type ProviderConfigError } from "./schema.js"
import { fromJson } from "./stack.js"

export const detect = (model: string): string | undefined => registry.detect(model)

export interface ForModelOptions {
  readonly provider?: string
  readonly baseUrl?: string
  readonly maxRetries?: number
  readonly retryDelaySeconds?: number
  readonly contextWindow?: number
}

/** A one-entry file for the model, so that a name alone goes through every rule a file does. */
export const forModel = (model: string, options: ForModelOptions): Layer.Layer<LanguageModel, ProviderConfigError, HttpClient.HttpClient> =>
  Layer.unwrapEffect(
    Effect.gen(function* () {
      const provider = options.provider ?? detect(model)
      const source = `ProviderConfig.forModel(${JSON.stringify(model)})`
      if (provider === undefined) {
        return yield* Effect.fail(fail(`cannot tell the provider of model "${model}": pass { provider } explicitly`, undefined, undefined, source))
      }
      const entry: ModelEntry = {
        model_name: model,
        ...(options.baseUrl === undefined ? {} : { base_url: options.baseUrl }),
        ...(options.maxRetries === undefined ? {} : { max_retries: options.maxRetries }),
        ...(options.retryDelaySeconds === undefined ? {} : { retry_delay: options.retryDelaySeconds }),
        ...(options.contextWindow === undefined ? {} : { context_window: options.contextWindow })
      }
      const registry = yield* fromJson({ [provider]: [entry] }, undefined, source)
      return registry.models.layer(provider, model)
    })
  )
