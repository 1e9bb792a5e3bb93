// The syntax of field paths and `where` expressions (the language is described in selection.ts).
// A hand-written scanner: every error says what was expected and where (an offset into the text).

// A path into a JSON record: object keys from the top. Arrays are not descended.
export interface FieldPath {
  readonly keys: readonly string[]
  readonly text: string // canonical spelling: a.b["app.kubernetes.io/name"]
}

export type Scalar = string | number | boolean | null

export type Predicate =
  | { readonly kind: 'exists'; readonly path: FieldPath; readonly negate: boolean } // path / !path
  | {
      readonly kind: 'equals' // == / != (one value), in / not in (a set)
      readonly path: FieldPath
      readonly values: readonly Scalar[]
      readonly negate: boolean
      readonly set: boolean // written as `in [...]`
    }
  | {
      readonly kind: 'regex' // =~ / !~ (string values only)
      readonly path: FieldPath
      readonly source: string
      readonly regex: RegExp
      readonly negate: boolean
    }

const MAX_PATH_KEYS = 16
const MAX_PREDICATES = 32
const MAX_SET_VALUES = 256

export class SyntaxFault extends Error {
  readonly at: number
  constructor(reason: string, at: number) {
    super(reason)
    this.at = at
  }
}

// Characters of an unquoted key: letters, digits and _ - / @ $ (a key with a dot, a space or
// anything else is written ["…"]).
const KEY_CHAR = /[A-Za-z0-9_\-/@$]/
const PLAIN_KEY = /^[A-Za-z0-9_\-/@$]+$/

function pathText(keys: readonly string[]): string {
  let s = ''
  for (const k of keys) {
    if (PLAIN_KEY.test(k)) s += s === '' ? k : `.${k}`
    else s += `[${JSON.stringify(k)}]`
  }
  return s
}

function fieldPath(keys: readonly string[]): FieldPath {
  return { keys: Object.freeze([...keys]), text: pathText(keys) }
}

class Scanner {
  readonly s: string
  i = 0

  constructor(s: string) {
    this.s = s
  }

  ws(): void {
    while (this.i < this.s.length && /\s/.test(this.s[this.i]!)) this.i++
  }

  end(): boolean {
    return this.i >= this.s.length
  }

  peek(n = 1): string {
    return this.s.slice(this.i, this.i + n)
  }

  fail(reason: string, at = this.i): never {
    throw new SyntaxFault(reason, at)
  }

  // A quoted string: "…" with JSON's escapes, or '…' where only \' and \\ are escapes.
  quoted(): string {
    const start = this.i
    const q = this.s[this.i]
    if (q === '"') {
      let j = this.i + 1
      while (j < this.s.length && this.s[j] !== '"') j += this.s[j] === '\\' ? 2 : 1
      if (j >= this.s.length) this.fail('unterminated string', start)
      this.i = j + 1
      try {
        return JSON.parse(this.s.slice(start, j + 1)) as string
      } catch {
        return this.fail('invalid escape in string', start)
      }
    }
    let out = ''
    let j = this.i + 1
    for (;;) {
      if (j >= this.s.length) this.fail('unterminated string', start)
      const c = this.s[j]!
      if (c === "'") break
      if (c === '\\' && (this.s[j + 1] === "'" || this.s[j + 1] === '\\')) {
        out += this.s[j + 1]
        j += 2
      } else {
        out += c
        j++
      }
    }
    this.i = j + 1
    return out
  }

  path(): FieldPath {
    const start = this.i
    const keys: string[] = []
    for (;;) {
      const c = this.s[this.i]
      if (c === '[') {
        this.i++
        this.ws()
        if (this.s[this.i] !== '"' && this.s[this.i] !== "'") this.fail('expected a quoted key after [')
        const k = this.quoted()
        if (k === '') this.fail('empty key', this.i - 2)
        keys.push(k)
        this.ws()
        if (this.s[this.i] !== ']') this.fail('expected ] after the quoted key')
        this.i++
      } else if (c !== undefined && KEY_CHAR.test(c) && (keys.length === 0 || this.s[this.i - 1] === '.')) {
        const from = this.i
        while (this.i < this.s.length && KEY_CHAR.test(this.s[this.i]!)) this.i++
        keys.push(this.s.slice(from, this.i))
      } else if (keys.length === 0) {
        this.fail('expected a field path (e.g. level, kubernetes.pod_name, kubernetes.labels["app"])')
      } else {
        this.fail('expected a key after "."')
      }
      if (keys.length > MAX_PATH_KEYS) this.fail(`a path has at most ${MAX_PATH_KEYS} keys`, start)
      // A path goes on with .key or ["key"].
      if (this.s[this.i] === '.') {
        this.i++
        if (this.s[this.i] === '[') this.fail('expected a key after "." (write a["b"], not a.["b"])')
        continue
      }
      if (this.s[this.i] === '[') continue
      return fieldPath(keys)
    }
  }

  // A value: a quoted string, a number, true, false, null, or a bare word (a string).
  value(): Scalar {
    const c = this.s[this.i]
    if (c === '"' || c === "'") return this.quoted()
    const start = this.i
    while (this.i < this.s.length && !/[\s,\]["']/.test(this.s[this.i]!) && this.peek(2) !== '&&') this.i++
    const word = this.s.slice(start, this.i)
    if (word === '') this.fail('expected a value (a "string", a number, true, false or null)')
    if (word === 'true') return true
    if (word === 'false') return false
    if (word === 'null') return null
    if (/^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$/.test(word)) return Number(word)
    return word
  }

  // The raw text of a regex operand: quoted, or a bare word.
  pattern(): string {
    const c = this.s[this.i]
    if (c === '"' || c === "'") return this.quoted()
    const start = this.i
    while (this.i < this.s.length && !/\s/.test(this.s[this.i]!) && this.peek(2) !== '&&') this.i++
    if (this.i === start) this.fail('expected a regular expression')
    return this.s.slice(start, this.i)
  }
}

// `a.b, c["x.y"]`: one or more paths separated by commas.
export function parsePaths(text: string): FieldPath[] {
  const sc: Scanner = new Scanner(text)
  const out: FieldPath[] = []
  for (;;) {
    sc.ws()
    out.push(sc.path())
    sc.ws()
    if (sc.end()) return out
    if (sc.s[sc.i] !== ',') sc.fail('expected "," between fields')
    sc.i++
  }
}

// One path, nothing else.
export function parsePath(text: string): FieldPath {
  const sc: Scanner = new Scanner(text)
  sc.ws()
  const p = sc.path()
  sc.ws()
  if (!sc.end()) sc.fail('unexpected text after the field path')
  return p
}

// Predicates joined by &&. `compile` turns a regex operand into a RegExp, or returns why not (the
// error is reported at the operand).
export function parseWhere(
  text: string,
  compile: (source: string) => RegExp | { error: string; at?: number },
): Predicate[] {
  const sc: Scanner = new Scanner(text)
  const predicates: Predicate[] = []
  for (;;) {
    sc.ws()
    const startOfPredicate = sc.i
    let missing = false
    if (sc.s[sc.i] === '!') {
      missing = true
      sc.i++
      sc.ws()
    }
    const path = sc.path()
    sc.ws()
    if (sc.end() || sc.peek(2) === '&&') {
      predicates.push({ kind: 'exists', path, negate: missing })
    } else {
      if (missing) sc.fail('!path stands alone (the field is missing); compare with != or not in instead')
      const opAt = sc.i
      let op: string
      if (['==', '!=', '=~', '!~'].includes(sc.peek(2))) {
        op = sc.peek(2)
        sc.i += 2
      } else if (/^in\b/.test(sc.s.slice(sc.i)) || /^in\[/.test(sc.s.slice(sc.i))) {
        op = 'in'
        sc.i += 2
      } else if (/^not\s+in\b/.test(sc.s.slice(sc.i)) || /^not\s+in\[/.test(sc.s.slice(sc.i))) {
        op = 'not in'
        sc.i += /^not\s+in/.exec(sc.s.slice(sc.i))![0].length
      } else if (sc.s[sc.i] === '|') {
        sc.fail('there is no ||: use "in [a, b]" or a regex alternation')
      } else {
        sc.fail(
          'expected an operator: ==, !=, =~, !~, in or not in (or && after a bare field, meaning it exists)',
        )
      }
      sc.ws()
      if (op === '=~' || op === '!~') {
        const at = sc.i
        const quoted = sc.s[at] === '"' || sc.s[at] === "'"
        const source = sc.pattern()
        const regex = compile(source)
        // An offset inside the pattern points into the text only when it was written unquoted.
        if (!(regex instanceof RegExp)) sc.fail(regex.error, at + (quoted ? 0 : (regex.at ?? 0)))
        predicates.push({ kind: 'regex', path, source, regex, negate: op === '!~' })
      } else if (op === '==' || op === '!=') {
        if (sc.end()) sc.fail(`expected a value after ${op}`)
        predicates.push({ kind: 'equals', path, values: [sc.value()], negate: op === '!=', set: false })
      } else {
        if (sc.s[sc.i] !== '[') sc.fail(`expected [ after ${op} (e.g. level ${op} [error, warn])`)
        sc.i++
        const values: Scalar[] = []
        for (;;) {
          sc.ws()
          if (sc.s[sc.i] === ']' && values.length > 0) sc.fail('expected a value after ","')
          values.push(sc.value())
          if (values.length > MAX_SET_VALUES) sc.fail(`a set has at most ${MAX_SET_VALUES} values`, opAt)
          sc.ws()
          if (sc.s[sc.i] === ',') {
            sc.i++
            continue
          }
          if (sc.s[sc.i] === ']') {
            sc.i++
            break
          }
          sc.fail(sc.end() ? 'unterminated set: expected ]' : 'expected "," or "]" in the set')
        }
        predicates.push({ kind: 'equals', path, values, negate: op === 'not in', set: true })
      }
    }
    if (predicates.length > MAX_PREDICATES) sc.fail(`at most ${MAX_PREDICATES} predicates`, startOfPredicate)
    sc.ws()
    if (sc.end()) return predicates
    if (sc.peek(2) !== '&&')
      sc.fail(
        sc.s[sc.i] === '|'
          ? 'there is no ||: use "in [a, b]" or a regex alternation'
          : 'expected && or the end',
      )
    sc.i += 2
    sc.ws()
    if (sc.end()) sc.fail('expected a predicate after &&')
  }
}

// Canonical text of a value and of a predicate (for hello, kubectl and error messages).
function scalarText(v: Scalar): string {
  return typeof v === 'string' ? JSON.stringify(v) : String(v)
}

export function predicateText(p: Predicate): string {
  switch (p.kind) {
    case 'exists':
      return `${p.negate ? '!' : ''}${p.path.text}`
    case 'regex':
      return `${p.path.text} ${p.negate ? '!~' : '=~'} ${JSON.stringify(p.source)}`
    case 'equals':
      if (!p.set) return `${p.path.text} ${p.negate ? '!=' : '=='} ${scalarText(p.values[0]!)}`
      return `${p.path.text} ${p.negate ? 'not in' : 'in'} [${p.values.map(scalarText).join(', ')}]`
  }
}
