import { describe, expect, it } from "vitest"
import { loadWith, missingMessage } from "../../../src/internal/redis/ioredis.js"

const notFound = (id: string) => Object.assign(new Error(`Cannot find module '${id}'`), { code: "MODULE_NOT_FOUND" })

describe("loading ioredis for effect-llm/Redis", () => {
  it("without the package, says to install it", () => {
    expect(() => loadWith(() => { throw notFound("ioredis") })).toThrow(missingMessage)
    expect(missingMessage).toContain("npm install ioredis")
  })

  it("a dependency of ioredis missing is not reported as ioredis missing", () => {
    expect(() => loadWith(() => { throw notFound("denque") })).toThrow("Cannot find module 'denque'")
  })

  it("with the package, gives its Redis client", () => {
    const fake = { Redis: class {} }
    expect(loadWith(() => fake).Redis).toBe(fake.Redis)
  })
})
