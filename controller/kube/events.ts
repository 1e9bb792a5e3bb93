// Kubernetes Events on LogTaps (what `kubectl describe logtap` shows), deduplicated the way
// client-go's recorder does: a repeat of the same event within 10 minutes bumps the existing
// Event's count instead of creating a new object. Never throws: an Event is best effort.
import { randomBytes } from 'node:crypto'
import { CoreV1Api, type KubeConfig, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node'
import type pino from 'pino'
import type { ObjectMeta } from '../../api/logtap.ts'
import { errorText } from './api-errors.ts'

interface EventTarget {
  apiVersion?: string
  kind?: string
  metadata: ObjectMeta
}

type EventType = 'Normal' | 'Warning'

const WINDOW_MS = 10 * 60_000
const MAX_TRACKED = 2000

export class EventRecorder {
  private readonly core: CoreV1Api
  private readonly seen = new Map<string, { name: string; namespace: string; count: number; at: number }>()
  private readonly component: string
  private readonly instance: string
  private readonly log: pino.Logger

  constructor(kc: KubeConfig, component: string, instance: string, log: pino.Logger) {
    this.core = kc.makeApiClient(CoreV1Api)
    this.component = component
    this.instance = instance
    this.log = log
  }

  record(target: EventTarget, type: EventType, reason: string, message: string): Promise<void> {
    return this.emit(target, type, reason, message).catch((err) => {
      this.log.debug({ err: errorText(err), reason }, 'Event not recorded')
    })
  }

  private async emit(target: EventTarget, type: EventType, reason: string, message: string): Promise<void> {
    const { name, namespace, uid } = target.metadata
    if (!name || !namespace) return
    const key = `${uid}|${type}|${reason}|${message}`
    const now = Date.now()
    const prev = this.seen.get(key)
    if (prev && now - prev.at < WINDOW_MS) {
      prev.count++
      prev.at = now
      try {
        await this.core.patchNamespacedEvent(
          {
            name: prev.name,
            namespace: prev.namespace,
            body: { count: prev.count, lastTimestamp: new Date(now).toISOString() },
          },
          setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
        )
        return
      } catch {
        // The Event expired or was removed: create a new one.
      }
    }
    const eventName = `${name}.${now.toString(16)}${randomBytes(3).toString('hex')}`
    const ts = new Date(now)
    await this.core.createNamespacedEvent({
      namespace,
      body: {
        metadata: { name: eventName, namespace },
        involvedObject: { apiVersion: target.apiVersion, kind: target.kind, name, namespace, uid },
        type,
        reason,
        message: message.slice(0, 1024),
        count: 1,
        firstTimestamp: ts,
        lastTimestamp: ts,
        source: { component: this.component },
        reportingComponent: this.component,
        reportingInstance: this.instance,
      },
    })
    this.seen.delete(key)
    this.seen.set(key, { name: eventName, namespace, count: 1, at: now })
    if (this.seen.size > MAX_TRACKED) this.seen.delete(this.seen.keys().next().value as string)
  }
}
