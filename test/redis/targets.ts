/**
 * The Redis deployments the Redis tests run against, both started by test/setup/redis.ts:
 * one server, and a three-node Redis Cluster. A test suite runs once per target with
 * `describe.each(targets)`, skipping (and saying so) the targets whose binaries are absent.
 */
import { inject } from "vitest"
import type * as Redis from "../../src/Redis.js"

export interface Target {
  readonly name: string
  /** What a store layer takes to reach it: `{ url }` or `{ cluster }`. */
  readonly options: Redis.RedisTarget
  /** Empty when this deployment could not be started: the suite skips. */
  readonly available: boolean
  /** For a worker process: REDIS_TARGET, the options as JSON. */
  readonly env: Readonly<Record<string, string>>
}

const url = inject("redisUrl")
const cluster = inject("redisCluster")

const target = (name: string, options: Redis.RedisTarget, available: boolean): Target => ({
  name,
  options,
  available,
  env: { REDIS_TARGET: JSON.stringify(options) }
})

export const single = target("one Redis", { url }, url !== "")
export const cluster3 = target("a 3-node Redis Cluster", { cluster: cluster.split(",").filter((u) => u !== "") }, cluster !== "")

export const targets: ReadonlyArray<Target> = [single, cluster3]

/** Says once per suite which targets it skips. */
export const announce = (suite: string) => {
  if (!single.available) console.warn(`[redis] no redis-server: ${suite} is skipped`)
  else if (!cluster3.available) console.warn(`[redis] no Redis Cluster (redis-cli missing?): ${suite} on a cluster is skipped`)
}
