import { CATEGORY, CLASS, DIRECTION_NAME, NET_ACTIVITY_NAME, OCSF_VERSION, PRODUCT, SEVERITY, typeUid } from './constants.js'
import type { NetworkActivity, OcsfDevice, OcsfMetadata } from './types.js'

// The one builder of OCSF network_activity records. The agent's decoder and
// the injector both call it, so an injected record is shaped exactly like a
// captured one.

export interface SourceInfo {
  hostId: string
  hostname: string
  agentVersion: string
  /** optional primary IP of the device */
  ip?: string
}

export interface NetFields {
  timeMs: number
  activityId: number
  directionId: number
  /** IANA protocol number, 0 if unknown */
  protocolNum: number
  ipVersion: 4 | 6
  /** absent for events with one endpoint only (Listen) */
  srcIp?: string
  /** 0 = not known yet (a connect() before its port is bound): omitted */
  srcPort: number
  dstIp: string
  dstPort: number
  /** true when initiator/responder are known rather than guessed */
  assignmentKnown: boolean
  statusDetail?: string
  pid?: number
  tid?: number
  comm?: string
  durationMs?: number
  /** raw kernel fields for forensics; never used by rules */
  unmapped?: Record<string, unknown>
}

const PROTO_NAME: Record<number, string> = { 6: 'tcp', 17: 'udp', 1: 'icmp', 58: 'ipv6-icmp' }

export function makeMetadata (src: SourceInfo, logName = 'picket.net'): OcsfMetadata {
  return {
    version: OCSF_VERSION,
    product: { name: PRODUCT.name, vendor_name: PRODUCT.vendor_name, version: src.agentVersion },
    log_name: logName,
    profiles: ['host'],
  }
}

export function makeDevice (src: SourceInfo): OcsfDevice {
  const d: OcsfDevice = { type_id: 1, type: 'Server', hostname: src.hostname, uid: src.hostId }
  if (src.ip !== undefined) d.ip = src.ip
  return d
}

/**
 * Build one record. `metadata` and `device` are shared between the records
 * of a batch on purpose: msgpack writes them out per record anyway, and
 * sharing saves an allocation per record on the decode hot path.
 */
export function makeNetworkActivity (f: NetFields, metadata: OcsfMetadata, device: OcsfDevice): NetworkActivity {
  const rec: NetworkActivity = {
    class_uid: CLASS.NETWORK_ACTIVITY.uid,
    class_name: CLASS.NETWORK_ACTIVITY.name,
    category_uid: CATEGORY.NETWORK.uid,
    category_name: CATEGORY.NETWORK.name,
    activity_id: f.activityId,
    activity_name: NET_ACTIVITY_NAME[f.activityId],
    type_uid: typeUid(CLASS.NETWORK_ACTIVITY.uid, f.activityId),
    type_name: `${CLASS.NETWORK_ACTIVITY.name}: ${NET_ACTIVITY_NAME[f.activityId]}`,
    severity_id: SEVERITY.INFORMATIONAL,
    severity: 'Informational',
    time: f.timeMs,
    metadata,
    device,
    dst_endpoint: f.dstPort !== 0 ? { ip: f.dstIp, port: f.dstPort } : { ip: f.dstIp },
    connection_info: {
      direction_id: f.directionId,
      direction: DIRECTION_NAME[f.directionId],
      protocol_num: f.protocolNum,
      protocol_name: PROTO_NAME[f.protocolNum] ?? 'unknown',
      protocol_ver_id: f.ipVersion,
      protocol_ver: f.ipVersion === 4 ? 'Internet Protocol version 4 (IPv4)' : 'Internet Protocol version 6 (IPv6)',
    },
    is_src_dst_assignment_known: f.assignmentKnown,
  }
  if (f.srcIp !== undefined) rec.src_endpoint = f.srcPort !== 0 ? { ip: f.srcIp, port: f.srcPort } : { ip: f.srcIp }
  if (f.statusDetail !== undefined) rec.status_detail = f.statusDetail
  if (f.durationMs !== undefined) rec.duration = f.durationMs
  if (f.pid !== undefined && f.pid > 0) {
    rec.actor = { process: { pid: f.pid, ...(f.comm !== undefined ? { name: f.comm } : {}), ...(f.tid !== undefined ? { ptid: f.tid } : {}) } }
  }
  if (f.unmapped !== undefined) rec.unmapped = f.unmapped
  return rec
}
