// The controller's API calls, in one place: server-side apply for objects we own (fixed field
// manager), conflict-safe JSON patches for objects others own, deletes pinned to one uid.
import {
  CoreV1Api,
  CustomObjectsApi,
  type KubeConfig,
  PatchStrategy,
  setHeaderOptions,
} from '@kubernetes/client-node'
import { KINDS, type NamespacedKindName, resourceOf } from '../../api/kinds.ts'
import { FIELD_MANAGER_CONTROLLER, FIELD_MANAGER_RELAY } from '../../api/logtap.ts'
import { isConflict, isNotFound, statusCode } from './api-errors.ts'
import type { JsonPatchOp, KObject } from './objects.ts'

type Kind = NamespacedKindName

export class ObjectClient {
  readonly custom: CustomObjectsApi
  private readonly core: CoreV1Api

  constructor(kc: KubeConfig) {
    this.custom = kc.makeApiClient(CustomObjectsApi)
    this.core = kc.makeApiClient(CoreV1Api)
  }

  async get(kind: Kind, namespace: string, name: string): Promise<KObject | undefined> {
    try {
      return (await this.custom.getNamespacedCustomObject({
        ...resourceOf(kind),
        namespace,
        name,
      })) as KObject
    } catch (err) {
      if (isNotFound(err)) return undefined
      throw err
    }
  }

  async list(kind: Kind, namespace: string, labelSelector?: string): Promise<KObject[]> {
    const r = (await this.custom.listNamespacedCustomObject({
      ...resourceOf(kind),
      namespace,
      labelSelector,
    })) as {
      items: KObject[]
    }
    return r.items.map((o) => ({ ...o, kind }))
  }

  // Every object of a namespaced kind, in all namespaces.
  async listEverywhere(kind: Kind): Promise<KObject[]> {
    const r = (await this.custom.listClusterCustomObject(resourceOf(kind))) as { items: KObject[] }
    return r.items.map((o) => ({ ...o, kind }))
  }

  async listLoggings(): Promise<KObject[]> {
    const r = (await this.custom.listClusterCustomObject(resourceOf('Logging'))) as { items: KObject[] }
    return r.items.map((o) => ({ ...o, kind: KINDS.Logging.kind }))
  }

  // Secrets: only the credential Secrets of taps, each read and written by name (the controller
  // may not list Secrets).
  async getSecret(namespace: string, name: string): Promise<KObject | undefined> {
    try {
      const s = await this.core.readNamespacedSecret({ namespace, name })
      return { ...(s as unknown as KObject), apiVersion: 'v1', kind: 'Secret' }
    } catch (err) {
      if (isNotFound(err)) return undefined
      throw err
    }
  }

  // Server-side apply of a Secret we own; `existingUid` pins the update to that incarnation.
  async applySecret(obj: KObject, existingUid?: string): Promise<KObject> {
    const body = existingUid ? { ...obj, metadata: { ...obj.metadata, uid: existingUid } } : obj
    const s = await this.core.patchNamespacedSecret(
      {
        namespace: obj.metadata.namespace ?? '',
        name: obj.metadata.name ?? '',
        body,
        fieldManager: FIELD_MANAGER_CONTROLLER,
        force: true,
      },
      setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply),
    )
    return { ...(s as unknown as KObject), apiVersion: 'v1', kind: 'Secret' }
  }

  // Deletes exactly the Secret incarnation `uid`; false when there was nothing to delete.
  async deleteSecret(namespace: string, name: string, uid: string): Promise<boolean> {
    try {
      await this.core.deleteNamespacedSecret({ namespace, name, body: { preconditions: { uid } } })
      return true
    } catch (err) {
      if (isNotFound(err) || statusCode(err) === 409) return false
      throw err
    }
  }

  // Server-side apply of an object we own. `existingUid` pins the update to that incarnation:
  // the API server refuses it (409) if the object is gone or was replaced.
  async apply(obj: KObject, existingUid?: string): Promise<KObject> {
    const kind = obj.kind as Kind
    const body = existingUid ? { ...obj, metadata: { ...obj.metadata, uid: existingUid } } : obj
    return (await this.custom.patchNamespacedCustomObject(
      {
        ...resourceOf(kind),
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
      { ...resourceOf(kind), namespace, name, body: ops, fieldManager: FIELD_MANAGER_CONTROLLER },
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
        ...resourceOf(kind),
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
  applyTapStatus(namespace: string, name: string, status: Record<string, unknown>): Promise<void> {
    return this.#applyTapStatus({ name, namespace }, status, FIELD_MANAGER_CONTROLLER)
  }

  // The relay totals of a LogTap (status.listeners, recordsReceived, lastRecordTime) under their
  // own field manager, pinned to one incarnation of the tap.
  applyRelayTotals(
    namespace: string,
    name: string,
    uid: string,
    totals: Record<string, unknown>,
  ): Promise<void> {
    return this.#applyTapStatus({ name, namespace, uid }, totals, FIELD_MANAGER_RELAY)
  }

  // Server-side apply of `status` fields owned by `fieldManager` (and only those).
  async #applyTapStatus(
    metadata: { name: string; namespace: string; uid?: string },
    status: Record<string, unknown>,
    fieldManager: string,
  ): Promise<void> {
    await this.custom.patchNamespacedCustomObjectStatus(
      {
        ...resourceOf('LogTap'),
        namespace: metadata.namespace,
        name: metadata.name,
        body: { apiVersion: KINDS.LogTap.apiVersion, kind: KINDS.LogTap.kind, metadata, status },
        fieldManager,
        force: true,
      },
      setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply),
    )
  }

  // A JSON patch of a LogTap's status subresource (guarded by its own test ops).
  async jsonPatchTapStatus(namespace: string, name: string, ops: JsonPatchOp[]): Promise<void> {
    await this.custom.patchNamespacedCustomObjectStatus(
      { ...resourceOf('LogTap'), namespace, name, body: ops, fieldManager: FIELD_MANAGER_CONTROLLER },
      setHeaderOptions('Content-Type', PatchStrategy.JsonPatch),
    )
  }
}
