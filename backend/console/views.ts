import { DROP_CAUSES, zeroDrops } from '../../shared/enums.js'
import type { HistoryEntry, HostRow, StoredFinding } from '../store/index.js'
import { ruleInfo } from './rule-info.js'
import { ROW_LIST_CAP, type FindingDetail, type FindingRow, type HistoryItem, type HostView, type RuleInfo } from './types.js'

// Store rows → what the API sends. The table gets a lean row (no OCSF
// document, short host and source lists); the detail gets everything.

interface Attack { technique?: { uid?: string, name?: string }, tactic?: { uid?: string, name?: string } }

export function findingRow (f: StoredFinding): FindingRow {
  const { finding, ...stored } = f
  const info = finding.finding_info as { attacks?: Attack[], types?: unknown[], data_sources?: unknown[] } | undefined
  const attack = info?.attacks?.find(a => a.technique?.uid === f.technique) ?? info?.attacks?.[0]
  const device = finding.device as { hostname?: string } | undefined
  const picket = finding.unmapped?.picket as { rule?: { type?: unknown } } | undefined
  // findings stored before the backend raised other classes name no source: they are port scans
  const dataSource = typeof info?.data_sources?.[0] === 'string' ? info.data_sources[0] : 'network_activity'
  return {
    ...stored,
    hosts: f.hosts.slice(0, ROW_LIST_CAP),
    sources: f.sources.slice(0, ROW_LIST_CAP),
    message: typeof finding.message === 'string' ? finding.message : '',
    findingType: typeof info?.types?.[0] === 'string' ? info.types[0] : '',
    techniqueName: attack?.technique?.name ?? '',
    tacticName: attack?.tactic?.name ?? '',
    hostname: typeof device?.hostname === 'string' ? device.hostname : null,
    dataSource,
    // a Sigma network_connection rule matches single connections: a process's, not a scan
    scan: dataSource === 'network_activity' && picket?.rule?.type !== 'standalone',
  }
}

export function historyItem (h: HistoryEntry): HistoryItem {
  const { findingId: _finding, ...item } = h
  return item
}

export function findingDetail (f: StoredFinding, history: HistoryEntry[]): FindingDetail {
  return {
    ...findingRow(f),
    hosts: f.hosts,
    sources: f.sources,
    finding: f.finding as unknown as Record<string, unknown>,
    history: history.map(historyItem),
    ruleInfo: ruleOf(f),
  }
}

function ruleOf (f: StoredFinding): RuleInfo | null {
  const rule = (f.finding.unmapped?.picket as { rule?: { file?: unknown, line?: unknown } } | undefined)?.rule
  if (typeof rule?.file !== 'string') return null
  return ruleInfo(rule.file, typeof rule.line === 'number' ? rule.line : 1) ?? null
}

export function hostView (h: HostRow, now: number, staleAfterMs: number): HostView {
  const drops = zeroDrops()
  let total = 0
  for (const c of DROP_CAUSES) {
    const v = Number(h.drops[c] ?? 0)
    drops[c] = v
    total += v
  }
  return { ...h, drops, dropsTotal: total, stale: now - h.lastSeen > staleAfterMs }
}
