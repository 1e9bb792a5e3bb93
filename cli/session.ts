// A k8stail session: one LogTap (lifetime: session) plus its heartbeat Lease. The controller
// deletes the tap when the Lease expires, so a killed k8stail (SIGKILL, laptop lid) leaves nothing
// behind for longer than the lease duration; a clean exit deletes the tap at once.
import { randomBytes } from 'node:crypto'
import os from 'node:os'
import {
  CoordinationV1Api,
  CustomObjectsApi,
  type KubeConfig,
  type V1Lease,
  V1MicroTime,
} from '@kubernetes/client-node'
import {
  API_VERSION,
  FIELD_MANAGER_CLI,
  type FlowKind,
  GROUP,
  KIND,
  LABEL_MANAGED_BY,
  type LogTap,
  PLURAL,
  VERSION,
} from '../api/logtap.ts'
import { fromApiError } from './errors.ts'

const LABEL_CREATED_BY = 'app.kubernetes.io/created-by'
const CLI_NAME = 'k8stail'
const ANNOTATION_USER = `${GROUP}/session-user`
const ANNOTATION_HOST = `${GROUP}/session-host`

export interface SessionSpec {
  namespace: string // where the LogTap lives: the Flow's namespace (or the ClusterFlow's control namespace)
  flowKind: FlowKind
  flowName: string
  leaseDurationSeconds: number
  replay?: number | undefined
}

interface Who {
  user: string
  host: string
  pid: number
}

function localIdentity(): Who {
  let user = 'unknown'
  try {
    user = os.userInfo().username
  } catch {
    // no passwd entry (containers): keep "unknown"
  }
  return { user, host: os.hostname(), pid: process.pid }
}

// `k8stail-<flow>-<5 random>`, at most 63 characters (a DNS label: names derived from it stay valid).
function sessionTapName(flowName: string, random = randomSuffix()): string {
  const flow = flowName
    .replace(/[^a-z0-9-]/g, '-')
    .slice(0, 63 - 'k8stail--'.length - random.length)
    .replace(/-+$/, '')
  return `k8stail-${flow}-${random}`
}

function randomSuffix(): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789'
  return Array.from(randomBytes(5), (b) => alphabet[b % alphabet.length]).join('')
}

function sessionTap(name: string, s: SessionSpec, who: Who): LogTap {
  return {
    apiVersion: API_VERSION,
    kind: KIND,
    metadata: {
      name,
      namespace: s.namespace,
      labels: { [LABEL_MANAGED_BY]: CLI_NAME, [LABEL_CREATED_BY]: CLI_NAME },
      annotations: { [ANNOTATION_USER]: who.user, [ANNOTATION_HOST]: who.host },
    },
    spec: {
      flow: { kind: s.flowKind, name: s.flowName },
      mode: 'inject',
      lifetime: 'session',
      replay: s.replay ?? 1000,
    },
  }
}

function heartbeatLease(tap: LogTap, uid: string, s: SessionSpec, who: Who, now: Date): V1Lease {
  return {
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: {
      name: tap.metadata.name,
      namespace: tap.metadata.namespace,
      labels: { [LABEL_MANAGED_BY]: CLI_NAME, [LABEL_CREATED_BY]: CLI_NAME },
      // Owned by the tap: deleting the tap (by us, or by the controller on expiry) deletes the Lease too.
      ownerReferences: [{ apiVersion: API_VERSION, kind: KIND, name: tap.metadata.name!, uid }],
    },
    spec: {
      holderIdentity: `${who.user}@${who.host}/${who.pid}`,
      leaseDurationSeconds: s.leaseDurationSeconds,
      acquireTime: new V1MicroTime(now.getTime()),
      renewTime: new V1MicroTime(now.getTime()),
    },
  }
}

export interface Session {
  namespace: string
  name: string
  uid: string
  // Stops renewing and deletes the tap and its Lease; never throws, bounded by `timeoutMs`.
  close(timeoutMs?: number): Promise<void>
}

export interface SessionDeps {
  kc: KubeConfig
  now?: () => Date
  log?: (line: string) => void // diagnostics (verbosity ≥ 1)
  warn?: (line: string) => void // problems the user should see
}

export async function createSession(s: SessionSpec, d: SessionDeps): Promise<Session> {
  const custom = d.kc.makeApiClient(CustomObjectsApi)
  const leases = d.kc.makeApiClient(CoordinationV1Api)
  const now = d.now ?? (() => new Date())
  const who = localIdentity()
  const name = sessionTapName(s.flowName)
  const tap = sessionTap(name, s, who)
  const ref = { group: GROUP, version: VERSION, namespace: s.namespace, plural: PLURAL }

  let created: LogTap
  try {
    created = (await custom.createNamespacedCustomObject({
      ...ref,
      body: tap,
      fieldManager: FIELD_MANAGER_CLI,
    })) as LogTap
  } catch (err) {
    throw fromApiError(err, `creating LogTap ${s.namespace}/${name}`)
  }
  const uid = created.metadata.uid!
  d.log?.(`created LogTap ${s.namespace}/${name}`)

  const deleteTap = async () => {
    try {
      await custom.deleteNamespacedCustomObject({ ...ref, name, propagationPolicy: 'Background' })
      d.log?.(`deleted LogTap ${s.namespace}/${name}`)
    } catch (err) {
      if ((err as { code?: number }).code !== 404) {
        d.warn?.(`could not delete LogTap ${s.namespace}/${name}: ${fromApiError(err, 'delete').message}`)
      }
    }
  }

  let lease: V1Lease
  try {
    lease = await leases.createNamespacedLease({
      namespace: s.namespace,
      body: heartbeatLease(tap, uid, s, who, now()),
      fieldManager: FIELD_MANAGER_CLI,
    })
  } catch (err) {
    await deleteTap() // nothing half-made left behind
    throw fromApiError(err, `creating heartbeat Lease ${s.namespace}/${name}`)
  }

  // Renew at a third of the duration: two renewals may fail before the tap expires.
  const renewEveryMs = (s.leaseDurationSeconds * 1000) / 3
  let renewing: Promise<void> = Promise.resolve()
  const timer = setInterval(() => {
    renewing = (async () => {
      try {
        lease.spec = { ...lease.spec, renewTime: new V1MicroTime(now().getTime()) }
        lease = await leases.replaceNamespacedLease({ name, namespace: s.namespace, body: lease })
        d.log?.(`renewed Lease ${s.namespace}/${name}`)
      } catch (err) {
        if ((err as { code?: number }).code === 409) {
          // Someone else wrote it (the controller never does; be tolerant): take the fresh copy.
          lease = await leases.readNamespacedLease({ name, namespace: s.namespace }).catch(() => lease)
        }
        d.warn?.(
          `could not renew heartbeat Lease ${s.namespace}/${name}: ${fromApiError(err, 'renew').message}`,
        )
      }
    })()
  }, renewEveryMs)
  timer.unref()

  let closing: Promise<void> | undefined
  return {
    namespace: s.namespace,
    name,
    uid,
    close(timeoutMs = 5000) {
      closing ??= (async () => {
        clearInterval(timer)
        const work = (async () => {
          await renewing.catch(() => {})
          await deleteTap()
          // The garbage collector would remove the Lease too; deleting it now leaves nothing even briefly.
          await leases.deleteNamespacedLease({ name, namespace: s.namespace }).catch(() => {})
        })()
        let t: NodeJS.Timeout | undefined
        const timeout = new Promise<void>((resolve) => {
          t = setTimeout(() => {
            d.warn?.(
              `cleanup timed out after ${timeoutMs} ms; the controller removes ${name} when its Lease expires`,
            )
            resolve()
          }, timeoutMs)
        })
        await Promise.race([work, timeout])
        clearTimeout(t)
      })()
      return closing
    },
  }
}
