/**
 * A binary min-heap of keys ordered by load, then by least recent use. Entries know their
 * index, so a lease or a release re-sorts one entry in O(log n) instead of a scan.
 */
export interface HeapEntry {
  readonly keyId: string
  inFlight: number
  lastUsed: number
  /** Back from a cooldown and not yet proven by a success: serves one call at a time. */
  halfOpen: boolean
  /** Position in the heap, -1 when out of it (cooling down or disabled). */
  index: number
  /** Configuration order, the last tie-break, so that the order is total. */
  readonly seq: number
}

/** A half-open key that already carries its one probe ranks behind every other key. */
export const rank = (entry: HeapEntry): number =>
  entry.halfOpen && entry.inFlight > 0 ? Number.POSITIVE_INFINITY : entry.inFlight

const less = (a: HeapEntry, b: HeapEntry): boolean => {
  const ra = rank(a)
  const rb = rank(b)
  if (ra !== rb) return ra < rb
  if (a.lastUsed !== b.lastUsed) return a.lastUsed < b.lastUsed
  return a.seq < b.seq
}

export class KeyHeap<E extends HeapEntry> {
  readonly items: Array<E> = []

  get size(): number {
    return this.items.length
  }

  peek(): E | undefined {
    return this.items[0]
  }

  push(entry: E): void {
    entry.index = this.items.length
    this.items.push(entry)
    this.up(entry.index)
  }

  remove(entry: E): void {
    const i = entry.index
    if (i < 0) return
    const last = this.items.pop()!
    entry.index = -1
    if (last !== entry) {
      this.items[i] = last
      last.index = i
      this.update(last)
    }
  }

  /** Restores the order after `entry`'s load, use or half-open flag changed. */
  update(entry: E): void {
    if (entry.index < 0) return
    this.down(this.up(entry.index))
  }

  /** Whether every parent orders before its children (for tests). */
  isValid(): boolean {
    for (let i = 1; i < this.items.length; i++) {
      if (less(this.items[i]!, this.items[(i - 1) >> 1]!)) return false
      if (this.items[i]!.index !== i) return false
    }
    return this.items.length === 0 || this.items[0]!.index === 0
  }

  private swap(i: number, j: number): void {
    const a = this.items[i]!
    const b = this.items[j]!
    this.items[i] = b
    this.items[j] = a
    a.index = j
    b.index = i
  }

  private up(i: number): number {
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (!less(this.items[i]!, this.items[parent]!)) break
      this.swap(i, parent)
      i = parent
    }
    return i
  }

  private down(i: number): void {
    const n = this.items.length
    for (;;) {
      const left = 2 * i + 1
      const right = left + 1
      let smallest = i
      if (left < n && less(this.items[left]!, this.items[smallest]!)) smallest = left
      if (right < n && less(this.items[right]!, this.items[smallest]!)) smallest = right
      if (smallest === i) return
      this.swap(i, smallest)
      i = smallest
    }
  }
}
