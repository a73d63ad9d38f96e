/** Tool calls and results across wire formats: ids, the function a result answers, JSON objects. */
import type * as Message from "../../Message.js"

/** A call's id as the provider sent it, else `fallback`: a result must still be paired with its call. */
export const callId = (wireId: string | null | undefined, fallback: string): string =>
  typeof wireId === "string" && wireId.length > 0 ? wireId : fallback

/**
 * The function name a tool result answers: its own `name`, else the name of the newest
 * earlier assistant tool call with the same id (for APIs that pair results by name).
 */
export const toolNameFor = (messages: ReadonlyArray<Message.Message>, at: number): string | undefined => {
  const message = messages[at]
  if (message === undefined || message.role !== "tool") return undefined
  if (message.name !== undefined && message.name.length > 0) return message.name
  for (let i = at - 1; i >= 0; i--) {
    const earlier = messages[i]!
    if (earlier.role === "assistant" && earlier.toolCalls !== undefined) {
      for (const call of earlier.toolCalls) if (call.id === message.toolCallId) return call.name
    }
  }
  return undefined
}

/** A tool result's text as a JSON object, as Gemini's `functionResponse.response` wants. */
export const resultObject = (content: string): Record<string, unknown> => {
  try {
    const parsed: unknown = JSON.parse(content)
    if (typeof parsed === "object" && parsed !== null && !Array.isArray(parsed)) return parsed as Record<string, unknown>
    return { result: parsed }
  } catch {
    return { result: content }
  }
}

/** Tool-call arguments (JSON text) as an object, for wire formats that carry objects. */
export const argumentsObject = (args: string): Record<string, unknown> | undefined => {
  if (args.trim().length === 0) return {}
  try {
    const parsed: unknown = JSON.parse(args)
    return typeof parsed === "object" && parsed !== null && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : undefined
  } catch {
    return undefined
  }
}
