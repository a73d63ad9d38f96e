/**
 * The benchmark's server: `Testing.FakeProvider` in its own process, so its CPU is not the
 * client's. Records nothing. Prints `{"url": …}` on one line once it listens; stops on SIGTERM.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Effect } from "effect"
import { Testing } from "../src/index.js"
import { CHUNKS, REPLY_TEXT } from "./workload.js"

const main = Effect.gen(function* () {
  const fake = yield* Testing.FakeProvider.make({ record: false, reply: { text: REPLY_TEXT, chunks: CHUNKS } })
  process.stdout.write(JSON.stringify({ url: fake.url }) + "\n")
  return yield* Effect.never
}).pipe(Effect.scoped)

NodeRuntime.runMain(main, { disableErrorReporting: true })
