/**
 * The request path every provider stands on, by job: `endpoint` (what a provider's calls
 * share), `exchange` (admission, lease, send, classify, report, re-try on another key),
 * `stream` (framing, parsing, deadlines), `delivered` (what a stream gave its consumer).
 */
export { defaults, type Endpoint, type Outgoing, resolveEndpoint } from "./endpoint.js"
export { sendJson, sendJsonAs } from "./exchange.js"
export type { Framing, StreamParser } from "./framing.js"
export { sendStream } from "./stream.js"
