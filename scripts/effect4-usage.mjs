// Which Effect 3 APIs src/ uses that Effect 4 renames, moves or removes, with counts and files,
// read against Effect's generated migration reference (migration/v3-to-v4.md in Effect-TS/effect).
//
//   git -C <effect checkout> show HEAD:migration/v3-to-v4.md > /tmp/v3-to-v4.md
//   node scripts/effect4-usage.mjs /tmp/v3-to-v4.md [src] > report.md
//
// A use is `Alias.member` where Alias is a namespace import of an `effect` / `@effect/*` module
// (`import * as Effect from "effect/Effect"`, `import { Options } from "@effect/cli"`), or a
// named import of a member (`import { pipe } from "effect/Function"`), counted in code with
// comments and import lines left out; type positions count too. The reference lists, per v3
// module, each API that v4 renames (`A -> B`), removes (`-> none`) or keeps with a revised
// declaration (`A -> A`); an API it does not list is unchanged.
import * as fs from "node:fs"
import * as path from "node:path"

const [referencePath, srcArg = "src"] = process.argv.slice(2)
if (referencePath === undefined) {
  console.error("usage: node scripts/effect4-usage.mjs <v3-to-v4.md> [src]")
  process.exit(2)
}
const reference = fs.readFileSync(referencePath, "utf8")
const root = path.resolve(srcArg)

// ---- the reference ---------------------------------------------------------------------------

/** v3 module -> v4 modules (the Import Map). */
const moves = new Map()
const importMap = /## Import Map[\s\S]*?```text\n([\s\S]*?)```/.exec(reference)?.[1] ?? ""
for (const line of importMap.split("\n")) {
  const m = /^(\S+) -> (\S+)/.exec(line)
  if (m) moves.set(m[1], [...(moves.get(m[1]) ?? []), m[2]])
}
/** v3 module -> what the "Removed Modules" list says of it. */
const removedModules = new Map()
const removedSection = /## Removed Modules\n([\s\S]*?)\n## /.exec(reference)?.[1] ?? ""
for (const line of removedSection.split("\n")) {
  const m = /^- `([^`]+)`(?: -> `([^`]+)`)?:? ?(.*)$/.exec(line)
  if (m) removedModules.set(m[1], m[2] ? `${m[2]}${m[3] ? ` (${m[3].replace(/^: /, "")})` : ""}` : m[3])
}
/** v3 module -> Map(api id -> { to, note }) (the API Reference). */
const apis = new Map()
let current
for (const line of reference.split("\n")) {
  const header = /^### `([^`]+)`$/.exec(line)
  if (header) {
    current = new Map()
    apis.set(header[1], current)
    continue
  }
  const entry = /^- `([^`]+)` -> `(.+?)`: (.*)$/.exec(line)
  if (entry && current) current.set(entry[1], { to: entry[2], note: entry[3] })
}

const classify = (module, member) => {
  const short = module.split("/").pop()
  const found = apis.get(module)?.get(`${short}.${member}`)
  if (found === undefined) return { kind: "unchanged" }
  if (found.to === "none") return { kind: "removed", ...found }
  // `Context.Reference<Shape>`, `Schema.Union(members)`: the same name with a new signature
  const bare = found.to.replace(/\\/g, "").replace(/[<(].*$/, "").trim()
  if (bare === `${short}.${member}` || bare === member) return { kind: /\bunchanged\b/i.test(found.note) ? "unchanged" : "revised", ...found }
  return { kind: "renamed", ...found }
}

/** What v4 does to a module: `moves` when its import path changes for every use. */
const moduleFate = (module) => {
  const to = moves.get(module)
  if (to !== undefined) {
    if (to.length === 1 && to[0] === module) return undefined
    const others = to.filter((m) => m !== module)
    return to.includes(module) ? { moves: false, text: `stays; part moves to ${others.join(", ")}` } : { moves: true, text: `moves to ${to.join(" + ")}` }
  }
  if (removedModules.has(module)) {
    const said = removedModules.get(module)
    return { moves: true, text: !said || /^No single module/.test(said) ? "split up: see its APIs below" : said }
  }
  return undefined
}

// ---- the sources -----------------------------------------------------------------------------

const files = []
const walk = (dir) => {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name)
    if (e.isDirectory()) walk(p)
    else if (/\.ts$/.test(e.name) && !/\.d\.ts$/.test(e.name)) files.push(p)
  }
}
walk(root)
files.sort()

const barrels = new Set(["effect", "@effect/cli", "@effect/platform", "@effect/platform-node", "@effect/experimental"])
const uses = new Map() // "module#member" -> Map(file -> count)
const modulesUsed = new Map() // module -> Set(file)
const filesWithEffect = new Set()

for (const file of files) {
  const rel = path.relative(path.dirname(root), file)
  const text = fs.readFileSync(file, "utf8").replace(/\/\*[\s\S]*?\*\//g, "").replace(/(^|[^:"'`\\])\/\/.*$/gm, "$1")
  const namespaces = new Map() // alias -> module
  const members = new Map() // local name -> [module, member]
  const importRe = /(?:^|\n)\s*import\s+(?:type\s+)?([\s\S]*?)\s+from\s+["']([^"']+)["']/g
  for (const m of text.matchAll(importRe)) {
    const [, clause, spec] = m
    if (!(spec === "effect" || spec.startsWith("effect/") || spec.startsWith("@effect/"))) continue
    const star = /\*\s+as\s+([\w$]+)/.exec(clause)
    if (star) namespaces.set(star[1], spec)
    const braces = /\{([\s\S]*)\}/.exec(clause)
    if (braces) {
      for (const raw of braces[1].split(",")) {
        const name = raw.trim().replace(/^type\s+/, "")
        if (!name) continue
        const [imported, local = imported] = name.split(/\s+as\s+/).map((s) => s.trim())
        if (barrels.has(spec)) namespaces.set(local, `${spec}/${imported}`)
        else members.set(local, [spec, imported])
      }
    }
  }
  if (namespaces.size === 0 && members.size === 0) continue
  filesWithEffect.add(rel)
  const code = text.replace(importRe, "\n")
  const count = (module, member, n) => {
    if (n === 0) return
    const key = `${module}#${member}`
    const byFile = uses.get(key) ?? new Map()
    byFile.set(rel, (byFile.get(rel) ?? 0) + n)
    uses.set(key, byFile)
    if (!modulesUsed.has(module)) modulesUsed.set(module, new Set())
    modulesUsed.get(module).add(rel)
  }
  for (const [alias, module] of namespaces) {
    const re = new RegExp(`(?<![\\w$.])${alias.replace(/\$/g, "\\$")}\\.([A-Za-z_$][\\w$]*)`, "g")
    const counts = new Map()
    for (const m of code.matchAll(re)) counts.set(m[1], (counts.get(m[1]) ?? 0) + 1)
    for (const [member, n] of counts) count(module, member, n)
    if (counts.size === 0) {
      // imported and used only bare (e.g. as a type): still a use of the module
      if (!modulesUsed.has(module)) modulesUsed.set(module, new Set())
      modulesUsed.get(module).add(rel)
    }
  }
  for (const [local, [module, member]] of members) {
    const n = [...code.matchAll(new RegExp(`(?<![\\w$.])${local.replace(/\$/g, "\\$")}(?![\\w$])`, "g"))].length
    count(module, member, Math.max(n, 1))
  }
}

// ---- the report ------------------------------------------------------------------------------

const rows = [...uses].map(([key, byFile]) => {
  const [module, member] = key.split("#")
  const fate = classify(module, member)
  const total = [...byFile.values()].reduce((a, b) => a + b, 0)
  return { module, member, fate, total, files: [...byFile.keys()].sort() }
})
const short = (m) => `${m.split("/").pop()}`
const fileList = (list) => list.map((f) => f.replace(/^src\//, "")).join(", ")

const out = []
const kinds = ["removed", "renamed", "revised", "unchanged"]
const totals = Object.fromEntries(kinds.map((k) => [k, rows.filter((r) => r.fate.kind === k).reduce((a, r) => a + r.total, 0)]))
const distinct = Object.fromEntries(kinds.map((k) => [k, rows.filter((r) => r.fate.kind === k).length]))
out.push(`Files read: ${files.length} under ${path.relative(process.cwd(), root) || "."}; ${filesWithEffect.size} import Effect modules.`)
out.push("")
out.push("| what v4 does to the API | distinct APIs | uses |")
out.push("|---|---:|---:|")
for (const k of kinds) out.push(`| ${{ removed: "removes it", renamed: "renames or moves it", revised: "keeps the name, revises the declaration", unchanged: "keeps it as is" }[k]} | ${distinct[k]} | ${totals[k]} |`)
out.push("")

out.push("### Modules that move or split")
out.push("")
out.push("| v3 module | v4 | files |")
out.push("|---|---|---|")
for (const [module, users] of [...modulesUsed].sort()) {
  const fate = moduleFate(module)
  if (fate !== undefined) out.push(`| \`${module}\` | ${fate.text.replace(/\|/g, "\\|")} | ${users.size}: ${fileList([...users].sort())} |`)
}
out.push("")

for (const [kind, title] of [["removed", "APIs v4 removes"], ["renamed", "APIs v4 renames or moves"], ["revised", "APIs v4 keeps with a revised declaration"]]) {
  const list = rows.filter((r) => r.fate.kind === kind).sort((a, b) => b.total - a.total || `${a.module}${a.member}`.localeCompare(`${b.module}${b.member}`))
  out.push(`### ${title} (${list.length})`)
  out.push("")
  out.push("| v3 | v4 | uses | files |")
  out.push("|---|---|---:|---|")
  for (const r of list) {
    const v4 = kind === "revised" ? "same name" : `\`${r.fate.to.replace(/\|/g, "\\|")}\``
    out.push(`| \`${short(r.module)}.${r.member}\` | ${v4} | ${r.total} | ${r.files.length}: ${fileList(r.files)} |`)
  }
  out.push("")
}

// files none of whose uses v4 renames, moves or removes
const touched = new Map(files.map((f) => [path.relative(path.dirname(root), f), new Set()]))
for (const r of rows) for (const f of r.files) if (r.fate.kind === "removed" || r.fate.kind === "renamed") touched.get(f).add("api")
for (const r of rows) for (const f of r.files) if (r.fate.kind === "revised") touched.get(f).add("revised")
for (const [module, users] of modulesUsed) if (moduleFate(module)?.moves === true) for (const f of users) touched.get(f).add("module")
const untouched = [...touched].filter(([, why]) => !why.has("api") && !why.has("module")).map(([f]) => f).sort()
const pristine = untouched.filter((f) => !touched.get(f).has("revised"))
out.push(`### Files with no renamed, moved or removed API (${untouched.length} of ${files.length})`)
out.push("")
out.push(`Of these, ${pristine.length} use no API with a revised declaration either (or no Effect API at all):`)
out.push("")
out.push(fileList(pristine) || "none")
out.push("")
out.push(`The other ${untouched.length - pristine.length} use only APIs that keep their name with a revised declaration:`)
out.push("")
out.push(fileList(untouched.filter((f) => touched.get(f).has("revised"))) || "none")
console.log(out.join("\n"))
