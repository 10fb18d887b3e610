import type { HistoryEntry, HostRow, StoredFinding } from '../store.js'
import { DROP_CAUSE_NAMES, ROW_LIST_CAP, type DropCause, type FindingDetail, type FindingRow, type HistoryItem, type HostView } from './types.js'

// Store rows → what the API sends. The table gets a lean row (no OCSF
// document, short host and source lists); the detail gets everything.

interface Attack { technique?: { uid?: string, name?: string }, tactic?: { uid?: string, name?: string } }

export function findingRow (f: StoredFinding): FindingRow {
  const info = f.finding.finding_info as { attacks?: Attack[], types?: unknown[] } | undefined
  const attack = info?.attacks?.find(a => a.technique?.uid === f.technique) ?? info?.attacks?.[0]
  const device = f.finding.device as { hostname?: string } | undefined
  return {
    id: f.id,
    rule: f.rule,
    title: f.title,
    message: typeof f.finding.message === 'string' ? f.finding.message : '',
    findingType: typeof info?.types?.[0] === 'string' ? info.types[0] : '',
    technique: f.technique,
    techniqueName: attack?.technique?.name ?? '',
    tactic: f.tactic,
    tacticName: attack?.tactic?.name ?? '',
    severityId: f.severityId,
    severity: f.severity,
    status: f.status,
    state: f.state,
    hostId: f.hostId,
    hostname: typeof device?.hostname === 'string' ? device.hostname : null,
    hosts: f.hosts.slice(0, ROW_LIST_CAP),
    hostsCount: f.hostsCount,
    sources: f.sources.slice(0, ROW_LIST_CAP),
    sourcesCount: f.sourcesCount,
    portCount: f.portCount,
    records: f.records,
    firstSeen: f.firstSeen,
    lastSeen: f.lastSeen,
    createdAt: f.createdAt,
    updatedAt: f.updatedAt,
    closedAt: f.closedAt,
    changeSeq: f.changeSeq,
  }
}

export function historyItem (h: HistoryEntry): HistoryItem {
  return { id: h.id, at: h.at, actor: h.actor, from: h.from, to: h.to, note: h.note }
}

export function findingDetail (f: StoredFinding, history: HistoryEntry[]): FindingDetail {
  return {
    ...findingRow(f),
    hosts: f.hosts,
    sources: f.sources,
    finding: f.finding as unknown as Record<string, unknown>,
    history: history.map(historyItem),
  }
}

export function hostView (h: HostRow, now: number, staleAfterMs: number): HostView {
  const drops = {} as Record<DropCause, number>
  let total = 0
  for (const c of DROP_CAUSE_NAMES) {
    const v = Number(h.drops[c] ?? 0)
    drops[c] = v
    total += v
  }
  return {
    hostId: h.hostId,
    hostname: h.hostname,
    agentVersion: h.agentVersion,
    firstSeen: h.firstSeen,
    lastSeen: h.lastSeen,
    lastSeq: h.lastSeq,
    recordsPerSec: h.recordsPerSec,
    records: h.records,
    batches: h.batches,
    bytes: h.bytes,
    capturedTotal: h.capturedTotal,
    drops,
    dropsTotal: total,
    refusedBatches: h.refusedBatches,
    duplicateBatches: h.duplicateBatches,
    stale: now - h.lastSeen > staleAfterMs,
  }
}
