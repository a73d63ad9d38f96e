/** What every client in the HTTP suite sends and must get back: one workload, so the numbers compare. */

/** Stream chunks per reply: `mode: "stream"` receives this many content frames. */
export const CHUNKS = 64

/** The reply the fake sends; each client checks it got exactly this text back. */
export const REPLY_TEXT = Array.from({ length: CHUNKS }, (_, i) => `word${String(i).padStart(2, "0")} `).join("")

export const MODEL = "gpt-4o-mini"

export const SYSTEM_PROMPT = "You are a concise assistant."
export const USER_PROMPT = "Write sixty-four words about token buckets."

export type Mode = "json" | "stream"
export type ClientName =
  | "undici"
  | "effect-undici"
  | "effect-platform"
  | "effect-llm"
  | "effect-llm-full"
  | "effect-llm-full-httpclient"
  | "openai-sdk"
  | "ai-sdk"
/**
 * `effect-undici` is the raw undici client inside one `Effect.promise` per request, run as an
 * Effect program runs many (one fiber per request, `Effect.forEach` with a concurrency): the
 * least any Effect client costs, the floor under a hot path of plain code in one `Effect.async`.
 * `effect-platform` is @effect/platform's HttpClient with a hand-written parse: the floor under
 * effect-llm's HttpClient path. `effect-llm` is the provider layer alone; `effect-llm-full` is the stack the
 * targets are about (two keys, a limiter, Retry, Usage). Both send through
 * `Transport.layerUndici`; `effect-llm-full-httpclient` is the full stack sending through
 * @effect/platform's HttpClient instead (what a stack without a Transport does).
 */
export const CLIENTS: ReadonlyArray<ClientName> = [
  "undici",
  "effect-undici",
  "effect-platform",
  "effect-llm",
  "effect-llm-full",
  "effect-llm-full-httpclient",
  "openai-sdk",
  "ai-sdk"
]
export const MODES: ReadonlyArray<Mode> = ["json", "stream"]

/** One client's measurement, printed by bench/client.ts as a JSON line. */
export interface Measurement {
  readonly client: ClientName
  readonly mode: Mode
  readonly requests: number
  readonly concurrency: number
  /** process.cpuUsage (user + system) over the measured requests, divided by their number. */
  readonly cpuMicrosPerRequest: number
  readonly userMicrosPerRequest: number
  readonly systemMicrosPerRequest: number
  readonly wallMillis: number
}
