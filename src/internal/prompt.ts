/**
 * The short form of a request: `{ system?, prompt, ...options }`, normalised to the
 * `ChatRequest` every model takes. The `ChatRequest` schema is unchanged: this is an input
 * form of the accessors and of the generate options only.
 */
import * as Message from "../Message.js"

export type Prompt = Omit<Message.ChatRequest, "messages"> & {
  /** A system prompt, sent before `prompt`. */
  readonly system?: string | undefined
  /** The user's message, or the messages of the conversation so far. */
  readonly prompt: string | ReadonlyArray<Message.Message>
}

export type Input = Message.ChatRequest | Prompt

export const isPrompt = (input: Input): input is Prompt => "prompt" in input && !("messages" in input)

export const fromPrompt = ({ prompt, system, ...options }: Prompt): Message.ChatRequest => ({
  ...options,
  messages: [
    ...(system === undefined ? [] : [Message.system(system)]),
    ...(typeof prompt === "string" ? [Message.user(prompt)] : prompt)
  ]
})

export const toRequest = (input: Input): Message.ChatRequest => (isPrompt(input) ? fromPrompt(input) : input)
