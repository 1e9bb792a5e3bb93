// Leader election on a coordination.k8s.io Lease, the client-go way: the holder renews every
// retry period; a candidate takes over only after it has seen the same lease record unchanged for
// a whole lease duration on its own clock (no cross-node clock comparison); a leader that cannot
// renew within the renew deadline stops leading before anyone else may start.
//
// The identity written to the Lease is the one given plus a random suffix, as client-go's
// components do: two processes given the same identity (the default is the pod name, else the
// hostname, so any two on one machine) would otherwise each take the other's renewals for their
// own and lead at once.
import { randomUUID } from 'node:crypto'
import type { CustomObjectsApi } from '@kubernetes/client-node'
import type pino from 'pino'
import { errorText, isConflict, isNotFound } from './api-errors.ts'
import { realTimers, type Timers } from './timers.ts'

interface LeaderOptions {
  namespace: string
  name: string
  identity: string
  leaseDurationSeconds: number
  renewDeadlineMs: number
  retryPeriodMs: number
}

interface LeaderCallbacks {
  onStartedLeading(): Promise<void> | void
  onStoppedLeading(): Promise<void> | void
}

interface LeaseObject {
  apiVersion: string
  kind: string
  metadata: { name: string; namespace: string; resourceVersion?: string }
  spec: {
    holderIdentity?: string
    leaseDurationSeconds?: number
    acquireTime?: string
    renewTime?: string
    leaseTransitions?: number
  }
}

const LEASES = { group: 'coordination.k8s.io', version: 'v1', plural: 'leases' }

// MicroTime wants exactly six fractional digits.
function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z')
}

export class LeaderElector {
  private leading = false
  private stopped = false
  private lastRenew = 0
  private observed = ''
  private observedAt = 0
  private loop: Promise<void> | undefined
  private wake: (() => void) | undefined
  private readonly custom: CustomObjectsApi
  private readonly o: LeaderOptions
  private readonly cb: LeaderCallbacks
  private readonly log: pino.Logger
  private readonly timers: Timers

  constructor(
    custom: CustomObjectsApi,
    o: LeaderOptions,
    cb: LeaderCallbacks,
    log: pino.Logger,
    timers = realTimers,
  ) {
    this.custom = custom
    this.o = { ...o, identity: `${o.identity}_${randomUUID()}` }
    this.cb = cb
    this.log = log.child({ lease: `${o.namespace}/${o.name}`, identity: this.o.identity })
    this.timers = timers
  }

  isLeader(): boolean {
    return this.leading
  }

  start(): void {
    this.loop ??= this.run()
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((r) => {
      const h = this.timers.setTimeout(r, ms)
      this.wake = () => {
        this.timers.clearTimeout(h)
        r()
      }
    })
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      let held = false
      try {
        held = await this.tryAcquireOrRenew()
      } catch (err) {
        this.log.warn({ err: errorText(err) }, 'Leader lease not renewed')
      }
      const now = this.timers.now()
      if (held) {
        this.lastRenew = now
        if (!this.leading && !this.stopped) {
          this.leading = true
          this.log.info('Started leading')
          await this.cb.onStartedLeading()
        }
      } else if (this.leading && now - this.lastRenew > this.o.renewDeadlineMs) {
        await this.stepDown('Lost the leader lease')
      }
      if (!this.stopped) await this.sleep(this.o.retryPeriodMs)
    }
  }

  private async stepDown(why: string): Promise<void> {
    this.leading = false
    this.log.warn(why)
    await this.cb.onStoppedLeading()
  }

  private async tryAcquireOrRenew(): Promise<boolean> {
    const { namespace, name, identity, leaseDurationSeconds } = this.o
    const now = this.timers.now()
    let lease: LeaseObject | undefined
    try {
      lease = (await this.custom.getNamespacedCustomObject({ ...LEASES, namespace, name })) as LeaseObject
    } catch (err) {
      if (!isNotFound(err)) throw err
    }
    if (!lease) {
      const body: LeaseObject = {
        apiVersion: 'coordination.k8s.io/v1',
        kind: 'Lease',
        metadata: { name, namespace },
        spec: {
          holderIdentity: identity,
          leaseDurationSeconds,
          acquireTime: microTime(now),
          renewTime: microTime(now),
          leaseTransitions: 0,
        },
      }
      try {
        await this.custom.createNamespacedCustomObject({ ...LEASES, namespace, body })
        return true
      } catch (err) {
        if (isConflict(err)) return false
        throw err
      }
    }
    const spec = lease.spec ?? {}
    const record = `${spec.holderIdentity}|${spec.renewTime}|${lease.metadata.resourceVersion}`
    if (record !== this.observed) {
      this.observed = record
      this.observedAt = now
    }
    const mine = spec.holderIdentity === identity
    const free =
      !spec.holderIdentity ||
      now - this.observedAt > (spec.leaseDurationSeconds ?? leaseDurationSeconds) * 1000
    if (!mine && !free) return false
    const next: LeaseObject = {
      ...lease,
      spec: {
        ...spec,
        holderIdentity: identity,
        leaseDurationSeconds,
        renewTime: microTime(now),
        acquireTime: mine ? spec.acquireTime : microTime(now),
        leaseTransitions: mine ? (spec.leaseTransitions ?? 0) : (spec.leaseTransitions ?? 0) + 1,
      },
    }
    try {
      await this.custom.replaceNamespacedCustomObject({ ...LEASES, namespace, name, body: next })
      return true
    } catch (err) {
      if (isConflict(err)) return false
      throw err
    }
  }

  // Stops campaigning; a leader stops leading, then hands the lease back so a standby takes over
  // at once instead of after a lease duration.
  async stop(): Promise<void> {
    this.stopped = true
    this.wake?.()
    await this.loop
    if (!this.leading) return
    await this.stepDown('Stopped leading')
    const { namespace, name, identity } = this.o
    try {
      const lease = (await this.custom.getNamespacedCustomObject({
        ...LEASES,
        namespace,
        name,
      })) as LeaseObject
      if (lease.spec?.holderIdentity !== identity) return
      const body = {
        ...lease,
        spec: {
          ...lease.spec,
          holderIdentity: '',
          leaseDurationSeconds: 1,
          renewTime: microTime(this.timers.now()),
        },
      }
      await this.custom.replaceNamespacedCustomObject({ ...LEASES, namespace, name, body })
    } catch (err) {
      this.log.debug({ err: errorText(err) }, 'Leader lease not released')
    }
  }
}
