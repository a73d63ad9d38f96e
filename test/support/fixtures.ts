/**
 * Recorded provider traffic lives in ../shared/fixtures (or $LLM_FIXTURES), read in place and
 * never copied into the repository. Suites that need it skip, saying so, when it is absent.
 */
import { existsSync, readFileSync } from "node:fs"
import { dirname, join, resolve } from "node:path"
import { fileURLToPath } from "node:url"

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..")

export const fixturesDir: string = process.env.LLM_FIXTURES ?? join(repoRoot, "..", "shared", "fixtures")

export const hasFixtures: boolean = existsSync(join(fixturesDir, "SOURCES.md"))

if (!hasFixtures) {
  console.warn(`[fixtures] ${fixturesDir} is absent: the conformance tests that replay recorded traffic are skipped`)
}

/** A fixture file's text, by its path under the fixtures folder. */
export const readFixture = (relative: string): string => readFileSync(join(fixturesDir, relative), "utf8")

/** The non-empty lines of a `*.chunks.txt` fixture: one JSON payload each. */
export const fixtureLines = (relative: string): Array<string> =>
  readFixture(relative).split(/\r?\n/).filter((line) => line.trim().length > 0)
