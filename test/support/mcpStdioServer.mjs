// An MCP server over stdio, built on the SDK's own `Server` class, for the tests of
// `effect-llm/Mcp`: `node test/support/mcpStdioServer.mjs`. Plain JavaScript, so that it
// starts without a TypeScript loader. Its tools answer with text, an image, structured
// content and an error result, and misbehave on request: `crash` exits mid-call, `hang` never
// answers, `garble` writes a line that is not JSON-RPC, `add_tool` changes the tool list and
// says so (`notifications/tools/list_changed`).
import { Server } from "@modelcontextprotocol/sdk/server/index.js"
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js"
import { CallToolRequestSchema, ErrorCode, ListToolsRequestSchema, McpError } from "@modelcontextprotocol/sdk/types.js"

// a 1x1 red PNG
const redDot = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="

const object = (properties = {}, required = []) => ({ type: "object", properties, required })

const tools = [
  { name: "echo", description: "Says the text back", inputSchema: object({ text: { type: "string" } }, ["text"]) },
  { name: "image", description: "Draws a red dot", inputSchema: object() },
  { name: "fail", description: "Reads a file that does not exist", inputSchema: object() },
  {
    name: "weather",
    description: "Structured weather",
    inputSchema: object({ city: { type: "string" } }, ["city"]),
    outputSchema: object({ city: { type: "string" }, tempC: { type: "number" } }, ["city", "tempC"])
  },
  { name: "crash", description: "Exits mid-call", inputSchema: object() },
  { name: "hang", description: "Never answers", inputSchema: object() },
  { name: "garble", description: "Answers with a line that is not JSON-RPC", inputSchema: object() },
  { name: "pid", description: "The server's process id", inputSchema: object() },
  { name: "add_tool", description: "Adds the tool `extra`", inputSchema: object() }
]
const extra = { name: "extra", description: "Exists once add_tool ran", inputSchema: object() }
let listed = tools

const server = new Server({ name: "test-stdio-server", version: "1.0.0" }, { capabilities: { tools: { listChanged: true } } })

server.setRequestHandler(ListToolsRequestSchema, async () => ({ tools: listed }))

server.setRequestHandler(CallToolRequestSchema, async (request) => {
  const args = request.params.arguments ?? {}
  switch (request.params.name) {
    case "echo":
      return { content: [{ type: "text", text: `echo: ${args.text}` }] }
    case "image":
      return { content: [{ type: "text", text: "a red dot" }, { type: "image", data: redDot, mimeType: "image/png" }] }
    case "fail":
      return { isError: true, content: [{ type: "text", text: "ENOENT: no such file, notes/missing.md" }] }
    case "weather": {
      const value = { city: String(args.city), tempC: 21 }
      return { structuredContent: value, content: [{ type: "text", text: JSON.stringify(value) }] }
    }
    case "crash":
      process.stderr.write("fatal: crashing on purpose\n", () => process.exit(3))
      return new Promise(() => {})
    case "hang":
      return new Promise(() => {})
    case "garble":
      process.stdout.write("this is not json\n")
      return new Promise(() => {})
    case "pid":
      return { content: [{ type: "text", text: String(process.pid) }] }
    case "add_tool":
      listed = [...tools, extra]
      await server.sendToolListChanged()
      return { content: [{ type: "text", text: "added extra" }] }
    case "extra":
      if (listed.includes(extra)) return { content: [{ type: "text", text: "extra ran" }] }
  }
  throw new McpError(ErrorCode.InvalidParams, `Tool ${request.params.name} not found`)
})

await server.connect(new StdioServerTransport())
