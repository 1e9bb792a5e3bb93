// Who is streaming and how the relay asks whether they may: the identity TokenReview returns and
// the two questions asked of the API server (an adapter in production: kube/auth.ts).

export interface RelayUser {
  username: string
  uid?: string
  groups: string[]
  extra?: Record<string, string[]> // TokenReview extras, passed on to SubjectAccessReview
  expiresAt?: number // when the presented token expires (ms since the epoch), if it says so
}

export interface RelayAuth {
  // TokenReview: who presents this token (null: not authenticated).
  authenticate(token: string): Promise<RelayUser | null>
  // SubjectAccessReview: may this user `get` the LogTap namespace/name?
  mayGetTap(user: RelayUser, namespace: string, name: string): Promise<boolean>
}

// Why an open stream's access ended, with the close code and reason its client is given.
export interface AccessEnded {
  why: 'token-expired' | 'unauthenticated' | 'forbidden'
  code: number
  reason: string
}

export interface AccessWatch {
  auth: RelayAuth
  token: string
  user: RelayUser
  namespace: string
  name: string
  intervalMs: number // checked again at least this often
  expiresAt: number | undefined // the user's token's expiry (RelayUser.expiresAt)
  closeCodes: { unauthorized: number; forbidden: number; tokenExpired: number }
  now?: () => number
  onError?: (err: Error) => void // a check that could not be made (the stream stays open)
}

// Pure: the close reason for an access end, within WebSocket's 123-byte limit.
function closeReason(text: string): string {
  const b = Buffer.from(text)
  if (b.length <= 123) return text
  let cut = 120
  while (cut > 0 && (b[cut]! & 0xc0) === 0x80) cut--
  return `${b.subarray(0, cut).toString('utf8')}...`
}

// Checks an open stream's access again while it lasts: at the token's stated expiry, and every
// intervalMs by TokenReview and SubjectAccessReview (through `auth`, whose answers may be cached
// briefly). Calls `ended` once when access is gone. An API error leaves the stream open until the
// next check. Returns a function that stops watching.
export function watchAccess(w: AccessWatch, ended: (e: AccessEnded) => void): () => void {
  const now = w.now ?? Date.now
  let timer: NodeJS.Timeout | undefined
  let stopped = false
  const end = (e: AccessEnded): void => {
    if (stopped) return
    stopped = true
    ended(e)
  }
  const expired = (): AccessEnded => ({
    why: 'token-expired',
    code: w.closeCodes.tokenExpired,
    reason: closeReason(`token expired at ${new Date(w.expiresAt!).toISOString()}`),
  })
  const schedule = (): void => {
    if (stopped) return
    const untilExpiry = w.expiresAt === undefined ? Number.POSITIVE_INFINITY : w.expiresAt - now()
    timer = setTimeout(check, Math.max(0, Math.min(w.intervalMs, untilExpiry)))
    timer.unref()
  }
  const check = async (): Promise<void> => {
    if (stopped) return
    if (w.expiresAt !== undefined && now() >= w.expiresAt) return end(expired())
    try {
      const user = await w.auth.authenticate(w.token)
      if (!user)
        return end({
          why: 'unauthenticated',
          code: w.closeCodes.unauthorized,
          reason: 'token no longer accepted (revoked, or its ServiceAccount was deleted)',
        })
      if (!(await w.auth.mayGetTap(user, w.namespace, w.name)))
        return end({
          why: 'forbidden',
          code: w.closeCodes.forbidden,
          reason: closeReason(
            `access revoked: ${user.username} may no longer get LogTap ${w.namespace}/${w.name}`,
          ),
        })
    } catch (err) {
      w.onError?.(err as Error)
    }
    schedule()
  }
  schedule()
  return () => {
    stopped = true
    clearTimeout(timer)
  }
}
