/** A decoded reply as a `ChatResponse`, and the finish reason of a reply that ended normally. */
import type * as Message from "../../Message.js"
import { estimateFor } from "./usageEstimate.js"

/** A decoded reply as a `ChatResponse`: reasoning only when there was some, usage as reported or else estimated. */
export const chatResponse = (
  request: Message.ChatRequest,
  reply: {
    readonly id: string
    readonly model: string
    readonly provider: string
    readonly text: string
    readonly reasoning?: string | undefined
    readonly toolCalls: ReadonlyArray<Message.ToolCall>
    readonly finishReason: Message.FinishReason
    readonly usage: Message.Usage | undefined
    readonly reasoningState?: ReadonlyArray<Message.ReasoningState> | undefined
    readonly upstreamProvider?: string | undefined
  }
): Message.ChatResponse => {
  const { finishReason, id, model, provider, text, toolCalls } = reply
  const reasoning = reply.reasoning !== undefined && reply.reasoning.length > 0 ? reply.reasoning : undefined
  const usage = reply.usage ?? estimateFor(request, text, reasoning, toolCalls)
  const response: { -readonly [K in keyof Message.ChatResponse]: Message.ChatResponse[K] } = { id, model, provider, text, toolCalls, finishReason, usage }
  if (reasoning !== undefined) response.reasoning = reasoning
  if (reply.reasoningState !== undefined && reply.reasoningState.length > 0) response.reasoningState = reply.reasoningState
  if (reply.upstreamProvider !== undefined && reply.upstreamProvider.length > 0) response.upstreamProvider = reply.upstreamProvider
  return response
}

/** A reply that ended normally: with tool calls, it ended to have them run. */
export const stopOrToolCalls = (hasToolCalls: boolean): Message.FinishReason => (hasToolCalls ? "tool_calls" : "stop")
