/**
 * The benchmark's server: `Testing.FakeProvider` in its own process, so its CPU is not the
 * client's. Records nothing. Prints `{"url": …}` on one line once it listens; stops on SIGTERM.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Effect } from "effect"
import * as Testing from "../src/Testing.js"
import { CHUNKS, REPLY_TEXT } from "./workload.js"

// `--chunk-delay-ms N` spaces the stream's chunks, so that many streams are open at once
const delayArg = process.argv.indexOf("--chunk-delay-ms")
const chunkDelayMs = delayArg >= 0 ? Number(process.argv[delayArg + 1]) : 0

const main = Effect.gen(function* () {
  const fake = yield* Testing.FakeProvider.make({
    record: false,
    reply: chunkDelayMs > 0 ? { text: REPLY_TEXT, chunks: CHUNKS, chunkDelayMs } : { text: REPLY_TEXT, chunks: CHUNKS }
  })
  process.stdout.write(JSON.stringify({ url: fake.url }) + "\n")
  return yield* Effect.never
}).pipe(Effect.scoped)

NodeRuntime.runMain(main, { disableErrorReporting: true })
