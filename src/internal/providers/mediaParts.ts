/**
 * Media parts (images, documents, audio) across wire APIs: their content as a `data:` URL's
 * payload or as a URL, and the refusal, naming the message and part, of one an API cannot take.
 */
import type * as Message from "../../Message.js"
import { parseDataUrl } from "./dataUrl.js"
import { BadInput } from "./mapRequest.js"

/** A media part's content: base64 bytes (from a `data:` URL), or a URL to fetch. */
export type MediaContent =
  | { readonly kind: "data"; readonly mediaType: string; readonly base64: string; readonly dataUrl: string }
  | { readonly kind: "url"; readonly url: string }

/** Where a part's content is; the part's own `mediaType` wins over the data URL's. */
export const contentOf = (part: Message.MediaPart): MediaContent => {
  const data = parseDataUrl(part.url)
  if (data === undefined) return { kind: "url", url: part.url }
  const mediaType = part.mediaType ?? data.mediaType
  return { kind: "data", mediaType, base64: data.data, dataUrl: part.url }
}

/** The wire name of a part: `messages[2].content[1]`. */
export const partPath = (message: number, part: number): string => `messages[${message}].content[${part}]`

/** Refuses a part the API cannot take; `mapRequest` makes it an `InvalidRequestError`. */
export const refuse = (message: number, part: number, why: string): never => {
  throw new BadInput(partPath(message, part), why)
}

/** What a part is, for messages: `an audio part (audio/wav)`. */
export const describe = (part: Message.MediaPart): string =>
  part.type === "image" ? "an image part" : `${part.type === "file" ? "a file" : "an audio"} part (${part.mediaType})`

/** A default file name from a media type, for APIs that want one: `document.pdf`. */
export const defaultFilename = (mediaType: string): string => {
  const subtype = mediaType.split("/")[1]?.split(/[+;]/)[0] ?? "bin"
  return `document.${subtype === "plain" ? "txt" : subtype}`
}

/** The text of a content: a string, or its text parts joined. */
export const textOf = (content: string | ReadonlyArray<{ readonly type: string; readonly text?: string }>): string => {
  if (typeof content === "string") return content
  let out = ""
  for (const part of content) if (part.type === "text" && part.text !== undefined) out += part.text
  return out
}
