/**
 * What an image, a document or audio counts for in a prompt, by each API's documented rule,
 * for the rate limiter's estimate (never the length of the base64, which is about 3 000 times
 * too much for a photo). Sizes are read from the bytes' headers where the part carries them
 * (PNG, JPEG, GIF, WebP; PDF page count; WAV duration); a URL, whose bytes are not at hand,
 * counts as a 1024×1024 image, a one-page document or ten seconds of audio.
 * - OpenAI (Chat Completions, Responses, Ollama): `low` detail 85; else the image fitted into
 *   2048×2048, its short side scaled to 768, 170 per 512-pixel tile plus 85. A PDF page is an
 *   image of the page plus its text: a letter page at high detail (765) and 500.
 * - Anthropic: width × height / 750, after fitting the long side into 1568 pixels; a PDF page
 *   3 000 (its documented range is 1 500 to 3 000).
 * - Gemini: 258 per image up to 384×384, else 258 per 768×768 tile; 258 per PDF page; audio
 *   32 a second.
 */
import type * as Message from "../Message.js"
import { contentOf } from "./providers/mediaParts.js"

/** The rule an API's spec counts media parts by. */
export type MediaRule = "openai" | "anthropic" | "gemini"

interface Size {
  readonly width: number
  readonly height: number
}

const assumedImage: Size = { width: 1024, height: 1024 }

/** The first `n` bytes of base64 data, decoded (headers are near the start). */
const head = (base64: string, bytes: number): Buffer => Buffer.from(base64.slice(0, Math.ceil(bytes / 3) * 4), "base64")

/** An image's size from its header: PNG, GIF, WebP and JPEG; undefined for anything else. */
export const imageSize = (base64: string): Size | undefined => {
  const b = head(base64, 64 * 1024)
  if (b.length >= 24 && b.readUInt32BE(0) === 0x89504e47) return { width: b.readUInt32BE(16), height: b.readUInt32BE(20) }
  if (b.length >= 10 && b.toString("latin1", 0, 3) === "GIF") return { width: b.readUInt16LE(6), height: b.readUInt16LE(8) }
  if (b.length >= 30 && b.toString("latin1", 0, 4) === "RIFF" && b.toString("latin1", 8, 12) === "WEBP") {
    const kind = b.toString("latin1", 12, 16)
    if (kind === "VP8X") return { width: 1 + b.readUIntLE(24, 3), height: 1 + b.readUIntLE(27, 3) }
    if (kind === "VP8L") {
      const bits = b.readUInt32LE(21)
      return { width: 1 + (bits & 0x3fff), height: 1 + ((bits >> 14) & 0x3fff) }
    }
    if (kind === "VP8 ") return { width: b.readUInt16LE(26) & 0x3fff, height: b.readUInt16LE(28) & 0x3fff }
  }
  if (b.length >= 4 && b[0] === 0xff && b[1] === 0xd8) {
    // JPEG: walk the segments to the first start-of-frame
    let at = 2
    while (at + 9 < b.length) {
      if (b[at] !== 0xff) return undefined
      const marker = b[at + 1]!
      const length = b.readUInt16BE(at + 2)
      if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
        return { width: b.readUInt16BE(at + 7), height: b.readUInt16BE(at + 5) }
      }
      at += 2 + length
    }
  }
  return undefined
}

/** A PDF's page count: its page objects (`/Type /Page`, not `/Pages`); at least 1. */
export const pdfPages = (base64: string): number => {
  const text = Buffer.from(base64, "base64").toString("latin1")
  const pages = text.match(/\/Type\s*\/Page(?![a-zA-Z])/g)
  return Math.max(1, pages?.length ?? 0)
}

/** Seconds of audio: a WAV header's byte rate, else 128 kbit/s. */
export const audioSeconds = (base64: string): number => {
  const bytes = Math.floor(base64.length * 3 / 4)
  const b = head(base64, 44)
  if (b.length >= 32 && b.toString("latin1", 0, 4) === "RIFF" && b.toString("latin1", 8, 12) === "WAVE") {
    const byteRate = b.readUInt32LE(28)
    if (byteRate > 0) return Math.max(0, bytes - 44) / byteRate
  }
  return bytes / 16_000
}

const openAiImage = (size: Size, detail: "auto" | "low" | "high" | undefined): number => {
  if (detail === "low") return 85
  let { height, width } = size
  const fit = Math.min(1, 2048 / Math.max(width, height))
  width *= fit
  height *= fit
  const scale = Math.min(1, 768 / Math.min(width, height))
  return 85 + 170 * Math.ceil((width * scale) / 512) * Math.ceil((height * scale) / 512)
}

const anthropicImage = (size: Size): number => {
  const fit = Math.min(1, 1568 / Math.max(size.width, size.height))
  return Math.ceil((size.width * fit) * (size.height * fit) / 750)
}

const geminiImage = (size: Size): number =>
  size.width <= 384 && size.height <= 384 ? 258 : 258 * Math.ceil(size.width / 768) * Math.ceil(size.height / 768)

const pageTokens: Record<MediaRule, number> = { openai: 765 + 500, anthropic: 3_000, gemini: 258 }
const audioPerSecond: Record<MediaRule, number> = { openai: 10, anthropic: 10, gemini: 32 }

/** The tokens one media part counts for under `rule`. */
export const mediaTokens = (part: Message.MediaPart, rule: MediaRule): number => {
  const content = contentOf(part)
  const data = content.kind === "data" ? content.base64 : undefined
  switch (part.type) {
    case "image": {
      const size = (data === undefined ? undefined : imageSize(data)) ?? assumedImage
      return rule === "openai" ? openAiImage(size, part.detail) : rule === "anthropic" ? anthropicImage(size) : geminiImage(size)
    }
    case "file": {
      if (part.mediaType === "application/pdf") return pageTokens[rule] * (data === undefined ? 1 : pdfPages(data))
      // other documents are read as their text: about four bytes a token
      return data === undefined ? 1_000 : Math.ceil((data.length * 3) / 4 / 4)
    }
    case "audio":
      return Math.ceil(audioPerSecond[rule] * (data === undefined ? 10 : audioSeconds(data)))
  }
}

/** The most any API's rule counts a part for: a bound that holds wherever the request goes. */
export const mostTokens = (part: Message.MediaPart): number =>
  Math.max(mediaTokens(part, "openai"), mediaTokens(part, "anthropic"), mediaTokens(part, "gemini"))

/**
 * The prompt tokens a request's media parts count for (by `count`), less what their URLs
 * (base64 and all) add to the body's length: what to add to an estimate made from the body.
 */
export const mediaAdjustment = (request: Message.ChatRequest, count: (part: Message.MediaPart) => number): number => {
  let tokens = 0
  for (const message of request.messages) {
    const content = message.content
    if (typeof content === "string") continue
    for (const part of content) {
      if (part.type === "text") continue
      tokens += count(part) - Math.ceil(part.url.length / 4)
    }
  }
  return tokens
}
