// When a session tap ends: its heartbeat Lease (same name, same namespace, renewed by k8stail)
// has not been renewed for leaseDurationSeconds plus a grace, or never appeared at all.
import type { LogTap } from '../../../api/logtap.ts'
import { toMillis } from '../../kube/objects.ts'

export interface LeaseInfo {
  uid?: string
  renewTime?: string | Date
  acquireTime?: string | Date
  creationTimestamp?: string | Date
  leaseDurationSeconds?: number
  ownerUids: string[]
}

export interface SessionTimings {
  leaseGraceMs: number // past renewTime + leaseDurationSeconds
  startGraceMs: number // for the Lease to appear after the tap was created
  defaultLeaseDurationSeconds: number // when the Lease does not say
}

type SessionVerdict =
  | { expired: false; recheckInMs: number }
  | { expired: true; reason: 'SessionExpired' | 'SessionNeverStarted'; message: string }

export function sessionVerdict(
  tap: LogTap,
  lease: LeaseInfo | undefined,
  now: number,
  t: SessionTimings,
): SessionVerdict {
  const name = tap.metadata.name
  // A Lease owned by someone else (e.g. a previous tap of the same name) is not this tap's heartbeat.
  const ours = lease && (lease.ownerUids.length === 0 || lease.ownerUids.includes(tap.metadata.uid ?? ''))
  if (!lease || !ours) {
    const created = toMillis(tap.metadata.creationTimestamp) ?? now
    const deadline = created + t.startGraceMs
    if (now < deadline) return { expired: false, recheckInMs: deadline - now }
    return {
      expired: true,
      reason: 'SessionNeverStarted',
      message: lease
        ? `Lease ${name} belongs to another object and no heartbeat for this session tap appeared within ${t.startGraceMs / 1000}s of its creation`
        : `No heartbeat Lease ${name} appeared within ${t.startGraceMs / 1000}s of the session tap's creation`,
    }
  }
  const last =
    toMillis(lease.renewTime) ?? toMillis(lease.acquireTime) ?? toMillis(lease.creationTimestamp) ?? now
  const duration = lease.leaseDurationSeconds ?? t.defaultLeaseDurationSeconds
  const deadline = last + duration * 1000 + t.leaseGraceMs
  if (now < deadline) return { expired: false, recheckInMs: deadline - now }
  return {
    expired: true,
    reason: 'SessionExpired',
    message: `Heartbeat Lease ${name} was last renewed ${Math.round((now - last) / 1000)}s ago (lease duration ${duration}s): the session ended`,
  }
}
