/**
 * A small MCP server over stdio, written with the official SDK (`McpServer`, zod schemas): a
 * notebook with three tools. examples/mcp.ts spawns it; any MCP client can
 * (`node --import tsx examples/mcp/server.ts`).
 */
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js"
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js"
import { z } from "zod"

const notes = new Map<string, string>([
  ["groceries", "eggs, flour, lemons"],
  ["trip", "Lisbon from March 3 to March 9: book the tram tour and the Sintra train"]
])

const server = new McpServer({ name: "notebook", version: "1.0.0" })

server.registerTool("search_notes", {
  description: "Finds the notes whose title or text contains the query",
  inputSchema: { query: z.string().min(1) }
}, ({ query }) => {
  const found = [...notes].filter(([title, text]) => `${title} ${text}`.toLowerCase().includes(query.toLowerCase()))
  return { content: [{ type: "text", text: found.map(([title, text]) => `${title}: ${text}`).join("\n") || "no note matches" }] }
})

server.registerTool("read_note", {
  description: "The text of the note with this title",
  inputSchema: { title: z.string() }
}, ({ title }) => {
  const text = notes.get(title)
  return text === undefined
    ? { isError: true, content: [{ type: "text", text: `no note named ${title}; the notes are ${[...notes.keys()].join(", ")}` }] }
    : { content: [{ type: "text", text }] }
})

server.registerTool("word_count", {
  description: "Counts the words of a note",
  inputSchema: { title: z.string() },
  outputSchema: { title: z.string(), words: z.number() }
}, ({ title }) => {
  const result = { title, words: (notes.get(title) ?? "").split(/\s+/).filter((w) => w.length > 0).length }
  return { structuredContent: result, content: [{ type: "text", text: JSON.stringify(result) }] }
})

await server.connect(new StdioServerTransport())
