// The projected field paths as a trie of msgpack key bytes: the scanner
// matches a map key against the keys of one node, grouped by length, without
// decoding it.

/** A key on a projected path: its column slot (-1 when only deeper paths are projected) and the node below it. */
export interface TrieChild { bytes: Uint8Array, key: string, slot: number, node: TrieNode | undefined }
export interface TrieNode { byLen: Array<TrieChild[] | undefined> }

const enc = new TextEncoder()

export function buildTrie (paths: readonly string[]): TrieNode {
  const root: TrieNode = { byLen: [] }
  paths.forEach((path, slot) => {
    let node = root
    const parts = path.split('.')
    parts.forEach((part, i) => {
      const bytes = enc.encode(part)
      const list = node.byLen[bytes.length] ?? (node.byLen[bytes.length] = [])
      let child = list.find(c => c.key === part)
      if (child === undefined) {
        child = { bytes, key: part, slot: -1, node: undefined }
        list.push(child)
      }
      if (i === parts.length - 1) child.slot = slot
      else node = child.node ??= { byLen: [] }
    })
  })
  return root
}

/** The child of `node` whose key is the `len` bytes of `buf` at `p`. */
export function findKey (node: TrieNode, buf: Uint8Array, p: number, len: number): TrieChild | undefined {
  const list = node.byLen[len]
  if (list === undefined) return undefined
  outer: for (let i = 0; i < list.length; i++) {
    const kb = list[i].bytes
    for (let j = 0; j < len; j++) if (kb[j] !== buf[p + j]) continue outer
    return list[i]
  }
  return undefined
}

/** The child of `node` named `key` (a decoded key: shape paths are strings). */
export function childNamed (node: TrieNode, key: string): TrieChild | undefined {
  const list = node.byLen[enc.encode(key).length]
  return list?.find(c => c.key === key)
}

/**
 * Every field path the scanner must see to merge a batch's shared fields the
 * way expandRecord does (shared/ocsf/lean.ts): each projected path, then the
 * first one and two segments of each deeper path (whether the record has an
 * object of its own there decides what the shared one contributes). The
 * projected paths keep their slots; the prefixes get the slots after them.
 */
export function withPrefixes (paths: readonly string[]): string[] {
  const out = [...paths]
  const seen = new Set(paths)
  for (const path of paths) {
    const parts = path.split('.')
    for (let d = 1; d < Math.min(parts.length, 3); d++) {
      const prefix = parts.slice(0, d).join('.')
      if (!seen.has(prefix)) { seen.add(prefix); out.push(prefix) }
    }
  }
  return out
}
