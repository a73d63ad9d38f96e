/** `/api/chat` requests: a unified request as the body. */
import type * as Err from "../../../LlmError.js"
import type * as Message from "../../../Message.js"
import { rootObject } from "../jsonSchema.js"
import { withRequestOptions } from "../bodyOptions.js"
import { contentOf, describe, refuse } from "../mediaParts.js"
import { BadInput, mapRequest } from "../mapRequest.js"
import { copyOptions } from "../requestOptions.js"
import { argumentsObject, toolNameFor } from "../toolCalls.js"

export interface WireMessage {
  readonly role: "system" | "user" | "assistant" | "tool"
  readonly content: string
  readonly images?: ReadonlyArray<string>
  readonly thinking?: string
  readonly tool_calls?: ReadonlyArray<{ readonly function: { readonly name: string; readonly arguments: Record<string, unknown> } }>
  readonly tool_name?: string
}

/** A content's text, and its images as base64: Ollama takes images only, and as bytes, not URLs. */
const textAndImages = (parts: ReadonlyArray<Message.UserContentPart>, i: number): { content: string; images: Array<string> } => {
  let content = ""
  const images: Array<string> = []
  parts.forEach((part, j) => {
    if (part.type === "text") {
      content += part.text
      return
    }
    if (part.type !== "image") return refuse(i, j, `Ollama takes images only, not ${describe(part)}`)
    const data = contentOf(part)
    // Ollama takes base64 images only; it does not fetch URLs
    if (data.kind === "url") return refuse(i, j, "Ollama takes images as data: URLs only")
    images.push(data.base64)
  })
  return { content, images }
}

const toWireMessages = (messages: ReadonlyArray<Message.Message>): Array<WireMessage> =>
  messages.map((message, i): WireMessage => {
    switch (message.role) {
      case "system":
        return { role: "system", content: message.content }
      case "user": {
        if (typeof message.content === "string") return { role: "user", content: message.content }
        const { content, images } = textAndImages(message.content, i)
        return images.length === 0 ? { role: "user", content } : { role: "user", content, images }
      }
      case "assistant": {
        const calls = message.toolCalls?.map((call, j) => {
          const args = argumentsObject(call.arguments)
          if (args === undefined) throw new BadInput(`messages[${i}].toolCalls[${j}].arguments`, "arguments are not a JSON object")
          return { function: { name: call.name, arguments: args } }
        })
        return calls === undefined || calls.length === 0
          ? { role: "assistant", content: message.content }
          : { role: "assistant", content: message.content, tool_calls: calls }
      }
      case "tool": {
        const name = toolNameFor(messages, i)
        const { content, images } = typeof message.content === "string" ? { content: message.content, images: [] } : textAndImages(message.content, i)
        const wire: { -readonly [K in keyof WireMessage]: WireMessage[K] } = { role: "tool", content }
        if (name !== undefined) wire.tool_name = name
        if (images.length > 0) wire.images = images
        return wire
      }
    }
  })

/**
 * The `/api/chat` request body for a unified request, or an `InvalidRequestError` that
 * names the field Ollama cannot take.
 */
export const toWireRequest = (
  request: Message.ChatRequest,
  model: string,
  stream: boolean,
  options?: { readonly provider?: string | undefined; readonly keepAlive?: string | undefined }
): Record<string, unknown> | Err.InvalidRequestError =>
  mapRequest(options?.provider ?? "ollama", model, () => {
    const body: Record<string, unknown> = { model, messages: toWireMessages(request.messages), stream }
    // Ollama has no tool choice: "auto" is its only behaviour, and "none" is no tools offered
    const choice = request.toolChoice
    if (choice !== undefined && choice !== "auto" && choice !== "none") {
      throw new BadInput("request.toolChoice", `Ollama cannot force a tool call (${typeof choice === "string" ? `"${choice}"` : `{ name: "${choice.name}" }`}); use "auto" or "none"`)
    }
    if (request.tools !== undefined && request.tools.length > 0 && choice !== "none") {
      body.tools = request.tools.map((tool) => {
        const fn: Record<string, unknown> = { name: tool.name, parameters: rootObject(tool.parameters) }
        if (tool.description !== undefined) fn.description = tool.description
        return { type: "function", function: fn }
      })
    }
    if (request.reasoningEffort !== undefined) {
      body.think = request.reasoningEffort === "none"
        ? false
        : request.reasoningEffort === "minimal" ? "low" : request.reasoningEffort
    }
    if (request.responseFormat !== undefined && request.responseFormat.type !== "text") {
      body.format = request.responseFormat.type === "json_schema" ? rootObject(request.responseFormat.schema) : "json"
    }
    const modelOptions = copyOptions(request, {}, {
      temperature: "temperature",
      topP: "top_p",
      maxTokens: "num_predict",
      stop: "stop",
      seed: "seed",
      presencePenalty: "presence_penalty",
      frequencyPenalty: "frequency_penalty"
    })
    if (Object.keys(modelOptions).length > 0) body.options = modelOptions
    if (options?.keepAlive !== undefined) body.keep_alive = options.keepAlive
    return withRequestOptions(body, request, ["ollama"])
  })
