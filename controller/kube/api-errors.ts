// What a failed Kubernetes API call (a client-node ApiException) means, in one place.

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
