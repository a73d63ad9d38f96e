// summarize a .cpuprofile: self time by file and function, and inclusive time of src/ functions
import { readFileSync } from "node:fs"
const p = JSON.parse(readFileSync(process.argv[2], "utf8"))
const N = Number(process.argv[3] ?? 40)
const filter = process.argv[4] ?? "src/"
const byId = new Map(p.nodes.map((n) => [n.id, n]))
const parent = new Map()
for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
const self = new Map()
for (let i = 0; i < p.samples.length; i++) self.set(p.samples[i], (self.get(p.samples[i]) ?? 0) + (p.timeDeltas[i] ?? 0))
const name = (n) => { const cf = n.callFrame; const url = (cf.url || "(native)").replace(/.*node_modules\//, "").replace(/.*\/work\/main\//, ""); return `${cf.functionName || "(anon)"} ${url}:${cf.lineNumber + 1}` }
const fn = new Map(), file = new Map(), incl = new Map(); let total = 0
for (const [id, t] of self) {
  const n = byId.get(id); const k = name(n)
  fn.set(k, (fn.get(k) ?? 0) + t); total += t
  const url = k.split(" ")[1]; const f = url.includes("effect/dist") ? "effect/" + url.split("/").pop().split(":")[0] : url.split("/")[0].split(":")[0]
  file.set(f, (file.get(f) ?? 0) + t)
  const seen = new Set(); let cur = id
  while (cur !== undefined) { const kk = name(byId.get(cur)); if (!seen.has(kk)) { seen.add(kk); incl.set(kk, (incl.get(kk) ?? 0) + t) } cur = parent.get(cur) }
}
const pct = (t) => (100 * t / total).toFixed(1).padStart(5)
console.log("total ms", (total / 1000).toFixed(0))
for (const [k, t] of [...file].sort((a, b) => b[1] - a[1]).slice(0, 20)) console.log(pct(t), k)
console.log("--- self")
for (const [k, t] of [...fn].sort((a, b) => b[1] - a[1]).slice(0, N)) console.log(pct(t), k)
console.log(`--- inclusive (${filter})`)
for (const [k, t] of [...incl].filter(([k]) => k.includes(filter)).sort((a, b) => b[1] - a[1]).slice(0, N)) console.log(pct(t), k)
