import * as grpc from '@grpc/grpc-js'
import * as protoLoader from '@grpc/proto-loader'
import type { AckStatus, DropCounters } from '../enums.js'
import { rootPath } from '../paths.js'

export const PROTO_PATH = rootPath('shared', 'proto', 'collector.proto')

export type { DropCounters } from '../enums.js'

export interface Batch {
  host_id: string
  seq: number
  count: number
  records: Buffer
  drops?: Partial<DropCounters>
  hostname?: string
  sent_at_ms?: number
  agent_version?: string
  captured_total?: number
  /** the agent instance (its spool's seq stream); '' or absent: an agent from before instance ids */
  instance?: string
  /** msgpack {shared, shapes} of the lean form (shared/ocsf/lean.ts); empty: full-form records */
  context?: Buffer
}

export type { AckStatus } from '../enums.js'

export interface Ack {
  host_id: string
  seq: number
  status: AckStatus
  code?: number
  error?: string
  message?: string
  limit?: string
  /** the batch's instance, echoed */
  instance?: string
}

let cached: grpc.GrpcObject | undefined

export function loadCollectorPackage (): grpc.GrpcObject {
  if (cached !== undefined) return cached
  const def = protoLoader.loadSync(PROTO_PATH, {
    keepCase: true,
    longs: Number,
    enums: String,
    defaults: true,
    oneofs: true,
  })
  cached = grpc.loadPackageDefinition(def)
  return cached
}

export function collectorService (): grpc.ServiceDefinition {
  const pkg = loadCollectorPackage() as unknown as { picket: { collector: { v1: { Collector: grpc.ServiceClientConstructor } } } }
  return pkg.picket.collector.v1.Collector.service
}

export function collectorClientCtor (): grpc.ServiceClientConstructor {
  const pkg = loadCollectorPackage() as unknown as { picket: { collector: { v1: { Collector: grpc.ServiceClientConstructor } } } }
  return pkg.picket.collector.v1.Collector
}
