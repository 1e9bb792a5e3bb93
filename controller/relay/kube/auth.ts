// Stream authentication and authorization against the API server: TokenReview for who the token
// belongs to, SubjectAccessReview for `get` on the LogTap. Both answers are cached briefly
// (reconnect storms and many listeners must not become an API-server load), positive answers
// longer than negative ones so a fixed RoleBinding takes effect quickly; open streams ask again
// every accessRecheckMs (access.ts), so a revocation reaches them within that plus positiveTtlMs.
// Tokens are cached only as a SHA-256 digest and never logged.
import { createHash } from 'node:crypto'
import { AuthenticationV1Api, AuthorizationV1Api, type KubeConfig } from '@kubernetes/client-node'
import { GROUP, PLURAL } from '../../../api/logtap.ts'
import type { RelayAuth, RelayUser } from '../access.ts'

export interface K8sAuthOptions {
  positiveTtlMs?: number // default 10 s
  negativeTtlMs?: number // default 2 s
  maxEntries?: number // per cache, default 10_000 (oldest evicted first)
  audiences?: string[] // TokenReview audiences; default: the API server's
  now?: () => number
}

// A small TTL map with insertion-order eviction.
class TtlCache<V> {
  #m = new Map<string, { v: V; until: number }>()
  #max: number
  #now: () => number
  constructor(max: number, now: () => number) {
    this.#max = max
    this.#now = now
  }
  get(k: string): V | undefined {
    const e = this.#m.get(k)
    if (!e) return undefined
    if (e.until > this.#now()) return e.v
    this.#m.delete(k)
    return undefined
  }
  set(k: string, v: V, ttlMs: number): void {
    this.#m.delete(k)
    if (this.#m.size >= this.#max) this.#m.delete(this.#m.keys().next().value!)
    this.#m.set(k, { v, until: this.#now() + ttlMs })
  }
}

export function k8sAuth(kc: KubeConfig, o: K8sAuthOptions = {}): RelayAuth {
  const now = o.now ?? Date.now
  const pos = o.positiveTtlMs ?? 10_000
  const neg = o.negativeTtlMs ?? 2_000
  const max = o.maxEntries ?? 10_000
  const authn = kc.makeApiClient(AuthenticationV1Api)
  const authz = kc.makeApiClient(AuthorizationV1Api)
  const users = new TtlCache<RelayUser | null>(max, now)
  const grants = new TtlCache<boolean>(max, now)

  return {
    async authenticate(token) {
      const key = createHash('sha256').update(token).digest('base64url')
      const cached = users.get(key)
      if (cached !== undefined) return cached
      const review = await authn.createTokenReview({
        body: {
          apiVersion: 'authentication.k8s.io/v1',
          kind: 'TokenReview',
          spec: { token, ...(o.audiences ? { audiences: o.audiences } : {}) },
        },
      })
      const u = review.status?.user
      const exp = tokenExpiry(token)
      const user: RelayUser | null =
        review.status?.authenticated && u?.username
          ? {
              username: u.username,
              ...(u.uid ? { uid: u.uid } : {}),
              groups: u.groups ?? [],
              ...(u.extra ? { extra: u.extra } : {}),
              ...(exp !== undefined ? { expiresAt: exp } : {}),
            }
          : null
      // A positive answer is not kept past the token's own expiry.
      const ttl = user ? Math.min(pos, exp === undefined ? pos : exp - now()) : neg
      if (ttl > 0) users.set(key, user, ttl)
      return user
    },

    async mayGetTap(user, namespace, name) {
      const key = JSON.stringify([user.username, user.uid, user.groups, user.extra, namespace, name])
      const cached = grants.get(key)
      if (cached !== undefined) return cached
      const review = await authz.createSubjectAccessReview({
        body: {
          apiVersion: 'authorization.k8s.io/v1',
          kind: 'SubjectAccessReview',
          spec: {
            user: user.username,
            ...(user.uid ? { uid: user.uid } : {}),
            groups: user.groups,
            ...(user.extra ? { extra: user.extra } : {}),
            resourceAttributes: { group: GROUP, resource: PLURAL, verb: 'get', namespace, name },
          },
        },
      })
      const allowed = review.status?.allowed === true && review.status?.denied !== true
      grants.set(key, allowed, allowed ? pos : neg)
      return allowed
    },
  }
}

// The `exp` claim of a token that is a JWT (as ServiceAccount tokens are), in ms since the
// epoch; undefined for other tokens. Not verified here: it is only ever used to end access
// sooner (a token TokenReview accepted was signed by its issuer, claims and all), never to grant it.
function tokenExpiry(token: string): number | undefined {
  const parts = token.split('.')
  if (parts.length !== 3) return undefined
  try {
    const claims = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8')) as { exp?: unknown }
    return typeof claims.exp === 'number' && Number.isFinite(claims.exp) ? claims.exp * 1000 : undefined
  } catch {
    return undefined
  }
}
