import { T_ABSENT, T_FALSE, T_MAP, T_NULL, T_NUM, T_OTHER, T_STR, T_TRUE, type Projector } from '../../../backend/detection/projector.js'

// Reading a projector's columns back as plain values, for the tests that
// compare them with a full decode.

/** The value at `path` of a decoded object, undefined where the path leaves the objects. */
export function get (obj: unknown, path: string): unknown {
  let cur = obj
  for (const k of path.split('.')) {
    if (cur === null || typeof cur !== 'object' || Array.isArray(cur)) return undefined
    cur = (cur as Record<string, unknown>)[k]
  }
  return cur
}

/** Row r, slot s as a plain value; containers as 'OTHER' and 'MAP'. */
export function cell (p: Projector, r: number, s: number): unknown {
  const c = p.cols
  const i = r * c.S + s
  switch (c.typ[i]) {
    case T_ABSENT: return undefined
    case T_NUM: return c.num[i]
    case T_STR: return c.str[i]
    case T_TRUE: return true
    case T_FALSE: return false
    case T_NULL: return null
    case T_OTHER: return 'OTHER'
    case T_MAP: return 'MAP'
  }
  return 'BAD'
}
