/** Usage counted by the library when a provider reported none: about 4 characters a token. */
import * as Message from "../../Message.js"

/** The characters of a request's text, for a usage estimate. */
const requestChars = (request: Message.ChatRequest): number => {
  let n = 0
  for (const message of request.messages) n += Message.contentText(message).length
  return n
}

/** The characters of a reply's text, reasoning and tool calls, for a usage estimate. */
const outputChars = (
  text: string,
  reasoning: string | undefined,
  calls: ReadonlyArray<{ readonly name: string; readonly arguments: string }>
): number => {
  let n = text.length + (reasoning?.length ?? 0)
  for (const call of calls) n += call.name.length + call.arguments.length
  return n
}

/** The estimate for one reply to `request`. */
export const estimateFor = (
  request: Message.ChatRequest,
  text: string,
  reasoning: string | undefined,
  calls: ReadonlyArray<{ readonly name: string; readonly arguments: string }>
): Message.Usage => {
  const inputTokens = Math.ceil(requestChars(request) / 4)
  const outputTokens = Math.ceil(outputChars(text, reasoning, calls) / 4)
  return { inputTokens, outputTokens, totalTokens: inputTokens + outputTokens, estimated: true }
}
