// Names and labels of the objects a LogTap owns. Names are derived from the tap's name only, so
// every reconcile (and every restart) computes the same ones; too-long names keep a readable
// prefix and end in a hash of the full name, so two taps never map to the same name.
import { createHash } from 'node:crypto'

const OBJECT_PREFIX = 'logtap-'
// Kept within 63 characters so the names also fit label values and fluentd plugin ids comfortably.
const MAX_NAME = 63
const HASH_LEN = 10

function hash(s: string): string {
  return createHash('sha256').update(s).digest('hex').slice(0, HASH_LEN)
}

function shorten(s: string, max: number): string {
  if (s.length <= max) return s
  const head = s.slice(0, max - HASH_LEN - 1).replace(/[-.]+$/, '')
  return `${head}-${hash(s)}`
}

// The Output/ClusterOutput, and in mirror mode the Flow/ClusterFlow copy, of tap `tapName`.
export function tapObjectName(tapName: string): string {
  return shorten(`${OBJECT_PREFIX}${tapName}`, MAX_NAME)
}

// A label value (at most 63 characters) identifying the tap by name.
export function tapLabelValue(tapName: string): string {
  return shorten(tapName, 63)
}

// Output refs the controller may have written: the sweep only ever removes refs of this shape.
export function looksLikeTapObjectName(name: string): boolean {
  return name.startsWith(OBJECT_PREFIX)
}

// Work-queue keys: namespace/name of a LogTap.
export function keyOf(namespace: string, name: string): string {
  return `${namespace}/${name}`
}

export function keyOfObject(o: { metadata: { namespace?: string; name?: string } }): string {
  return keyOf(o.metadata.namespace ?? '', o.metadata.name ?? '')
}

export function parseKey(key: string): { namespace: string; name: string } {
  const i = key.indexOf('/')
  if (i <= 0 || i === key.length - 1)
    throw new Error(`invalid key ${JSON.stringify(key)}: want namespace/name`)
  return { namespace: key.slice(0, i), name: key.slice(i + 1) }
}
