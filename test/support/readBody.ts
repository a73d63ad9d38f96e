/** Reads a body to its end or to its failure; the text that arrived is kept either way. */
export const readAll = async (response: Response): Promise<{ readonly text: string; readonly failed: boolean }> => {
  const reader = response.body!.getReader()
  const decoder = new TextDecoder()
  let text = ""
  try {
    for (;;) {
      const { done, value } = await reader.read()
      if (done) return { text, failed: false }
      text += decoder.decode(value, { stream: true })
    }
  } catch {
    return { text, failed: true }
  }
}
