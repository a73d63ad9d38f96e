/**
 * An MCP tool result as the model receives it, written once here. Text blocks go as they
 * are; structured content as its JSON text (once: a text block that already holds the same
 * JSON, as the spec asks servers to send, is not repeated); images, audio and resources as a
 * line of text saying what they are, since a tool result is text for now. The whole result
 * stays on the loop's `ToolResult.value` for the program.
 */
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

/** The result the loop sends back to the model for one `tools/call` answer. */
export const toToolResult = (result: Mcp.CallToolResult): Tool.Result => {
  const structured = result.structuredContent === undefined ? undefined : JSON.stringify(result.structuredContent)
  const parts = result.content.map(blockText)
  if (structured !== undefined && !result.content.some((block) => block.type === "text" && sameJson(block.text, structured))) {
    parts.push(structured)
  }
  const content = parts.filter((part) => part.length > 0).join("\n\n")
  return { isError: result.isError === true, content: content.length > 0 ? content : emptyResult, value: result }
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
