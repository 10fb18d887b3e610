// The house rules, as data: which folders may import which, which modules
// must stay free of Node, how long a production file may grow, and which
// strings production code must not contain. scripts/house/check.ts applies
// them; test/house/house.test.ts runs it with `npm test`. Adding a floor is
// one line here.

export interface Floor {
  /** a top-level folder (or a deeper path prefix, which wins over a shorter one) */
  dir: string
  /** prefixes this floor may import from (its own dir is always allowed) */
  mayImport: readonly string[]
}

export const FLOORS: readonly Floor[] = [
  { dir: 'bpf', mayImport: ['shared'] },
  { dir: 'shared', mayImport: [] },
  { dir: 'agent', mayImport: ['bpf', 'shared'] },
  { dir: 'backend', mayImport: ['shared'] },
  { dir: 'cli', mayImport: ['agent', 'backend', 'bpf', 'shared', 'scripts'] },
  { dir: 'scripts', mayImport: ['agent', 'backend', 'bpf', 'shared', 'cli'] },
]

/** Modules the browser page bundles, or that a Node-free module imports: no `node:` or Node package imports. */
export const NODE_FREE: readonly string[] = [
  'shared/enums.ts',
  'shared/ocsf/constants.ts',
  'shared/hostport.ts',
  'shared/host-id.ts',
  'backend/console/types.ts',
  'backend/console/page/src/',
]

/** Production folders: size and test-hook rules apply here. */
export const PRODUCTION = ['agent', 'backend', 'bpf', 'shared', 'cli'] as const

export const MAX_LINES = 400
/** Files allowed past MAX_LINES: the native addon and the BPF C programs. */
export const LONG_FILES_ALLOWED: readonly RegExp[] = [/^bpf\/addon\/.*\.c$/, /\.bpf\.c$/]

/** Strings production code must not contain (test hooks belong in test/fixtures/). */
export const FORBIDDEN: ReadonlyArray<{ text: string, why: string }> = [
  { text: 'PICKET_TEST_', why: 'a test hook in production code: pass a test worker script or option from test/fixtures instead' },
]
