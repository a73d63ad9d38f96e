/**
 * An MCP tool result as the model receives it, written once here. Text blocks go as they
 * are; structured content as its JSON text (once: a text block that already holds the same
 * JSON, as the spec asks servers to send, is not repeated); images, and embedded resources
 * that are images or PDFs, as image and file parts (each API's mapping puts them where it
 * takes them); audio, links and other binary resources as a line of text saying what they
 * are, since no API takes them in a tool result. A result with no media stays one text. The
 * whole result stays on the loop's `ToolResult.value` for the program.
 */
import * as Message from "../../Message.js"
import type * as Mcp from "../../Mcp.js"
import type * as Tool from "../../Tool.js"

/** The bytes a base64 text decodes to. */
const decodedBytes = (base64: string): number => {
  const padding = base64.endsWith("==") ? 2 : base64.endsWith("=") ? 1 : 0
  return Math.max(0, Math.floor((base64.length * 3) / 4) - padding)
}

const mediaType = (mimeType: string | undefined) => (mimeType === undefined ? "" : `, ${mimeType}`)

/** One content block as text. */
const blockText = (block: Mcp.Content): string => {
  switch (block.type) {
    case "text":
      return block.text
    case "image":
      return `[image${mediaType(block.mimeType)}, ${decodedBytes(block.data)} bytes]`
    case "audio":
      return `[audio${mediaType(block.mimeType)}, ${decodedBytes(block.data)} bytes]`
    case "resource_link":
      return `[resource link: ${block.name} <${block.uri}>${mediaType(block.mimeType)}${block.description === undefined ? "" : `: ${block.description}`}]`
    case "resource": {
      const resource = block.resource
      return "text" in resource
        ? `[resource <${resource.uri}>${mediaType(resource.mimeType)}]\n${resource.text}`
        : `[resource <${resource.uri}>${mediaType(resource.mimeType)}, ${decodedBytes(resource.blob)} bytes]`
    }
  }
}

/** Whether a text block holds the structured content's JSON. */
const sameJson = (text: string, json: string): boolean => {
  if (text === json) return true
  try {
    return JSON.stringify(JSON.parse(text)) === json
  } catch {
    return false
  }
}

/** A result with nothing in it still says so: some APIs refuse an empty tool result. */
export const emptyResult = "(the tool returned no content)"

/** A block as a media part, when it is media a tool result can carry. */
const mediaPart = (block: Mcp.Content): Message.ToolResultPart | undefined => {
  if (block.type === "image") return Message.image({ base64: block.data }, { mediaType: block.mimeType })
  if (block.type === "resource" && "blob" in block.resource && block.resource.mimeType !== undefined) {
    const { blob, mimeType, uri } = block.resource
    if (mimeType.startsWith("image/")) return Message.image({ base64: blob }, { mediaType: mimeType })
    if (mimeType === "application/pdf") {
      const name = uri.split("/").pop()
      return Message.file({ base64: blob }, name === undefined || name.length === 0 ? { mediaType: mimeType } : { mediaType: mimeType, filename: name })
    }
  }
  return undefined
}

/** The result the loop sends back to the model for one `tools/call` answer. */
export const toToolResult = (result: Mcp.CallToolResult): Tool.Result => {
  const structured = result.structuredContent === undefined ? undefined : JSON.stringify(result.structuredContent)
  // runs of text joined as one text part, media as parts of their own
  const parts: Array<string | Message.ToolResultPart> = []
  for (const block of result.content) {
    const media = mediaPart(block)
    parts.push(media ?? blockText(block))
  }
  if (structured !== undefined && !result.content.some((block) => block.type === "text" && sameJson(block.text, structured))) {
    parts.push(structured)
  }
  const content: Array<Message.ToolResultPart> = []
  let text: Array<string> = []
  const flush = () => {
    const joined = text.filter((t) => t.length > 0).join("\n\n")
    if (joined.length > 0) content.push(Message.text(joined))
    text = []
  }
  for (const part of parts) {
    if (typeof part === "string") text.push(part)
    else {
      flush()
      content.push(part)
    }
  }
  flush()
  const isError = result.isError === true
  if (content.length === 0) return { isError, content: emptyResult, value: result }
  if (content.length === 1 && content[0]!.type === "text") return { isError, content: content[0]!.text, value: result }
  return { isError, content, value: result }
}

/** The size of a result: text in UTF-8 bytes, binary data as its base64 text, structured content as JSON. */
export const resultBytes = (result: Mcp.CallToolResult): number => {
  let bytes = result.structuredContent === undefined ? 0 : Buffer.byteLength(JSON.stringify(result.structuredContent))
  for (const block of result.content) {
    switch (block.type) {
      case "text":
        bytes += Buffer.byteLength(block.text)
        break
      case "image":
      case "audio":
        bytes += block.data.length
        break
      case "resource_link":
        bytes += Buffer.byteLength(block.uri) + Buffer.byteLength(block.name) + Buffer.byteLength(block.description ?? "")
        break
      case "resource":
        bytes += "text" in block.resource ? Buffer.byteLength(block.resource.text) : block.resource.blob.length
        break
    }
  }
  return bytes
}
