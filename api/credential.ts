// The per-tap ingest credential. The controller writes it into the tap's Output as a header;
// the relay recomputes it to verify a posted chunk. Derived (HMAC of the tap's identity under a
// key only the controller+relay hold) so neither side needs to store or look it up, and a tap
// recreated under the same name (new uid) gets a new credential.
import { createHmac, timingSafeEqual } from 'node:crypto'

export function tapCredential(key: Uint8Array, namespace: string, name: string, uid: string): string {
  return createHmac('sha256', key).update(`${namespace}/${name}/${uid}`).digest('base64url')
}

export function verifyTapCredential(
  key: Uint8Array,
  namespace: string,
  name: string,
  uid: string,
  presented: string | undefined,
): boolean {
  if (!presented) return false
  const want = Buffer.from(tapCredential(key, namespace, name, uid))
  const got = Buffer.from(presented)
  return got.length === want.length && timingSafeEqual(got, want)
}
