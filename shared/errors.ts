// One registry of every error Picket raises on purpose. Each code is
// documented in docs/errors.md (a test checks), and each message says what
// went wrong and what to do about it.

export const ERRORS = {
  PICKET_ERR_CONFIG: 'invalid configuration',
  PICKET_ERR_TRACEFS: 'tracefs is not available',
  PICKET_ERR_TRACEPOINT_MISSING: 'a tracepoint the agent needs does not exist on this kernel',
  PICKET_ERR_TRACEPOINT_LAYOUT: 'a tracepoint format lacks a field the agent needs',
  PICKET_ERR_BPF_PRIVILEGE: 'missing privileges to load BPF programs',
  PICKET_ERR_BPF_OPEN: 'the BPF object could not be opened',
  PICKET_ERR_BPF_LOAD: 'the kernel verifier refused a BPF program',
  PICKET_ERR_BPF_ATTACH: 'a BPF program could not be attached',
  PICKET_ERR_BPF_MAP: 'a BPF map operation failed',
  PICKET_ERR_ADDON_MISSING: 'the native addon is not built',
  PICKET_ERR_DECODE: 'a raw record could not be decoded',
  PICKET_ERR_SPOOL: 'the disk spool failed',
  PICKET_ERR_SPOOL_CORRUPT: 'a spool segment failed its checksum',
  PICKET_ERR_LIMIT: 'a batch exceeded a collector limit',
  PICKET_ERR_HOST_ID: 'a batch carried a missing or foreign host id',
  PICKET_ERR_SEQ: 'a batch carried an invalid sequence number',
  PICKET_ERR_RECORD: 'a batch held a record whose values are not valid OCSF',
  PICKET_ERR_RULE: 'a rule file is invalid',
  PICKET_ERR_BRIDGE: 'the bridge to the detection plane is unavailable',
  PICKET_ERR_STORE: 'the alert store failed',
  PICKET_ERR_CONSOLE_TOKEN: 'an HTTP request or listener needs an access token',
  PICKET_ERR_HTTP_TOKENS: 'the HTTP tokens file is missing, malformed or open to other users',
  PICKET_ERR_NOT_FOUND: 'the requested object does not exist',
  PICKET_ERR_VALIDATION: 'a request body or query failed validation',
} as const

export type ErrorCode = keyof typeof ERRORS

export class PicketError extends Error {
  readonly code: ErrorCode
  readonly details: Record<string, unknown> | undefined

  constructor (code: ErrorCode, message: string, details?: Record<string, unknown>) {
    super(message)
    this.name = 'PicketError'
    this.code = code
    this.details = details
  }
}

export function isPicketError (err: unknown, code?: ErrorCode): err is PicketError {
  return err instanceof PicketError && (code === undefined || err.code === code)
}
