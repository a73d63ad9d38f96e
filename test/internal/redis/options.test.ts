import { describe, expect, it } from "vitest"
import { describeFailure, safeUrl } from "../../../src/internal/redis/options.js"

describe("Redis failure descriptions", () => {
  it("give ioredis' own message, with the URL's password masked wherever it appears", () => {
    const url = "redis://user:p%40ss-word@127.0.0.1:6379/0"
    expect(describeFailure(new Error("connect ECONNREFUSED 127.0.0.1:6379"), url)).toBe("connect ECONNREFUSED 127.0.0.1:6379")
    expect(describeFailure(new Error("WRONGPASS for p@ss-word at redis://user:p@ss-word@host"), url)).toBe("WRONGPASS for *** at redis://user:***@host")
    expect(describeFailure("no answer within 500ms", url)).toBe("no answer within 500ms")
    expect(describeFailure({ weird: true }, "not a url")).toBe("unknown error")
    expect(safeUrl(url)).not.toContain("ss-word")
  })
})
