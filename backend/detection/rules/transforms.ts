// Sigma's value transforms: each turns one rule value into the strings an
// event may hold instead, before contains / startswith / endswith apply.
//   |windash        a leading - of an option may be written /, –, — or ―
//   |base64         the value base64-encoded
//   |base64offset   the three encodings of the value at each offset inside a
//                   longer base64 text (used with |contains), as pySigma does

export const TRANSFORMS = ['windash', 'base64', 'base64offset'] as const

const DASHES = ['-', '/', '\u2013', '\u2014', '\u2015']

// an option dash: not after a word character, followed by one
const OPTION_DASH = /(?<![\w])[-/](?=\w)/g

function windash (v: string): string[] {
  if (!OPTION_DASH.test(v)) return [v]
  OPTION_DASH.lastIndex = 0
  return DASHES.map(d => v.replace(OPTION_DASH, d))
}

function base64offset (v: string): string[] {
  const raw = Buffer.from(v, 'utf8')
  const starts = [0, 2, 3]
  const ends = [0, -3, -2]
  return [0, 1, 2].map(i => {
    const enc = Buffer.concat([Buffer.alloc(i, ' '), raw]).toString('base64')
    const end = ends[(raw.length + i) % 3]
    return enc.slice(starts[i], end === 0 ? undefined : end)
  })
}

/** The strings `v` stands for under the rule's transform modifiers (just `v` without any). */
export function expandValue (v: unknown, mods: readonly string[]): unknown[] {
  if (typeof v !== 'string') {
    const t = mods.find(m => (TRANSFORMS as readonly string[]).includes(m))
    if (t !== undefined) throw new Error(`|${t} needs a string, got ${JSON.stringify(v)}`)
    return [v]
  }
  let out = [v]
  if (mods.includes('windash')) out = out.flatMap(windash)
  if (mods.includes('base64offset')) {
    if (!mods.includes('contains')) throw new Error('|base64offset finds the value inside a longer base64 text: write it as |base64offset|contains')
    out = out.flatMap(base64offset)
  } else if (mods.includes('base64')) out = out.map(x => Buffer.from(x, 'utf8').toString('base64'))
  // base64 text is case-sensitive: the encoded value is matched as written
  return out
}
