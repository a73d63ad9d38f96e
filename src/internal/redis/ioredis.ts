/**
 * ioredis, loaded here for every Redis store: it is an optional peer dependency, needed by
 * `effect-llm/Redis` alone, and without it importing `effect-llm/Redis` says what to install
 * instead of Node's `Cannot find package 'ioredis'`.
 */
import { createRequire } from "node:module"
import type * as IORedis from "ioredis"

export const missingMessage = "effect-llm/Redis needs the ioredis package (an optional peer dependency): npm install ioredis"

/** `load` for a `require` that may not find the package. */
export const loadWith = (requireModule: (id: string) => unknown): typeof IORedis => {
  try {
    return requireModule("ioredis") as typeof IORedis
  } catch (error) {
    const e = error as { readonly code?: unknown; readonly message?: unknown }
    // only ioredis itself missing: a dependency of ioredis missing is its own problem
    if (e.code === "MODULE_NOT_FOUND" && String(e.message).includes("'ioredis'")) throw new Error(missingMessage, { cause: error })
    throw error
  }
}

// the CommonJS build has a `require`; the ES module build makes one
export const { Cluster, Redis } = loadWith(typeof require === "function" ? require : createRequire(import.meta.url))
export type Redis = IORedis.Redis
export type Cluster = IORedis.Cluster
