/**
 * Per-stream growth by constructor between two heap snapshots (`bench/stream-heap.ts --snapshot`):
 * self size and count of each (node type, name), the second snapshot minus the first, divided by
 * the difference in open streams. Node's `.heapsnapshot` is JSON: a flat `nodes` array of
 * `node_fields`-sized records, names in `strings`.
 *
 *   node bench/heap-diff.mjs A.heapsnapshot B.heapsnapshot [streamsA streamsB] [--top 40]
 */
import { readFileSync } from "node:fs"

const summarise = (file) => {
  const snapshot = JSON.parse(readFileSync(file, "utf8"))
  const fields = snapshot.snapshot.meta.node_fields
  const types = snapshot.snapshot.meta.node_types[0]
  const width = fields.length
  const typeAt = fields.indexOf("type")
  const nameAt = fields.indexOf("name")
  const sizeAt = fields.indexOf("self_size")
  const byName = new Map()
  const nodes = snapshot.nodes
  for (let i = 0; i < nodes.length; i += width) {
    const type = types[nodes[i + typeAt]]
    let name = snapshot.strings[nodes[i + nameAt]]
    // strings and code are grouped by type: their names are their contents
    if (type === "string" || type === "concatenated string" || type === "sliced string" || type === "number" || type === "code") name = ""
    if (type === "closure") name = `closure ${name}`
    const key = `${type}\t${name.length > 80 ? name.slice(0, 80) : name}`
    const entry = byName.get(key) ?? { count: 0, size: 0 }
    entry.count += 1
    entry.size += nodes[i + sizeAt]
    byName.set(key, entry)
  }
  return byName
}

const args = process.argv.slice(2)
const topAt = args.indexOf("--top")
const top = topAt === -1 ? 40 : Number(args[topAt + 1])
const positional = topAt === -1 ? args : args.filter((_, i) => i !== topAt && i !== topAt + 1)
const [fileA, fileB, streamsA = "0", streamsB = "1000"] = positional
const a = summarise(fileA)
const b = summarise(fileB)
const per = Number(streamsB) - Number(streamsA)
const rows = []
for (const [key, entry] of b) {
  const before = a.get(key) ?? { count: 0, size: 0 }
  rows.push({ key, count: (entry.count - before.count) / per, size: (entry.size - before.size) / per })
}
rows.sort((x, y) => y.size - x.size)
const total = rows.reduce((sum, r) => sum + r.size, 0)
console.log(`per stream: ${(total / 1024).toFixed(2)} KB self size in all, ${rows.reduce((s, r) => s + r.count, 0).toFixed(1)} objects`)
console.log("bytes/stream\tobjects/stream\ttype\tname")
for (const r of rows.slice(0, top)) console.log(`${r.size.toFixed(0)}\t${r.count.toFixed(2)}\t${r.key}`)
