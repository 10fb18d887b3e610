// OCSF 1.8.0 identifiers Picket emits. type_uid = class_uid * 100 + activity_id.

export const OCSF_VERSION = '1.8.0'

export const CATEGORY = {
  SYSTEM: { uid: 1, name: 'System Activity' },
  FINDINGS: { uid: 2, name: 'Findings' },
  NETWORK: { uid: 4, name: 'Network Activity' },
} as const

export const CLASS = {
  FILE_ACTIVITY: { uid: 1001, name: 'File System Activity', category: CATEGORY.SYSTEM },
  PROCESS_ACTIVITY: { uid: 1007, name: 'Process Activity', category: CATEGORY.SYSTEM },
  DETECTION_FINDING: { uid: 2004, name: 'Detection Finding', category: CATEGORY.FINDINGS },
  NETWORK_ACTIVITY: { uid: 4001, name: 'Network Activity', category: CATEGORY.NETWORK },
  DNS_ACTIVITY: { uid: 4003, name: 'DNS Activity', category: CATEGORY.NETWORK },
} as const

export const NET_ACTIVITY = {
  UNKNOWN: 0,
  OPEN: 1,
  CLOSE: 2,
  RESET: 3,
  FAIL: 4,
  REFUSE: 5,
  TRAFFIC: 6,
  LISTEN: 7,
  OTHER: 99,
} as const

export const NET_ACTIVITY_NAME: Record<number, string> = {
  0: 'Unknown', 1: 'Open', 2: 'Close', 3: 'Reset', 4: 'Fail', 5: 'Refuse', 6: 'Traffic', 7: 'Listen', 99: 'Other',
}

export const FINDING_ACTIVITY = { CREATE: 1, UPDATE: 2, CLOSE: 3 } as const
export const FINDING_ACTIVITY_NAME: Record<number, string> = { 1: 'Create', 2: 'Update', 3: 'Close' }

/** Every class_uid OCSF 1.8.0 defines (0 is the base event), as inclusive ranges; a test checks them against the schema. */
export const OCSF_CLASS_UID_RANGES: ReadonlyArray<readonly [number, number]> = [
  [0, 0], [1001, 1010], [2001, 2008], [3001, 3006], [4001, 4014], [5001, 5004], [5006, 5023], [5040, 5040],
  [6001, 6008], [7001, 7004], [8001, 8002],
]

/** activity_id of any class lies in 0..OCSF_MAX_ACTIVITY_ID or is 99 (Other); a test checks it against the schema. */
export const OCSF_MAX_ACTIVITY_ID = 17

// network_connection_info.direction_id
export const DIRECTION = { UNKNOWN: 0, INBOUND: 1, OUTBOUND: 2, LATERAL: 3, LOCAL: 4, OTHER: 99 } as const
export const DIRECTION_NAME: Record<number, string> = { 0: 'Unknown', 1: 'Inbound', 2: 'Outbound', 3: 'Lateral', 4: 'Local', 99: 'Other' }

// device.type_id: its captions, as the schema gives them (a test checks)
export const DEVICE_TYPE_NAME: Record<number, string> = {
  0: 'Unknown', 1: 'Server', 2: 'Desktop', 3: 'Laptop', 4: 'Tablet', 5: 'Mobile', 6: 'Virtual', 7: 'IOT', 8: 'Browser',
  9: 'Firewall', 10: 'Switch', 11: 'Hub', 12: 'Router', 13: 'IDS', 14: 'IPS', 15: 'Load Balancer', 99: 'Other',
}

// network_connection_info.protocol_ver_id
export const PROTOCOL_VER = { UNKNOWN: 0, IPV4: 4, IPV6: 6, OTHER: 99 } as const

export const SEVERITY = { UNKNOWN: 0, INFORMATIONAL: 1, LOW: 2, MEDIUM: 3, HIGH: 4, CRITICAL: 5, FATAL: 6, OTHER: 99 } as const
export const SEVERITY_NAME: Record<number, string> = { 0: 'Unknown', 1: 'Informational', 2: 'Low', 3: 'Medium', 4: 'High', 5: 'Critical', 6: 'Fatal', 99: 'Other' }

// finding status_id (detection_finding)
export const FINDING_STATUS = { NEW: 1, IN_PROGRESS: 2, SUPPRESSED: 3, RESOLVED: 4, ARCHIVED: 5, OTHER: 99 } as const

export const MITRE = {
  T1046: { uid: 'T1046', name: 'Network Service Discovery', src_url: 'https://attack.mitre.org/techniques/T1046/' },
  TA0007: { uid: 'TA0007', name: 'Discovery', src_url: 'https://attack.mitre.org/tactics/TA0007/' },
} as const

export const PRODUCT = { name: 'Picket', vendor_name: 'Picket' } as const

// detection_finding details: observable.type_id and analytic.type_id
/**
 * observable.type_id: a scalar type's id (dictionary.json `types`), or the id
 * the schema gives an object's attribute (device.json `uid`: 47), which wins
 * over its type's (resource_uid_t, 10) for that attribute.
 */
export const OBSERVABLE_TYPE = { HOSTNAME: 1, IP_ADDRESS: 2, PORT: 11, RESOURCE_UID: 10, DEVICE_UID: 47 } as const
export const ANALYTIC_TYPE = { RULE: 1 } as const

export function typeUid (classUid: number, activityId: number): number {
  return classUid * 100 + activityId
}
