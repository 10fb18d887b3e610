// Who an agent is on the wire, one rule for both ends: the collector refuses
// a batch whose host id or instance breaks it, and the agent refuses to start
// with a host id the collector would refuse (else every batch it ships would
// be refused). No Node imports: the rule is plain data.

const HOST_ID_RE = /^[A-Za-z0-9][A-Za-z0-9._:@/-]{0,255}$/
const HOST_ID_RULE = 'use 1 to 256 characters from A-Z a-z 0-9 . _ : @ / -, starting with a letter or digit'

/** Why `id` is not a valid host id (the collector's message), or undefined when it is. */
export function checkHostId (id: unknown): string | undefined {
  if (typeof id !== 'string' || id === '') return `no host_id: set the agent's host id (picket agent --host-id); ${HOST_ID_RULE}`
  if (!HOST_ID_RE.test(id)) return `host_id '${id.slice(0, 64)}' is not valid: ${HOST_ID_RULE}`
  return undefined
}

// An agent mints its instance id (random, 128 bits in hex) with each new seq
// stream; '' is an agent from before instance ids. Bounded, because the
// collector keeps a dedup floor per (host, instance).
const INSTANCE_RE = /^[A-Za-z0-9_-]{0,64}$/

/** Why `instance` is not a valid agent instance id, or undefined when it is. */
export function checkInstance (instance: unknown): string | undefined {
  if (typeof instance === 'string' && INSTANCE_RE.test(instance)) return undefined
  return `instance '${String(instance).slice(0, 64)}' is not valid: use up to 64 characters from A-Z a-z 0-9 _ - (the agent's spool mints it; a batch without one is an agent from before instance ids)`
}
