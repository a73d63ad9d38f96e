/** What the official-client suites share: a fake per test, and a failure caught as a value. */
import { Effect } from "effect"
import * as Testing from "../../../src/Testing.js"

/** A dummy key: the fake takes any. */
export const apiKey = "sk-fake-conformance"

/** Runs `body` against a fresh fake, closed with the test's scope. */
export const withFake = (options: Testing.FakeProviderOptions, body: (fake: Testing.FakeProviderService) => Promise<void>) =>
  Effect.flatMap(Testing.FakeProvider.make(options), (fake) => Effect.promise(() => body(fake)))

/** Queues faults from plain async code. */
export const inject = (fake: Testing.FakeProviderService, ...faults: ReadonlyArray<Testing.Fault>) =>
  Effect.runPromise(fake.inject(...faults))

/** How many requests reached the fake. */
export const requestCount = (fake: Testing.FakeProviderService) => Effect.runPromise(fake.requests).then((all) => all.length)

/** The error a promise rejects with; fails the test when it resolves. */
export const failure = async (run: () => Promise<unknown>): Promise<unknown> => {
  try {
    await run()
  } catch (error) {
    return error
  }
  throw new Error("expected a failure, got a result")
}

/** What a stream delivered before it failed, and the failure. */
export const drain = async <A>(iterable: () => Promise<AsyncIterable<A>> | AsyncIterable<A>): Promise<{ readonly items: Array<A>; readonly error: unknown }> => {
  const items: Array<A> = []
  try {
    for await (const item of await iterable()) items.push(item)
  } catch (error) {
    return { items, error }
  }
  return { items, error: undefined }
}

export const weather = {
  name: "get_weather",
  description: "The weather in a city",
  parameters: { type: "object" as const, properties: { city: { type: "string" } }, required: ["city"] }
}

export const weatherCall = { id: "call_w1", name: "get_weather", arguments: "{\"city\":\"Paris\"}" }
