// Which replica this relay is, and which replicas of its Service are ready. The program feeds it
// from the Service's EndpointSlices (controller/kube/endpoints.ts); a relay started without one
// runs alone and says nothing about replicas.
import type { ReplicaRef } from '../../api/stream-protocol.ts'

export interface ReplicaDirectory {
  readonly self: ReplicaRef
  // The ready replicas (this one included while it is ready); undefined until they are known.
  ready(): ReplicaRef[] | undefined
  // Called whenever ready() may have changed.
  onChange(listener: () => void): void
}
