import { FINDING_STATES, TRIAGE_STATUSES } from '../../shared/enums.js'
import { FINDING_ORDERS } from '../store/types.js'

// JSON schemas of the console API's queries, params, headers and bodies.
// Every string and array is bounded: the validator reports all errors (so a
// 400 names every bad field), and bounds keep that cheap on hostile input.
// A `description` on a property is what a 400 says the value must be.

const TIME = {
  type: 'string',
  maxLength: 40,
  pattern: '^(now|[0-9]{1,15}|[0-9]{1,9}[smhdw]|[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\\.[0-9]{1,9})?)?(Z|[+-][0-9]{2}:?[0-9]{2})?)?)$',
  description: 'a time: ms since the epoch, an ISO 8601 date or date-time (2025-01-31T12:00:00Z), or a duration back from now (90s, 15m, 24h, 7d, 2w)',
} as const

const ACCESS_TOKEN = { type: 'string', maxLength: 4096 } as const

/** The paging parameters of a list: limit (1..500) and the cursor a previous page returned. */
function page (defaultLimit: number, maxCursor: number) {
  return {
    limit: { type: 'integer', minimum: 1, maximum: 500, default: defaultLimit },
    cursor: { type: 'string', maxLength: maxCursor, pattern: '^[A-Za-z0-9_-]*$', description: 'the nextCursor of the previous page' },
    access_token: ACCESS_TOKEN,
  } as const
}

export const FINDINGS_QUERY = {
  type: 'object',
  additionalProperties: false,
  properties: {
    status: {
      type: 'array',
      maxItems: TRIAGE_STATUSES.length,
      uniqueItems: true,
      items: { type: 'string', enum: [...TRIAGE_STATUSES] },
      description: `one or more of ${TRIAGE_STATUSES.join(', ')} (repeat the parameter or separate with commas)`,
    },
    state: { type: 'string', enum: [...FINDING_STATES] },
    host: { type: 'string', minLength: 1, maxLength: 256 },
    source: { type: 'string', minLength: 1, maxLength: 64 },
    technique: { type: 'string', maxLength: 16, pattern: '^T[0-9]{4}(\\.[0-9]{3})?$', description: 'a MITRE ATT&CK technique id such as T1046 or T1046.001' },
    rule: { type: 'string', minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9][A-Za-z0-9._:-]*$', description: 'a rule id or name as a finding names it (a Sigma rule id such as 3e102cd9-a70d-4a7a-9508-403963092f31, or picket_t1046_port_scan)' },
    since: TIME,
    until: TIME,
    q: { type: 'string', maxLength: 200 },
    order: { type: 'string', enum: [...FINDING_ORDERS], default: 'created' },
    ...page(50, 512),
  },
} as const

export const HOSTS_QUERY = {
  type: 'object',
  additionalProperties: false,
  properties: {
    ...page(100, 1024),
  },
} as const

export const ID_PARAMS = {
  type: 'object',
  required: ['id'],
  properties: {
    id: { type: 'string', minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9][A-Za-z0-9._:-]*$', description: 'a finding id (letters, digits, . _ : -)' },
  },
} as const

export const TOKEN_QUERY = {
  type: 'object',
  additionalProperties: false,
  properties: { access_token: ACCESS_TOKEN },
} as const

export const PATCH_BODY = {
  type: 'object',
  additionalProperties: false,
  required: ['status'],
  properties: {
    status: { type: 'string', enum: [...TRIAGE_STATUSES] },
    note: { type: 'string', maxLength: 2000 },
  },
} as const

export const STREAM_QUERY = {
  type: 'object',
  additionalProperties: false,
  properties: {
    since: { type: 'integer', minimum: 0, description: 'a changeSeq: replay the findings changed after it' },
    access_token: ACCESS_TOKEN,
  },
} as const

export const STREAM_HEADERS = {
  type: 'object',
  properties: {
    'last-event-id': { type: 'string', maxLength: 20, pattern: '^[0-9]*$', description: 'the id of the last event received (a changeSeq)' },
  },
} as const
