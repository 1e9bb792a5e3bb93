// While this controller leads: keeps each LogTap's printed relay counters the sum of its
// status.relays entries (one per relay replica, each written by that replica), and removes the
// entries of replicas that have been gone for a while. Driven by the LogTap informer (a replica
// wrote its entry) and by the relay Service's endpoints (a replica came or went), coalesced per
// tap; a periodic pass catches up after a change of leader.
import type { KubeConfig } from '@kubernetes/client-node'
import type pino from 'pino'
import type { LogTap } from '../../api/logtap.ts'
import { errorText, isConflict, isNotFound } from '../kube/api-errors.ts'
import type { InformerHandler, SharedInformer } from '../kube/informers.ts'
import { ObjectClient } from '../kube/object-client.ts'
import { keyOfObject, parseKey } from './desired/naming.ts'
import { pruneRelays, relayTotals, totalsCurrent } from './desired/relay-totals.ts'

export interface RelayTotalsOptions {
  kc: KubeConfig
  logTaps: SharedInformer // the process's LogTap informer (started by its owner)
  isLeader(): boolean
  // The relay replicas that exist (every endpoint of the relay Service, ready or not); without
  // it (a single relay) nothing is pruned.
  replicas?: { names(): string[] | undefined; onChange(listener: () => void): void }
  log: pino.Logger
  delayMs?: number // coalescing of a tap's updates; default 1 s
  pruneAfterMs?: number // how long a replica must have been gone before its entry goes; default 30 s
}

export interface RelayTotalsLoop {
  stop(): Promise<void>
}

export function startRelayTotals(o: RelayTotalsOptions): RelayTotalsLoop {
  const client = new ObjectClient(o.kc)
  const log = o.log.child({ loop: 'relay-totals' })
  const delayMs = o.delayMs ?? 1000
  const pruneAfterMs = o.pruneAfterMs ?? 30_000
  const pending = new Set<string>()
  const goneSince = new Map<string, number>() // replica name → when it was first seen missing
  let known = new Set<string>() // every replica name seen in an entry or among the endpoints
  let timer: NodeJS.Timeout | undefined
  let running: Promise<void> = Promise.resolve()
  let stopped = false

  const schedule = (): void => {
    if (stopped || timer) return
    timer = setTimeout(() => {
      timer = undefined
      running = running.then(pass)
    }, delayMs)
  }
  const everyTap = (): void => {
    for (const t of o.logTaps.list()) pending.add(keyOfObject(t))
    schedule()
  }

  // Who is gone, and for how long: refreshed from the endpoints at every pass.
  const noteReplicas = (): ReadonlySet<string> | undefined => {
    const names = o.replicas?.names()
    if (!names) return undefined
    const live = new Set(names)
    const now = Date.now()
    for (const n of live) goneSince.delete(n)
    for (const n of known) if (!live.has(n) && !goneSince.has(n)) goneSince.set(n, now)
    known = new Set([...live, ...goneSince.keys()])
    return live
  }

  async function pass(): Promise<void> {
    if (!o.isLeader()) {
      pending.clear()
      return
    }
    const live = noteReplicas()
    const keys = [...pending]
    pending.clear()
    let recheck = false
    for (const key of keys) {
      const { namespace, name } = parseKey(key)
      const tap = o.logTaps.get(name, namespace) as LogTap | undefined
      if (!tap?.metadata.uid || tap.metadata.deletionTimestamp) continue
      const status = tap.status
      for (const e of status?.relays ?? []) {
        if (!known.has(e.name)) {
          known.add(e.name)
          if (live && !live.has(e.name)) goneSince.set(e.name, Date.now())
        }
      }
      const prunable = new Set<string>()
      const now = Date.now()
      for (const e of status?.relays ?? []) {
        const since = goneSince.get(e.name)
        if (live && !live.has(e.name) && since !== undefined) {
          if (now - since >= pruneAfterMs) prunable.add(e.name)
          else recheck = true
        }
      }
      try {
        const ops = pruneRelays(status, prunable)
        if (ops) {
          await client.jsonPatchTapStatus(namespace, name, ops)
          log.info(
            { logtap: key, replicas: [...prunable] },
            'Removed the counters of relay replicas that are gone',
          )
          continue // the informer brings the pruned tap back here
        }
        const totals = relayTotals(status, live)
        if (totalsCurrent(status, totals)) continue
        await client.applyRelayTotals(namespace, name, tap.metadata.uid, { ...totals })
      } catch (err) {
        if (isNotFound(err)) continue
        // A test op failed or the tap was replaced: the informer's next event brings it back.
        if (isConflict(err)) log.debug({ logtap: key, err: errorText(err) }, 'Relay totals must wait')
        else {
          log.warn({ logtap: key, err: errorText(err) }, 'Writing relay totals failed')
          pending.add(key)
        }
      }
    }
    if (recheck) setTimeout(everyTap, pruneAfterMs).unref()
    if (pending.size) schedule()
  }

  const onTap: InformerHandler = (_event, obj) => {
    pending.add(keyOfObject(obj))
    schedule()
  }
  o.logTaps.on(onTap)
  o.replicas?.onChange(everyTap)
  const periodic = setInterval(everyTap, Math.max(pruneAfterMs, 10_000))
  periodic.unref()

  return {
    async stop() {
      stopped = true
      o.logTaps.off(onTap)
      clearInterval(periodic)
      clearTimeout(timer)
      await running
    },
  }
}
