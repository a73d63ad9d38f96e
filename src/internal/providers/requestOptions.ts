/** The request's plain options (temperature, maxTokens, …), each under the name an API gives it. */
import type * as Message from "../../Message.js"

/** The request's plain options, each of which a wire body carries under a name of its own. */
export type PlainOption = "temperature" | "topP" | "maxTokens" | "stop" | "seed" | "presencePenalty" | "frequencyPenalty" | "user" | "reasoningEffort"

/** Copies the plain options the request sets into `into`, each under the API's name for it. */
export const copyOptions = (
  request: Message.ChatRequest,
  into: Record<string, unknown>,
  names: { readonly [K in PlainOption]?: string }
): Record<string, unknown> => {
  for (const key of Object.keys(names) as Array<PlainOption>) {
    const value = request[key]
    if (value !== undefined) into[names[key]!] = value
  }
  return into
}
