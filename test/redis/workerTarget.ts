/** In a worker process (no vitest there): the Redis target its parent passed. */
import type * as Redis from "../../src/Redis.js"

export const targetFromEnv = (): Redis.RedisTarget => {
  const json = process.env.REDIS_TARGET
  if (json !== undefined && json !== "") return JSON.parse(json) as Redis.RedisTarget
  const url = process.env.REDIS_URL
  if (url === undefined || url === "") throw new Error("worker: neither REDIS_TARGET nor REDIS_URL is set")
  return { url }
}
