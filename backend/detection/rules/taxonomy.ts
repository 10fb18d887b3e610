// Sigma's Linux taxonomy (Sysmon-style field names) → OCSF 1.8.0 paths, per
// logsource category, written as data. A rule names fields either way:
// OCSF paths (lower case, dotted) pass through; a Sigma name (capitalised, or
// `query` for dns) must be in its category's map, or the rule does not
// compile and says which field has no OCSF home.
//
// A category also implies which activities of its class the Sigma event is:
// process_creation is a process Launch, file_event (Sysmon's FileCreate) a
// file created or rewritten. The implied activities apply to rules from
// outside Picket (logsource.product other than `picket`); Picket's own rules
// say what activity they read.

export interface MappedField {
  /** OCSF paths in order of preference: the first one the record has is read */
  paths: readonly string[]
  /** Sigma value (lower-cased text) → the OCSF value, for enums Sigma writes as text */
  values?: Readonly<Record<string, string | number>>
}

export interface Taxonomy {
  category: string
  fields: Readonly<Record<string, MappedField>>
  /** the activity_ids of the class this category is; undefined: any */
  activities?: readonly number[]
  /** candidate paths of the process-tree root, oldest ancestor first: a standalone rule makes one incident per root */
  treeRoot?: readonly string[]
  /** the fields of the first matching record a finding shows */
  context?: readonly string[]
  /** Sigma names of this category with no OCSF path yet */
  unmapped?: readonly string[]
}

/**
 * The process-tree root: the oldest ancestor pid the record carries (its
 * grandparent, else its parent, else itself). The records name their
 * parents as nested parent_process objects; process.lineage is an array of
 * paths, and the projector reads scalars only.
 */
function treeRoot (proc: string): string[] {
  return [`${proc}.parent_process.parent_process.pid`, `${proc}.parent_process.pid`, `${proc}.pid`]
}

const ACTOR_CONTEXT = ['actor.process.pid', 'actor.process.file.path', 'actor.process.cmd_line', 'actor.user.name']

const PROCESS_LAUNCH = 1
const FILE_CREATE = 1
const FILE_UPDATE = 3

// connection_info.direction_id: 1 Inbound, 2 Outbound (OCSF 1.8.0)
const INITIATED = { paths: ['connection_info.direction_id'], values: { true: 2, false: 1 } }

export const TAXONOMIES: Readonly<Record<string, Taxonomy>> = Object.freeze({
  process_creation: {
    category: 'process_creation',
    activities: [PROCESS_LAUNCH],
    treeRoot: treeRoot('process'),
    context: ['process.pid', 'process.file.path', 'process.cmd_line', 'process.parent_process.pid', 'process.parent_process.file.path', 'process.parent_process.cmd_line', 'actor.user.name', 'process.user.name'],
    fields: {
      Image: { paths: ['process.file.path'] },
      CommandLine: { paths: ['process.cmd_line'] },
      ParentImage: { paths: ['process.parent_process.file.path'] },
      ParentCommandLine: { paths: ['process.parent_process.cmd_line'] },
      CurrentDirectory: { paths: ['process.working_directory'] },
      User: { paths: ['actor.user.name', 'process.user.name'] },
    },
  },
  file_event: {
    category: 'file_event',
    activities: [FILE_CREATE, FILE_UPDATE],
    treeRoot: treeRoot('actor.process'),
    context: ['file.path', ...ACTOR_CONTEXT],
    fields: {
      TargetFilename: { paths: ['file.path'] },
      Image: { paths: ['actor.process.file.path'] },
      User: { paths: ['actor.user.name', 'actor.process.user.name'] },
    },
  },
  network_connection: {
    category: 'network_connection',
    treeRoot: treeRoot('actor.process'),
    context: ['dst_endpoint.hostname', ...ACTOR_CONTEXT],
    fields: {
      Image: { paths: ['actor.process.file.path'] },
      User: { paths: ['actor.user.name', 'actor.process.user.name'] },
      DestinationHostname: { paths: ['dst_endpoint.hostname'] },
      DestinationPort: { paths: ['dst_endpoint.port'] },
      DestinationIp: { paths: ['dst_endpoint.ip'] },
      SourceIp: { paths: ['src_endpoint.ip'] },
      SourcePort: { paths: ['src_endpoint.port'] },
      Initiated: INITIATED,
    },
  },
  dns: {
    category: 'dns',
    treeRoot: treeRoot('actor.process'),
    context: ['query.hostname', ...ACTOR_CONTEXT],
    fields: {
      query: { paths: ['query.hostname'] },
      record_type: { paths: ['query.type'] },
    },
    // answers[] is an array; the projector reads scalars only
    unmapped: ['answer'],
  },
})

/** The taxonomy a rule's logsource reads its field names in (none for a category without one). */
export function taxonomyOf (logsource: Record<string, unknown> | undefined): Taxonomy | undefined {
  const cat = logsource?.category
  if (typeof cat !== 'string' || !Object.hasOwn(TAXONOMIES, cat)) return undefined
  return TAXONOMIES[cat]
}

/** Whether the rule comes from outside Picket, so its category's implied activities apply. */
export function impliesActivity (logsource: Record<string, unknown> | undefined): boolean {
  return logsource?.product !== 'picket'
}

/** A Sigma taxonomy name rather than an OCSF path: OCSF names are lower case. */
function isSigmaName (field: string, tax: Taxonomy | undefined): boolean {
  return /^[A-Z]/.test(field) || (tax !== undefined && (Object.hasOwn(tax.fields, field) || tax.unmapped?.includes(field) === true))
}

/** Resolve a rule's field name: the OCSF paths to read, or why it has none. */
export function mapField (field: string, tax: Taxonomy | undefined): MappedField | { problem: string } {
  if (!isSigmaName(field, tax)) return { paths: [field] }
  if (tax !== undefined && Object.hasOwn(tax.fields, field)) return tax.fields[field]
  const known = tax !== undefined ? Object.keys(tax.fields).join(', ') : 'none'
  return { problem: `Sigma field '${field}' has no OCSF mapping for category ${tax?.category ?? 'of this logsource'} (mapped: ${known}); name an OCSF path instead` }
}
