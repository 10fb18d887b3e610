// Sigma condition expressions:
//   selection and not filter
//   1 of selection_*        all of them        (sel_a or sel_b) and not sel_c
// Precedence, loosest first: or, and, not. `x of` takes a name, a name with
// `*` wildcards, or `them` (every selection whose name does not start with _).

export type CondNode =
  | { t: 'ref', name: string }
  | { t: 'not', a: CondNode }
  | { t: 'and', a: CondNode[] }
  | { t: 'or', a: CondNode[] }
  | { t: 'of', quant: 'one' | 'all', names: string[] }

export class ConditionError extends Error {}

const TOKEN = /\s*(\(|\)|[A-Za-z0-9_*.\-]+)/y

function tokenize (text: string): string[] {
  const out: string[] = []
  TOKEN.lastIndex = 0
  let pos = 0
  while (pos < text.length) {
    if (/^\s*$/.test(text.slice(pos))) break
    TOKEN.lastIndex = pos
    const m = TOKEN.exec(text)
    if (m === null) throw new ConditionError(`unexpected character '${text.slice(pos).trim()[0]}' at column ${pos + 1}`)
    out.push(m[1])
    pos = TOKEN.lastIndex
  }
  return out
}

function globToRe (glob: string): RegExp {
  return new RegExp('^' + glob.split('*').map(s => s.replace(/[.+?^${}()|[\]\\-]/g, '\\$&')).join('.*') + '$')
}

/** Parse `text` against the known selection names. Unknown names are errors. */
export function parseCondition (text: string, selections: readonly string[]): CondNode {
  const toks = tokenize(text)
  if (toks.length === 0) throw new ConditionError('the condition is empty')
  let i = 0
  const peek = (): string | undefined => toks[i]
  const lower = (s: string | undefined): string | undefined => s?.toLowerCase()
  const expect = (what: string): string => {
    const tok = toks[i++]
    if (tok === undefined) throw new ConditionError(`the condition ends where ${what} was expected`)
    return tok
  }
  const ref = (name: string): CondNode => {
    if (!selections.includes(name)) {
      throw new ConditionError(`the condition names '${name}', which is not a selection of this rule (selections: ${selections.join(', ') || 'none'})`)
    }
    return { t: 'ref', name }
  }
  const orExpr = (): CondNode => {
    const parts = [andExpr()]
    while (lower(peek()) === 'or') { i++; parts.push(andExpr()) }
    return parts.length === 1 ? parts[0] : { t: 'or', a: parts }
  }
  const andExpr = (): CondNode => {
    const parts = [notExpr()]
    while (lower(peek()) === 'and') { i++; parts.push(notExpr()) }
    return parts.length === 1 ? parts[0] : { t: 'and', a: parts }
  }
  const notExpr = (): CondNode => {
    if (lower(peek()) === 'not') { i++; return { t: 'not', a: notExpr() } }
    return primary()
  }
  const primary = (): CondNode => {
    const tok = expect('a selection name, "not", "(" or "1 of"/"all of"')
    const lt = tok.toLowerCase()
    if (tok === '(') {
      const e = orExpr()
      if (expect('")"') !== ')') throw new ConditionError(`expected ')' but found '${toks[i - 1]}'`)
      return e
    }
    if (tok === ')' || lt === 'and' || lt === 'or') throw new ConditionError(`unexpected '${tok}'`)
    if ((lt === '1' || lt === 'all' || lt === 'any') && lower(peek()) === 'of') {
      i++
      const target = expect('a selection name pattern or "them"')
      const names = target.toLowerCase() === 'them'
        ? selections.filter(s => !s.startsWith('_'))
        : selections.filter(s => globToRe(target).test(s))
      if (names.length === 0) throw new ConditionError(`'${tok} of ${target}' matches no selection of this rule`)
      return { t: 'of', quant: lt === 'all' ? 'all' : 'one', names }
    }
    if (/^\d+$/.test(tok) && lower(peek()) === 'of') {
      throw new ConditionError(`'${tok} of' is not supported; Sigma allows '1 of' and 'all of'`)
    }
    return ref(tok)
  }
  const node = orExpr()
  if (i < toks.length) throw new ConditionError(`unexpected '${toks[i]}' after a complete condition`)
  return node
}

export type Pred<C> = (c: C, b: number) => boolean

/** Turn a parsed condition into one predicate over compiled selections. */
export function compileCondition<C> (node: CondNode, sel: (name: string) => Pred<C>): Pred<C> {
  switch (node.t) {
    case 'ref': return sel(node.name)
    case 'not': { const a = compileCondition(node.a, sel); return (c, b) => !a(c, b) }
    case 'and': return allOf(node.a.map(n => compileCondition(n, sel)))
    case 'or': return anyOf(node.a.map(n => compileCondition(n, sel)))
    case 'of': {
      const parts = node.names.map(sel)
      return node.quant === 'all' ? allOf(parts) : anyOf(parts)
    }
  }
}

export function allOf<C> (ps: Array<Pred<C>>): Pred<C> {
  if (ps.length === 1) return ps[0]
  if (ps.length === 2) { const [a, b2] = ps; return (c, b) => a(c, b) && b2(c, b) }
  if (ps.length === 3) { const [a, b2, d] = ps; return (c, b) => a(c, b) && b2(c, b) && d(c, b) }
  return (c, b) => { for (let i = 0; i < ps.length; i++) if (!ps[i](c, b)) return false; return true }
}

export function anyOf<C> (ps: Array<Pred<C>>): Pred<C> {
  if (ps.length === 1) return ps[0]
  if (ps.length === 2) { const [a, b2] = ps; return (c, b) => a(c, b) || b2(c, b) }
  return (c, b) => { for (let i = 0; i < ps.length; i++) if (ps[i](c, b)) return true; return false }
}
