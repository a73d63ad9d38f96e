/** A Chat Completions request with every message kind and option, and its expected wire body. */
import { Message } from "../../src/index.js"

export const weatherTool: Message.ToolDefinition = {
  name: "weather",
  description: "The weather in a city",
  parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"], additionalProperties: false },
  strict: true
}

/** A request with every message kind and every option. */
export const full: Message.ChatRequest = {
  messages: [
    Message.system("Be brief."),
    Message.user([Message.text("What is in this picture?"), Message.image("https://example.com/cat.png", { detail: "low" })]),
    Message.assistant("", {
      toolCalls: [
        { id: "call_a", name: "weather", arguments: "{\"city\":\"Paris\"}" },
        { id: "call_b", name: "weather", arguments: "{\"city\":\"Oslo\"}" }
      ],
      reasoning: "two cities, two calls"
    }),
    Message.tool("call_a", "{\"celsius\":21}", "weather"),
    Message.tool("call_b", "{\"celsius\":4}", "weather"),
    Message.assistant("Paris 21°C, Oslo 4°C."),
    Message.user("Thanks!")
  ],
  tools: [weatherTool],
  toolChoice: { name: "weather" },
  responseFormat: {
    type: "json_schema",
    name: "answer",
    description: "The answer",
    schema: { type: "object", properties: { text: { type: "string" } }, required: ["text"], additionalProperties: false },
    strict: true
  },
  temperature: 0.2,
  topP: 0.9,
  maxTokens: 256,
  stop: ["END"],
  seed: 7,
  presencePenalty: 0.1,
  frequencyPenalty: 0.2,
  user: "user-1",
  reasoningEffort: "low",
  extra: { logprobs: true, top_logprobs: 2, metadata: { trace: "t-1" } }
}

export const expectedWire = {
  model: "gpt-4o-mini",
  messages: [
    { role: "system", content: "Be brief." },
    {
      role: "user",
      content: [
        { type: "text", text: "What is in this picture?" },
        { type: "image_url", image_url: { url: "https://example.com/cat.png", detail: "low" } }
      ]
    },
    {
      role: "assistant",
      content: null,
      tool_calls: [
        { id: "call_a", type: "function", function: { name: "weather", arguments: "{\"city\":\"Paris\"}" } },
        { id: "call_b", type: "function", function: { name: "weather", arguments: "{\"city\":\"Oslo\"}" } }
      ]
    },
    { role: "tool", tool_call_id: "call_a", content: "{\"celsius\":21}" },
    { role: "tool", tool_call_id: "call_b", content: "{\"celsius\":4}" },
    { role: "assistant", content: "Paris 21°C, Oslo 4°C." },
    { role: "user", content: "Thanks!" }
  ],
  tools: [{
    type: "function",
    function: { name: "weather", description: "The weather in a city", parameters: weatherTool.parameters, strict: true }
  }],
  tool_choice: { type: "function", function: { name: "weather" } },
  response_format: {
    type: "json_schema",
    json_schema: {
      name: "answer",
      description: "The answer",
      schema: { type: "object", properties: { text: { type: "string" } }, required: ["text"], additionalProperties: false },
      strict: true
    }
  },
  temperature: 0.2,
  top_p: 0.9,
  max_completion_tokens: 256,
  stop: ["END"],
  seed: 7,
  presence_penalty: 0.1,
  frequency_penalty: 0.2,
  user: "user-1",
  reasoning_effort: "low",
  logprobs: true,
  top_logprobs: 2,
  metadata: { trace: "t-1" }
}
