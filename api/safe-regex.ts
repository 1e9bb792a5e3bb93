// Regular expressions written by users and run by the relay on every record: only those that can
// run in linear time are accepted, so no pattern can make the relay backtrack for seconds.
//
// The rule is V8's own: a pattern is accepted when V8's linear-time engine (the RE2-like automaton
// behind the experimental `l` flag) can run it. That excludes backreferences, lookahead and
// lookbehind, and counted repetitions above {16}; everything else of JavaScript's syntax is
// allowed. The pattern is then run by the ordinary (fast, backtracking) engine, with V8's fallback
// to the linear engine when one match backtracks too much: `(a+)+$` costs microseconds, not hours.
// `(?i)` at the start makes the pattern case-insensitive for ASCII letters (the linear engine has
// no `i` flag, so letters are folded into classes: `(?i)err` runs as `[eE][rR][rR]`).
import v8 from 'node:v8'

export const MAX_REGEX_LENGTH = 256

let linearCheck: boolean | undefined
const LINEAR = 'l'

// Turns on V8's linear-time engine (for the check) and its fallback on excessive backtracking (for
// every regex of the process: results are the same, only the worst case changes). Once per process.
function enableLinearEngine(): boolean {
  if (linearCheck !== undefined) return linearCheck
  try {
    v8.setFlagsFromString('--enable-experimental-regexp-engine')
    v8.setFlagsFromString('--enable-experimental-regexp-engine-on-excessive-backtracks')
    // Throws when V8 has no linear engine (the `l` flag is unknown).
    new RegExp('a', LINEAR)
    linearCheck = true
  } catch {
    // A V8 without the engine: the length limit and the syntax check below still hold.
    linearCheck = false
  }
  return linearCheck
}

export interface RegexError {
  error: string
  at?: number // offset in the pattern as written
}

// The compiled pattern, or why it is refused (one line).
export function compileRegex(source: string): RegExp | RegexError {
  if (source.length === 0) return { error: 'empty regular expression' }
  if (source.length > MAX_REGEX_LENGTH)
    return { error: `regular expression longer than ${MAX_REGEX_LENGTH} characters`, at: MAX_REGEX_LENGTH }
  const insensitive = source.startsWith('(?i)')
  const pattern = insensitive ? foldCase(source.slice(4)) : source
  if (pattern.length === 0) return { error: 'empty regular expression' }
  let re: RegExp
  try {
    re = new RegExp(pattern)
  } catch (err) {
    return { error: `invalid regular expression: ${syntaxReason(err)}` }
  }
  if (enableLinearEngine()) {
    try {
      new RegExp(pattern, LINEAR)
    } catch {
      return {
        error:
          'regular expression needs backtracking: backreferences, lookahead/lookbehind and counted repetitions above {16} are not allowed',
      }
    }
  }
  return re
}

function syntaxReason(err: unknown): string {
  const m = (err as Error).message
  // "Invalid regular expression: /(/: Unterminated group" → "Unterminated group"
  const at = m.lastIndexOf(': ')
  return at >= 0 ? m.slice(at + 2) : m
}

const HEX = /^[0-9a-fA-F]$/

// ASCII letters of the pattern (outside escapes, group names and quantifiers) made case-insensitive:
// `a` → `[aA]` outside a class, `a` → `aA` and `a-z` → `a-zA-Z` inside one.
function foldCase(p: string): string {
  let out = ''
  let inClass = false
  let i = 0
  const lower = (c: string) => c >= 'a' && c <= 'z'
  const upper = (c: string) => c >= 'A' && c <= 'Z'
  const swap = (c: string) => (lower(c) ? c.toUpperCase() : c.toLowerCase())
  while (i < p.length) {
    const c = p[i]!
    if (c === '\\') {
      const e = p[i + 1] ?? ''
      let len = 2
      if ((e === 'u' || e === 'p' || e === 'P') && p[i + 2] === '{') len = p.indexOf('}', i) + 1 - i
      else if (e === 'k' && p[i + 2] === '<') len = p.indexOf('>', i) + 1 - i
      else if (e === 'u' && [...p.slice(i + 2, i + 6)].every((h) => HEX.test(h))) len = 6
      else if (e === 'x' && [...p.slice(i + 2, i + 4)].every((h) => HEX.test(h))) len = 4
      else if (e === 'c') len = 3
      if (len <= 0) len = p.length - i
      out += p.slice(i, i + len)
      i += len
      continue
    }
    if (inClass) {
      if (c === ']') inClass = false
      const d = p[i + 2]
      if ((lower(c) || upper(c)) && p[i + 1] === '-' && d && lower(c) === lower(d) && upper(c) === upper(d)) {
        out += `${c}-${d}${swap(c)}-${swap(d)}`
        i += 3
        continue
      }
      out += lower(c) || upper(c) ? `${c}${swap(c)}` : c
      i++
      continue
    }
    if (c === '[') {
      inClass = true
      out += c
      // A `]` right after `[` or `[^` is a literal in some flavours; in JavaScript it ends the class.
      if (p[i + 1] === '^') {
        out += '^'
        i++
      }
      i++
      continue
    }
    if (c === '(' && p[i + 1] === '?' && p[i + 2] === '<' && p[i + 3] !== '=' && p[i + 3] !== '!') {
      const end = p.indexOf('>', i)
      const len = end < 0 ? p.length - i : end + 1 - i
      out += p.slice(i, i + len) // a group's name is not folded
      i += len
      continue
    }
    if (c === '{') {
      const end = p.indexOf('}', i)
      if (end > i && /^\{\d*(,\d*)?\}$/.test(p.slice(i, end + 1))) {
        out += p.slice(i, end + 1)
        i = end + 1
        continue
      }
    }
    out += lower(c) || upper(c) ? `[${c}${swap(c)}]` : c
    i++
  }
  return out
}
