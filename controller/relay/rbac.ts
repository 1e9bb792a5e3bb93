// Per-record RBAC, with exactly the semantics of the original log-socket (its listener.go):
// the rules travel inside each record as pod labels, `kubernetes.labels["rbac/<key>"]`, with the
// value `allow` or `deny` (exactly; any other value is ignored).
//
// Who a rule names: the authenticated username is mapped to a rule key by dropping up to two
// leading `<prefix>:` segments and replacing the remaining `:` with `_`:
//   system:serviceaccount:<ns>:<sa>  → <ns>_<sa>   (label rbac/<ns>_<sa>)
//   alice                            → alice       (plain users keep their name)
//   oidc:alice                       → alice       (one issuer prefix dropped)
//   oidc:corp:alice@example.com      → alice@example.com
//   a:b:c:d                          → c_d
// Groups are not consulted (the original ignores them). Because label keys allow only
// [A-Za-z0-9._-] after the `rbac/` prefix, identities with other characters (e.g. `@`) cannot
// be named by a rule and fall through to `rbac/policy`; that is the original's behaviour, kept
// so existing pod labels mean the same thing here.
//
// Decision: the rule for the user's key if present (allow iff `allow`), else `rbac/policy` if
// present (allow iff `allow`), else deny. Records without kubernetes metadata are denied.
// A username that maps to `policy` matches `rbac/policy` first, as in the original.

type Verdict = 'allow' | 'deny'

// The rbac rules one record carries: rule key (label key without `rbac/`) → verdict.
// `null` when the record has none (then every user is denied).
export type Rules = Map<string, Verdict> | null

const RBAC_PREFIX = 'rbac/'
const POLICY_KEY = 'policy'

export function ruleKey(username: string): string {
  let rest = username
  for (let i = 0; i < 2; i++) {
    const colon = rest.indexOf(':')
    if (colon < 0) break
    rest = rest.slice(colon + 1)
  }
  return rest.replaceAll(':', '_')
}

// Collects the rbac rules from a record's `kubernetes.labels` value (any JSON value accepted:
// non-object labels and non-string values are ignored, never an error).
export function rulesFromLabels(labels: unknown): Rules {
  if (labels === null || typeof labels !== 'object' || Array.isArray(labels)) return null
  let rules: Map<string, Verdict> | null = null
  for (const [k, v] of Object.entries(labels as Record<string, unknown>)) {
    if (!k.startsWith(RBAC_PREFIX)) continue
    if (v !== 'allow' && v !== 'deny') continue
    rules ??= new Map()
    rules.set(k.slice(RBAC_PREFIX.length), v)
  }
  return rules
}

export function allowed(rules: Rules, key: string): boolean {
  if (rules === null) return false
  const own = rules.get(key)
  if (own !== undefined) return own === 'allow'
  return rules.get(POLICY_KEY) === 'allow'
}

// The text of a denied notice: the original's wording, now carried in a JSON string field.
export function deniedText(pod: string, username: string): string {
  return `Permission denied to access ${pod} logs for ${username}`
}
