// summarize a .heapprofile (bench/client.ts --allocations): bytes allocated by function, and by
// source file, as a share of all sampled allocations; the third argument filters the list
import { readFileSync } from "node:fs"
const p = JSON.parse(readFileSync(process.argv[2], "utf8"))
const N = Number(process.argv[3] ?? 40)
const filter = process.argv[4] ?? ""
const name = (cf) => `${cf.functionName || "(anon)"} ${(cf.url || "(native)").replace(/.*node_modules\//, "").replace(/.*\/work\/[^/]+\//, "")}:${cf.lineNumber + 1}`
const byFn = new Map()
const byFile = new Map()
let total = 0
const walk = (node) => {
  const size = node.selfSize ?? 0
  if (size > 0) {
    const key = name(node.callFrame)
    byFn.set(key, (byFn.get(key) ?? 0) + size)
    const file = key.split(" ")[1].replace(/:\d+$/, "")
    byFile.set(file, (byFile.get(file) ?? 0) + size)
    total += size
  }
  for (const child of node.children ?? []) walk(child)
}
walk(p.head)
const pct = (n) => ((100 * n) / total).toFixed(1).padStart(5)
console.log(`sampled ${(total / 1e6).toFixed(1)} MB`)
for (const [k, n] of [...byFile].sort((a, b) => b[1] - a[1]).slice(0, 15)) console.log(pct(n), k)
console.log("--- by function")
for (const [k, n] of [...byFn].filter(([k]) => k.includes(filter)).sort((a, b) => b[1] - a[1]).slice(0, N)) console.log(pct(n), k)
