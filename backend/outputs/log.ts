import type { Logger } from '../../shared/logger.js'
import { isoTime } from '../../shared/time.js'
import type { FindingEvent } from '../detection/finding.js'

// One pino line per finding event: a created finding at warn (it wants a
// person), updates and closes at info.
export function logFinding (logger: Logger, ev: FindingEvent): void {
  const s = ev.summary
  const fields = {
    finding: {
      id: s.id,
      activity: ev.activity,
      rule: s.rule,
      technique: s.technique,
      tactic: s.tactic,
      severity_id: s.severityId,
      host: s.hostId,
      hosts: s.hostsTotal,
      sources: s.sources.slice(0, 20),
      sources_total: s.sourcesTotal,
      ports: s.portCount,
      records: s.records,
      first_seen: isoTime(s.firstSeen),
      last_seen: isoTime(s.lastSeen),
    },
  }
  if (ev.activity === 'create') logger.warn(fields, `finding: ${s.title}`)
  else logger.info(fields, `finding ${ev.activity === 'close' ? 'closed' : 'updated'}: ${s.title}`)
}
