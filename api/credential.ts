// The per-tap ingest credential. The controller writes it into a Secret of the tap that the tap's
// Output references (fluentd sends it as HTTP Basic auth); the relay recomputes it to verify a
// posted chunk. Derived (HMAC of the tap's identity under a key only the controller+relay hold) so
// neither side needs to store or look it up, and a tap recreated under the same name (new uid)
// gets a new credential.
import { createHmac, timingSafeEqual } from 'node:crypto'

// The password of the Basic credential. Domain-separated from the legacy header value, which sat
// in Output specs readable by namespace editors: knowing that value does not give this one.
export function tapCredential(key: Uint8Array, namespace: string, name: string, uid: string): string {
  return createHmac('sha256', key).update(`basic/v1\0${namespace}/${name}/${uid}`).digest('base64url')
}

// The value of the legacy header (LEGACY_INGEST_TOKEN_HEADER), accepted only during an upgrade.
export function legacyTapCredential(key: Uint8Array, namespace: string, name: string, uid: string): string {
  return createHmac('sha256', key).update(`${namespace}/${name}/${uid}`).digest('base64url')
}

function sameSecret(want: string, presented: string | undefined): boolean {
  if (!presented) return false
  const w = Buffer.from(want)
  const got = Buffer.from(presented)
  return got.length === w.length && timingSafeEqual(got, w)
}

export function verifyTapCredential(
  key: Uint8Array,
  namespace: string,
  name: string,
  uid: string,
  presented: string | undefined,
): boolean {
  return sameSecret(tapCredential(key, namespace, name, uid), presented)
}

export function verifyLegacyTapCredential(
  key: Uint8Array,
  namespace: string,
  name: string,
  uid: string,
  presented: string | undefined,
): boolean {
  return sameSecret(legacyTapCredential(key, namespace, name, uid), presented)
}

// An `Authorization` header value for HTTP Basic auth, as fluentd's out_http sends it.
export function basicAuthorization(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`, 'utf8').toString('base64')}`
}

// The password of a Basic `Authorization` header value; undefined when it is not one.
export function basicPassword(header: string | undefined): string | undefined {
  const m = /^basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header ?? '')
  if (!m) return undefined
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8')
  const colon = decoded.indexOf(':')
  return colon < 0 ? undefined : decoded.slice(colon + 1)
}
