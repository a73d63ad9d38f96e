/**
 * Validates request bodies against OpenAI's published OpenAPI document
 * (../shared/fixtures/openai-spec/openapi.yaml), read in place.
 */
import { Ajv2020 } from "ajv/dist/2020.js"
import { existsSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as addFormatsModule from "ajv-formats"
import { parse } from "yaml"
import { fixturesDir, hasFixtures, readFixture } from "./fixtures.js"

// ajv-formats is CommonJS: its plugin sits on `default`
const addFormats = addFormatsModule.default as unknown as (ajv: Ajv2020) => void

type Validate = ((data: unknown) => boolean) & { errors?: Array<{ instancePath: string; message?: string }> | null }

let ajv: InstanceType<typeof Ajv2020> | undefined
const cache = new Map<string, Validate>()

/** OpenAPI's `nullable: true` as JSON Schema 2020-12: `null` becomes one more allowed value. */
const normalize = (node: unknown): unknown => {
  if (Array.isArray(node)) return node.map(normalize)
  if (typeof node !== "object" || node === null) return node
  const out: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(node)) if (key !== "nullable") out[key] = normalize(value)
  if ((node as { nullable?: unknown }).nullable !== true) return out
  if (typeof out.type === "string") return { ...out, type: [out.type, "null"] }
  return { anyOf: [out, { type: "null" }] }
}

type Spec = { components: { schemas: Record<string, unknown> } }

/**
 * Parsing the 3 MB YAML takes seconds (more on a busy machine), in every test worker; its
 * JSON form is cached in the temp folder, keyed by the document's size and mtime.
 */
const readSpec = (): Spec => {
  const source = join(fixturesDir, "openai-spec/openapi.yaml")
  const { size, mtimeMs } = statSync(source)
  const cached = join(tmpdir(), `effect-llm-openapi-${size}-${Math.floor(mtimeMs)}.json`)
  if (existsSync(cached)) {
    try {
      return JSON.parse(readFileSync(cached, "utf8")) as Spec
    } catch {
      // a torn or foreign file: parse the YAML again
    }
  }
  const spec = parse(readFixture("openai-spec/openapi.yaml")) as Spec
  const partial = `${cached}.${process.pid}.tmp`
  writeFileSync(partial, JSON.stringify(spec))
  renameSync(partial, cached) // atomic, so parallel workers never read half a file
  return spec
}

const load = () => {
  if (ajv !== undefined) return ajv
  const spec = readSpec()
  // strict off: the document uses OpenAPI keywords (nullable, x-oai*) that JSON Schema does not know
  const instance = new Ajv2020({ strict: false, allErrors: true, validateFormats: true })
  addFormats(instance)
  instance.addSchema({ $id: "openai", components: normalize(spec.components) })
  ajv = instance
  return instance
}

/** A validator for `#/components/schemas/<name>`; undefined when the fixtures are absent. */
export const validatorFor = (name: string): Validate | undefined => {
  if (!hasFixtures) return undefined
  let validate = cache.get(name)
  if (validate === undefined) {
    validate = load().compile({ $ref: `openai#/components/schemas/${name}` }) as Validate
    cache.set(name, validate)
  }
  return validate
}

/** Throws with the spec's complaints when `body` does not validate against `name`. */
export const assertValid = (name: string, body: unknown): void => {
  const validate = validatorFor(name)
  if (validate === undefined) return
  if (!validate(body)) {
    const problems = (validate.errors ?? []).slice(0, 5).map((e) => `${e.instancePath || "/"} ${e.message ?? ""}`)
    throw new Error(`request body does not match ${name}:\n  ${problems.join("\n  ")}\n${JSON.stringify(body).slice(0, 500)}`)
  }
}
