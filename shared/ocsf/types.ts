// The subset of OCSF 1.8.0 objects Picket emits. Field names are OCSF's own.

export interface OcsfProduct { name: string, vendor_name: string, version?: string, uid?: string }

export interface OcsfMetadata {
  version: string
  product: OcsfProduct
  uid?: string
  log_name?: string
  logged_time?: number
  original_time?: string
  profiles?: string[]
  sequence?: number
  correlation_uid?: string
}

export interface OcsfDevice {
  type_id: number
  type?: string
  hostname?: string
  uid?: string
  name?: string
  ip?: string
  os?: { name: string, type_id: number, type?: string, version?: string }
}

export interface OcsfNetworkEndpoint { ip?: string, port?: number, hostname?: string, uid?: string, svc_name?: string }

export interface OcsfConnectionInfo {
  direction_id: number
  direction?: string
  protocol_num?: number
  protocol_name?: string
  protocol_ver_id?: number
  protocol_ver?: string
  uid?: string
  tcp_flags?: number
}

export interface OcsfProcess { pid?: number, name?: string, ptid?: number, uid?: string }

/** The base event attributes every class Picket emits carries (OCSF base_event). */
export interface OcsfBaseEvent {
  class_name?: string
  category_name?: string
  activity_id: number
  activity_name?: string
  type_uid: number
  type_name?: string
  severity_id: number
  severity?: string
  status_id?: number
  status?: string
  time: number
  start_time?: number
  message?: string
  metadata: OcsfMetadata
  device?: OcsfDevice
  unmapped?: Record<string, unknown>
}

export interface NetworkActivity extends OcsfBaseEvent {
  class_uid: 4001
  category_uid: 4
  duration?: number
  status_code?: string
  status_detail?: string
  actor?: { process?: OcsfProcess }
  src_endpoint?: OcsfNetworkEndpoint
  dst_endpoint?: OcsfNetworkEndpoint
  connection_info?: OcsfConnectionInfo
  is_src_dst_assignment_known?: boolean
}

export interface OcsfAttack {
  technique: { uid: string, name: string, src_url?: string }
  /** absent when the rule names no tactic Picket knows the ATT&CK id of */
  tactic?: { uid: string, name: string, src_url?: string }
  version?: string
}

export interface DetectionFinding extends OcsfBaseEvent {
  class_uid: 2004
  category_uid: 2
  end_time?: number
  count?: number
  finding_info: {
    uid: string
    title: string
    desc?: string
    types?: string[]
    created_time?: number
    modified_time?: number
    first_seen_time?: number
    last_seen_time?: number
    attacks?: OcsfAttack[]
    analytic?: { uid?: string, name?: string, type_id: number, type?: string, desc?: string }
    data_sources?: string[]
    src_url?: string
  }
  evidences?: Array<Record<string, unknown>>
  observables?: Array<{ name: string, type_id: number, type?: string, value?: string }>
  resources?: Array<Record<string, unknown>>
  confidence_id?: number
  confidence?: string
  risk_level_id?: number
}

export type OcsfRecord = NetworkActivity | (Record<string, unknown> & { class_uid: number })
