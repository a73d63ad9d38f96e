/** `data:` URLs, for APIs that take an image's bytes rather than its URL. */

/** Splits a `data:` URL into its media type and base64 payload. */
export const parseDataUrl = (url: string): { readonly mediaType: string; readonly data: string } | undefined => {
  const match = /^data:([^;,]+)?(?:;[^,]*)?;base64,(.*)$/s.exec(url)
  return match === null ? undefined : { mediaType: match[1] ?? "application/octet-stream", data: match[2]! }
}
