/** Reasoning state carried across turns, tagged by the wire API that produced it. */
import type * as Message from "../../Message.js"

/**
 * The wire-API ids that tag reasoning state: the API, not the provider id, so that a
 * compatible proxy under another name sends back what its API produced.
 */
export type ReasoningApi = "anthropic" | "gemini" | "openai-responses"

/** A reasoning item of `api`, as responses carry it. */
export const reasoningItem = (api: ReasoningApi, item: unknown): Message.ReasoningState => ({ api, item })

/** The items of `api` in an assistant message's reasoning state, in order; other APIs' are ignored. */
export const reasoningItemsOf = (message: Message.AssistantMessage, api: ReasoningApi): Array<unknown> => {
  const out: Array<unknown> = []
  for (const state of message.reasoningState ?? []) if (state.api === api) out.push(state.item)
  return out
}
