// How to start a worker thread on one of Picket's own modules, from the
// build (dist/, .js) or from the TypeScript sources (tests, PICKET_TSX=1).
// A worker's module loader does not inherit the parent's loader hooks (Node
// 20), so for a .ts entry a small bootstrap registers tsx first, resolved
// from here so the working directory does not matter.

export interface WorkerScript {
  /** the first argument of `new Worker()` */
  script: URL | string
  /** the `eval` option of `new Worker()` */
  eval: boolean
}

export function workerScript (entry: URL): WorkerScript {
  if (!entry.pathname.endsWith('.ts')) return { script: entry, eval: false }
  const api = import.meta.resolve('tsx/esm/api')
  return { script: `import(${JSON.stringify(api)}).then(m => { m.register(); return import(${JSON.stringify(entry.href)}) })`, eval: true }
}
