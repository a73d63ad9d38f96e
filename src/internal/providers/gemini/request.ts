/**
 * `generateContent` requests: a unified request as the body. Tool results are paired by
 * function name, taken from `ToolMessage.name` or from the assistant's earlier call with the
 * same id; the call id goes along too (Gemini 3 makes ids and pairs parallel calls by them,
 * and accepts ids of the client's making, as ours are when the model sent none).
 */
import type * as Message from "../../../Message.js"
import type * as Err from "../../../LlmError.js"
import { toGemini } from "../jsonSchema.js"
import { withRequestOptions } from "../bodyOptions.js"
import { contentOf, describe, refuse, textOf } from "../mediaParts.js"
import { BadInput, mapRequest } from "../mapRequest.js"
import { reasoningItemsOf } from "../reasoningState.js"
import { copyOptions } from "../requestOptions.js"
import { argumentsObject, resultObject, toolNameFor } from "../toolCalls.js"

export type WirePart =
  | { readonly text: string; readonly thoughtSignature?: string }
  | { readonly inlineData: { readonly mimeType: string; readonly data: string } }
  | { readonly fileData: { readonly mimeType?: string; readonly fileUri: string } }
  | {
    readonly functionCall: { readonly id: string; readonly name: string; readonly args: Record<string, unknown> }
    readonly thoughtSignature?: string
  }
  | { readonly functionResponse: { readonly id: string; readonly name: string; readonly response: Record<string, unknown> } }

export interface WireContent {
  readonly role: "user" | "model"
  readonly parts: Array<WirePart>
}

const thinkingBudgets = { minimal: 128, low: 1024, medium: 8192, high: 24576 } as const

/** Gemini 3 takes a thinking level; earlier models take a token budget. */
const thinkingConfig = (model: string, effort: Message.ReasoningEffort): Record<string, unknown> => {
  if (effort === "none") return { thinkingBudget: 0 }
  if (/gemini-3/.test(model)) return { includeThoughts: true, thinkingLevel: effort === "minimal" || effort === "low" ? "low" : "high" }
  return { includeThoughts: true, thinkingBudget: thinkingBudgets[effort] }
}

const toContents = (messages: ReadonlyArray<Message.Message>): { contents: Array<WireContent>; system: Array<string> } => {
  const contents: Array<WireContent> = []
  const system: Array<string> = []
  const push = (role: WireContent["role"], part: WirePart, merge: boolean) => {
    const last = contents[contents.length - 1]
    if (merge && last !== undefined && last.role === role) last.parts.push(part)
    else contents.push({ role, parts: [part] })
  }
  messages.forEach((message, i) => {
    switch (message.role) {
      case "system":
        system.push(message.content)
        return
      case "user": {
        if (typeof message.content === "string") return push("user", { text: message.content }, false)
        contents.push({ role: "user", parts: message.content.map((part, j) => toWirePart(part, i, j)) })
        return
      }
      case "assistant": {
        // thought signatures go back on the part they came with: a call's by its id, else the text
        const signatures = reasoningItemsOf(message, "gemini").filter(isSignature)
        const textSignature = signatures.find((s) => s.toolCallId === undefined)?.thoughtSignature
        const parts: Array<WirePart> = []
        if (message.content.length > 0) {
          parts.push(textSignature === undefined ? { text: message.content } : { text: message.content, thoughtSignature: textSignature })
        }
        message.toolCalls?.forEach((call, j) => {
          const args = argumentsObject(call.arguments)
          if (args === undefined) throw new BadInput(`messages[${i}].toolCalls[${j}].arguments`, "arguments are not a JSON object")
          const signature = signatures.find((s) => s.toolCallId === call.id)?.thoughtSignature
          const functionCall = { id: call.id, name: call.name, args }
          parts.push(signature === undefined ? { functionCall } : { functionCall, thoughtSignature: signature })
        })
        if (parts.length > 0) contents.push({ role: "model", parts })
        return
      }
      case "tool": {
        const name = toolNameFor(messages, i)
        if (name === undefined) {
          throw new BadInput(
            `messages[${i}]`,
            `no function name for tool call id "${message.toolCallId}": set ToolMessage.name or keep the assistant turn that made the call`
          )
        }
        // parallel results go back in one turn, as Gemini pairs them with that turn's calls
        const previous = messages[i - 1]
        const content = message.content
        const text = textOf(content)
        push("user", { functionResponse: { id: message.toolCallId, name, response: resultObject(text) } }, previous?.role === "tool")
        // a result's images and documents follow it in the same turn, as parts of their own
        if (typeof content !== "string") content.forEach((part, j) => part.type !== "text" && push("user", toWirePart(part, i, j), true))
        return
      }
    }
  })
  return { contents, system }
}

/** One part as a Gemini part: media as `inlineData` (bytes) or `fileData` (a URL). */
const toWirePart = (part: Message.UserContentPart, i: number, j: number): WirePart => {
  if (part.type === "text") return { text: part.text }
  const content = contentOf(part)
  if (content.kind === "data") return { inlineData: { mimeType: content.mediaType, data: content.base64 } }
  if (!/^(https?|gs):\/\//.test(content.url)) {
    return refuse(i, j, `${describe(part)} must be a data: URL or an http(s)/gs URL for Gemini`)
  }
  return { fileData: part.mediaType === undefined ? { fileUri: content.url } : { mimeType: part.mediaType, fileUri: content.url } }
}

const isSignature = (item: unknown): item is { readonly thoughtSignature: string; readonly toolCallId?: string } =>
  typeof item === "object" && item !== null && typeof (item as { thoughtSignature?: unknown }).thoughtSignature === "string"

/**
 * The `generateContent` request body for a unified request, or an `InvalidRequestError`
 * that names the field Gemini cannot take. Images, documents and audio go as `inlineData`
 * (bytes) or `fileData` (a URL); prompt-cache breakpoints go nowhere (Gemini caches
 * implicitly).
 */
export const toWireRequest = (
  request: Message.ChatRequest,
  model: string,
  provider = "gemini"
): Record<string, unknown> | Err.InvalidRequestError =>
  mapRequest(provider, model, () => {
    const { contents, system } = toContents(request.messages)
    const body: Record<string, unknown> = { contents }
    if (system.length > 0) body.systemInstruction = { parts: system.map((text) => ({ text })) }
    if (request.tools !== undefined && request.tools.length > 0) {
      body.tools = [{
        functionDeclarations: request.tools.map((tool) => {
          const fn: Record<string, unknown> = { name: tool.name, parametersJsonSchema: toGemini(tool.parameters) }
          if (tool.description !== undefined) fn.description = tool.description
          return fn
        })
      }]
    }
    if (request.toolChoice !== undefined) {
      const choice = request.toolChoice
      body.toolConfig = {
        functionCallingConfig: typeof choice === "string"
          ? { mode: choice === "auto" ? "AUTO" : choice === "none" ? "NONE" : "ANY" }
          : { mode: "ANY", allowedFunctionNames: [choice.name] }
      }
    }
    const generation = copyOptions(request, {}, {
      temperature: "temperature",
      topP: "topP",
      maxTokens: "maxOutputTokens",
      stop: "stopSequences",
      seed: "seed",
      presencePenalty: "presencePenalty",
      frequencyPenalty: "frequencyPenalty"
    })
    if (request.reasoningEffort !== undefined) generation.thinkingConfig = thinkingConfig(model, request.reasoningEffort)
    if (request.responseFormat !== undefined && request.responseFormat.type !== "text") {
      generation.responseMimeType = "application/json"
      if (request.responseFormat.type === "json_schema") generation.responseJsonSchema = toGemini(request.responseFormat.schema)
    }
    if (Object.keys(generation).length > 0) body.generationConfig = generation
    return withRequestOptions(body, request, ["gemini"])
  })
