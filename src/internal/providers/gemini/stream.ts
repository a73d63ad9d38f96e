/** The `streamGenerateContent` parser: a light, tolerant parse of each chunk, no Schema per chunk. */
import * as Err from "../../../LlmError.js"
import type * as Message from "../../../Message.js"
import { malformed } from "../../request/errors.js"
import { badIndex, isStreamIndex } from "../streamIndex.js"
import { Parser } from "../streamParser.js"
import { finishReasonOf, signatureState, type ThoughtSignature, toolCallId, usageOf, type WireUsage } from "./response.js"

type PathKey = string | number

/** Parses a partial argument's `jsonPath` (`$.a.b[0]['c d']`); undefined when unreadable. */
const parseJsonPath = (path: string): Array<PathKey> | undefined => {
  if (!path.startsWith("$")) return undefined
  const keys: Array<PathKey> = []
  const re = /\.([^.[\]]+)|\[(\d+)\]|\['((?:[^'\\]|\\.)*)'\]|\["((?:[^"\\]|\\.)*)"\]/gy
  re.lastIndex = 1
  let match: RegExpExecArray | null
  while (re.lastIndex < path.length && (match = re.exec(path)) !== null) {
    if (match[1] !== undefined) keys.push(match[1])
    else if (match[2] !== undefined) keys.push(Number(match[2]))
    else keys.push((match[3] ?? match[4])!)
  }
  return re.lastIndex === path.length || keys.length === 0 && path === "$" ? keys : undefined
}

interface PendingCall {
  readonly index: number
  readonly id: string
  name: string
  args: Record<string, unknown>
  /** The path whose string value continues in the next partial argument. */
  continuing: string | undefined
}

/**
 * The stream state machine: text and `thought` parts, whole function calls (Gemini API)
 * and calls whose arguments stream as `partialArgs` (Vertex, `willContinue`), usage from
 * the latest `usageMetadata`, and the finish reason. Gemini sends no end marker: a stream
 * that ends without a finish reason was cut.
 */
export class ChunkParser extends Parser {
  private finishReason: string | undefined = undefined
  /** The latest usageMetadata: read once, when the stream ends. */
  private usage: typeof WireUsage.Type | undefined = undefined
  private readonly calls: Array<PendingCall> = []
  private open: PendingCall | undefined = undefined
  private readonly callSignatures: Array<ThoughtSignature> = []
  private textSignature: string | undefined = undefined

  onData(data: string, _event: string | undefined, out: Array<Message.StreamEvent>): Err.LlmError | undefined {
    if (this.finished) return undefined
    const chunk = this.frame(data)
    if (chunk instanceof Err.MalformedResponseError) return chunk
    if (chunk.error !== undefined && chunk.error !== null) return this.errorEvent(chunk)
    if (typeof chunk.responseId === "string" && this.id === "") this.id = chunk.responseId
    if (typeof chunk.modelVersion === "string") this.model = chunk.modelVersion
    const usage = chunk.usageMetadata as typeof WireUsage.Type | undefined
    if (typeof usage === "object" && usage !== null && typeof usage.promptTokenCount === "number") this.usage = usage
    const candidates = chunk.candidates
    if (!Array.isArray(candidates) || candidates.length === 0) {
      const feedback = chunk.promptFeedback as { blockReason?: unknown } | undefined
      if (typeof feedback?.blockReason === "string") this.finishReason = "SAFETY"
      return undefined
    }
    const candidate = candidates[0] as { content?: { parts?: unknown }; finishReason?: unknown }
    const parts = candidate.content?.parts
    if (Array.isArray(parts)) {
      for (const part of parts as Array<Record<string, unknown>>) {
        const call = part.functionCall
        const signature = typeof part.thoughtSignature === "string" && part.thoughtSignature.length > 0 ? part.thoughtSignature : undefined
        if (typeof call === "object" && call !== null) {
          const before = this.calls.length
          const error = this.onFunctionCall(call as Record<string, unknown>, out)
          if (error !== undefined) return malformed(this.provider, this.model, data, error)
          const owner = this.calls.length > before ? this.calls[this.calls.length - 1] : this.open
          if (signature !== undefined && owner !== undefined) this.callSignatures.push({ thoughtSignature: signature, toolCallId: owner.id })
          continue
        }
        if (signature !== undefined) this.textSignature = signature
        if (typeof part.text === "string" && part.text.length > 0) {
          if (part.thought === true) this.think(part.text, out)
          else this.text(part.text, out)
        }
      }
    }
    if (typeof candidate.finishReason === "string") {
      this.finishReason = candidate.finishReason
      this.closeOpen(out)
    }
    return undefined
  }

  onEnd(out: Array<Message.StreamEvent>): Err.LlmError | undefined {
    if (this.finished) return undefined
    if (this.finishReason === undefined) return this.cut("it finished", this.started(this.calls.length))
    this.finished = true
    this.closeOpen(out)
    const calls = this.calls.map((call) => ({ name: call.name, arguments: JSON.stringify(call.args) }))
    this.finishWith(out, finishReasonOf(this.finishReason, this.calls.length > 0), this.usage === undefined ? undefined : usageOf(this.usage), calls, signatureState(this.callSignatures, this.textSignature))
    return undefined
  }

  /** One `functionCall` part; why it cannot be read, if it cannot. */
  private onFunctionCall(call: Record<string, unknown>, out: Array<Message.StreamEvent>): string | undefined {
    const name = typeof call.name === "string" && call.name.length > 0 ? call.name : undefined
    const partials = Array.isArray(call.partialArgs) ? (call.partialArgs as Array<Record<string, unknown>>) : undefined
    const args = typeof call.args === "object" && call.args !== null ? (call.args as Record<string, unknown>) : undefined
    const willContinue = call.willContinue === true
    // a new name while a streamed call is open starts the next call; the same name again continues it
    if (this.open !== undefined && name !== undefined && this.open.name.length > 0 && name !== this.open.name) this.closeOpen(out)
    let pending = this.open
    if (pending === undefined) {
      if (name === undefined && partials === undefined && args === undefined) return undefined
      const index = this.calls.length
      pending = {
        index,
        id: toolCallId(this.id, index, typeof call.id === "string" ? call.id : undefined),
        name: name ?? "",
        args: {},
        continuing: undefined
      }
      this.calls.push(pending)
      if (!willContinue) {
        pending.args = args ?? {}
        const text = JSON.stringify(pending.args)
        out.push({ _tag: "ToolCallDelta", index, id: pending.id, name: pending.name, argumentsDelta: text })
        out.push({ _tag: "ToolCall", index, id: pending.id, name: pending.name, arguments: text })
        return undefined
      }
      this.open = pending
      out.push({ _tag: "ToolCallDelta", index, id: pending.id, name: pending.name, argumentsDelta: "" })
    } else if (name !== undefined) {
      pending.name = name
    }
    if (args !== undefined) for (const key of Object.keys(args)) setOwn(pending.args, key, args[key])
    if (partials !== undefined) {
      for (const partial of partials) {
        const error = applyPartial(pending, partial)
        if (error !== undefined) return error
      }
    }
    if (!willContinue) this.closeOpen(out)
    return undefined
  }

  private closeOpen(out: Array<Message.StreamEvent>): void {
    const call = this.open
    if (call === undefined) return
    this.open = undefined
    const text = JSON.stringify(call.args)
    out.push({ _tag: "ToolCallDelta", index: call.index, argumentsDelta: text })
    out.push({ _tag: "ToolCall", index: call.index, id: call.id, name: call.name, arguments: text })
  }
}

/** Sets an own property: a key such as `__proto__` is data here, never the prototype. */
const setOwn = (node: object, key: PathKey, value: unknown): void => {
  Object.defineProperty(node, key, { value, writable: true, enumerable: true, configurable: true })
}

/**
 * Writes one streamed argument into the call's arguments; strings may arrive in pieces.
 * Returns why the argument cannot be written, if it cannot: a path that does not read, a
 * name on an array, an index into an object or past `maxStreamIndex`, or no value.
 */
const applyPartial = (call: PendingCall, partial: Record<string, unknown>): string | undefined => {
  const path = typeof partial.jsonPath === "string" ? partial.jsonPath : undefined
  if (path === undefined) return "a partial argument has no jsonPath"
  const keys = parseJsonPath(path)
  const where = `partial argument ${JSON.stringify(Err.excerptOf(path, 80))}`
  if (keys === undefined || keys.length === 0) return `${where} is not a path into the arguments`
  let value: unknown
  if (typeof partial.stringValue === "string") value = partial.stringValue
  else if (typeof partial.numberValue === "number") value = partial.numberValue
  else if (typeof partial.boolValue === "boolean") value = partial.boolValue
  else if ("nullValue" in partial) value = null
  else return `${where} has no value`
  let node: Record<PathKey, unknown> = call.args
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]!
    if (typeof key === "number") {
      if (!Array.isArray(node)) return `${where} indexes an object`
      if (!isStreamIndex(key)) return badIndex(where, key)
    } else if (Array.isArray(node)) return `${where} names a key on an array`
    if (i === keys.length - 1) break
    let next = Object.hasOwn(node, key) ? node[key] : undefined
    if (typeof next !== "object" || next === null) {
      next = typeof keys[i + 1] === "number" ? [] : {}
      setOwn(node, key, next)
    }
    node = next as Record<PathKey, unknown>
  }
  const last = keys[keys.length - 1]!
  const previous = Object.hasOwn(node, last) ? node[last] : undefined
  setOwn(node, last, typeof value === "string" && call.continuing === path && typeof previous === "string" ? previous + value : value)
  call.continuing = typeof value === "string" && partial.willContinue === true ? path : undefined
  return undefined
}
