// The controller's API calls, in one place: server-side apply for objects we own (fixed field
// manager), conflict-safe JSON patches for objects others own, deletes pinned to one uid.
import { CustomObjectsApi, type KubeConfig, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node'
import { FIELD_MANAGER_CONTROLLER, GROUP, PLURAL, VERSION } from '../../api/logtap.ts'
import type { JsonPatchOp } from '../reconciler/desired/flows.ts'
import { type KObject, LOGGING_GROUP, type ObjRef } from './objects.ts'

export const PLURALS: Record<ObjRef['kind'] | 'LogTap', { group: string; version: string; plural: string }> =
  {
    Output: { group: LOGGING_GROUP, version: 'v1beta1', plural: 'outputs' },
    ClusterOutput: { group: LOGGING_GROUP, version: 'v1beta1', plural: 'clusteroutputs' },
    Flow: { group: LOGGING_GROUP, version: 'v1beta1', plural: 'flows' },
    ClusterFlow: { group: LOGGING_GROUP, version: 'v1beta1', plural: 'clusterflows' },
    LogTap: { group: GROUP, version: VERSION, plural: PLURAL },
  }

export function statusCode(err: unknown): number | undefined {
  const c = (err as { code?: unknown } | null)?.code
  return typeof c === 'number' ? c : undefined
}

export function isNotFound(err: unknown): boolean {
  return statusCode(err) === 404
}

// 409: resourceVersion/uid precondition failed; 422: a JSON patch `test` op failed.
export function isConflict(err: unknown): boolean {
  const c = statusCode(err)
  return c === 409 || c === 422
}

// A short, readable description of an API error for conditions, Events and logs.
export function errorText(err: unknown): string {
  const body = (err as { body?: unknown } | null)?.body
  let parsed: unknown = body
  if (typeof body === 'string') {
    try {
      parsed = JSON.parse(body)
    } catch {}
  }
  const msg = (parsed as { message?: unknown } | null)?.message
  if (typeof msg === 'string') return `${msg} (HTTP ${statusCode(err)})`
  return err instanceof Error ? err.message : String(err)
}

type Kind = keyof typeof PLURALS

export class Api {
  readonly custom: CustomObjectsApi

  constructor(kc: KubeConfig) {
    this.custom = kc.makeApiClient(CustomObjectsApi)
  }

  async get(kind: Kind, namespace: string, name: string): Promise<KObject | undefined> {
    try {
      return (await this.custom.getNamespacedCustomObject({ ...PLURALS[kind], namespace, name })) as KObject
    } catch (err) {
      if (isNotFound(err)) return undefined
      throw err
    }
  }

  async list(kind: Kind, namespace: string, labelSelector?: string): Promise<KObject[]> {
    const r = (await this.custom.listNamespacedCustomObject({
      ...PLURALS[kind],
      namespace,
      labelSelector,
    })) as {
      items: KObject[]
    }
    return r.items.map((o) => ({ ...o, kind }))
  }

  // Server-side apply of an object we own. `existingUid` pins the update to that incarnation:
  // the API server refuses it (409) if the object is gone or was replaced.
  async apply(obj: KObject, existingUid?: string): Promise<KObject> {
    const kind = obj.kind as Kind
    const body = existingUid ? { ...obj, metadata: { ...obj.metadata, uid: existingUid } } : obj
    return (await this.custom.patchNamespacedCustomObject(
      {
        ...PLURALS[kind],
        namespace: obj.metadata.namespace ?? '',
        name: obj.metadata.name ?? '',
        body,
        fieldManager: FIELD_MANAGER_CONTROLLER,
        force: true,
      },
      setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply),
    )) as KObject
  }

  async jsonPatch(kind: Kind, namespace: string, name: string, ops: JsonPatchOp[]): Promise<KObject> {
    return (await this.custom.patchNamespacedCustomObject(
      { ...PLURALS[kind], namespace, name, body: ops, fieldManager: FIELD_MANAGER_CONTROLLER },
      setHeaderOptions('Content-Type', PatchStrategy.JsonPatch),
    )) as KObject
  }

  // Patches the object with ops computed from its current state, recomputing from a fresh read
  // when the server rejects them (a `test` op failed: someone changed it meanwhile). The first
  // attempt may use a cached copy: the ops' test guards make that safe. `build` returns null when
  // nothing needs changing.
  async patchFresh(
    kind: Kind,
    namespace: string,
    name: string,
    build: (current: KObject) => JsonPatchOp[] | null,
    cached?: KObject,
    attempts = 5,
  ): Promise<'patched' | 'unchanged' | 'gone'> {
    for (let i = 1; ; i++) {
      const current = i === 1 && cached ? structuredClone(cached) : await this.get(kind, namespace, name)
      if (!current) return 'gone'
      const ops = build({ ...current, kind })
      if (!ops) {
        if (i === 1 && cached) continue // the cache may be behind: confirm with a fresh read
        return 'unchanged'
      }
      try {
        await this.jsonPatch(kind, namespace, name, ops)
        return 'patched'
      } catch (err) {
        if (isNotFound(err)) return 'gone'
        if (!isConflict(err) || i >= attempts) throw err
      }
    }
  }

  // Deletes exactly the incarnation `uid` (a recreated object of the same name is left alone);
  // false when there was nothing to delete.
  async delete(
    kind: Kind,
    namespace: string,
    name: string,
    uid?: string,
    propagationPolicy = 'Background',
  ): Promise<boolean> {
    try {
      await this.custom.deleteNamespacedCustomObject({
        ...PLURALS[kind],
        namespace,
        name,
        propagationPolicy,
        body: uid ? { preconditions: { uid } } : {},
      })
      return true
    } catch (err) {
      if (isNotFound(err) || (uid && statusCode(err) === 409)) return false // gone, or another object now
      throw err
    }
  }

  // Status of a LogTap through the status subresource, carrying only the controller's fields.
  async applyTapStatus(namespace: string, name: string, status: Record<string, unknown>): Promise<void> {
    await this.custom.patchNamespacedCustomObjectStatus(
      {
        ...PLURALS.LogTap,
        namespace,
        name,
        body: { apiVersion: `${GROUP}/${VERSION}`, kind: 'LogTap', metadata: { name, namespace }, status },
        fieldManager: FIELD_MANAGER_CONTROLLER,
        force: true,
      },
      setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply),
    )
  }
}
