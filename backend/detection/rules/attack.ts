import { MITRE } from '../../../shared/ocsf/constants.js'
import type { OcsfAttack } from '../../../shared/ocsf/types.js'

// Sigma tags → OCSF attacks[]: `attack.t1046` names a technique and
// `attack.discovery` a tactic, as in the SigmaHQ rule corpus.

const TACTICS: Record<string, { uid: string, name: string }> = {
  reconnaissance: { uid: 'TA0043', name: 'Reconnaissance' },
  resource_development: { uid: 'TA0042', name: 'Resource Development' },
  initial_access: { uid: 'TA0001', name: 'Initial Access' },
  execution: { uid: 'TA0002', name: 'Execution' },
  persistence: { uid: 'TA0003', name: 'Persistence' },
  privilege_escalation: { uid: 'TA0004', name: 'Privilege Escalation' },
  defense_evasion: { uid: 'TA0005', name: 'Defense Evasion' },
  credential_access: { uid: 'TA0006', name: 'Credential Access' },
  discovery: { uid: 'TA0007', name: 'Discovery' },
  lateral_movement: { uid: 'TA0008', name: 'Lateral Movement' },
  collection: { uid: 'TA0009', name: 'Collection' },
  command_and_control: { uid: 'TA0011', name: 'Command and Control' },
  exfiltration: { uid: 'TA0010', name: 'Exfiltration' },
  impact: { uid: 'TA0040', name: 'Impact' },
}

const TECHNIQUES: Record<string, { name: string, src_url: string }> = {
  T1046: { name: MITRE.T1046.name, src_url: MITRE.T1046.src_url },
}

export function attacksFromTags (tags: readonly string[]): OcsfAttack[] {
  const techniques: string[] = []
  const tactics: Array<{ uid: string, name: string }> = []
  for (const tag of tags) {
    const m = /^attack\.(.+)$/i.exec(tag)
    if (m === null) continue
    const v = m[1].toLowerCase()
    if (/^t\d{4}(\.\d{3})?$/.test(v)) techniques.push(v.toUpperCase())
    else if (TACTICS[v.replace(/-/g, '_')] !== undefined) tactics.push(TACTICS[v.replace(/-/g, '_')])
  }
  const out: OcsfAttack[] = []
  for (const t of techniques) {
    const known = TECHNIQUES[t]
    const technique = { uid: t, name: known?.name ?? t, src_url: known?.src_url ?? `https://attack.mitre.org/techniques/${t.replace('.', '/')}/` }
    // SigmaHQ also tags tactics newer than this table (attack.stealth, attack.defense-impairment): the technique stands alone then
    if (tactics.length === 0) out.push({ technique })
    for (const tactic of tactics) out.push({ technique, tactic: { ...tactic, src_url: `https://attack.mitre.org/tactics/${tactic.uid}/` } })
  }
  return out
}
