// A validating JSON scanner over bytes that builds nothing. JSON.parse of every whole record
// was the ingest path's main cost (a full object graph per record, then garbage); the relay only
// needs to know that a value is valid JSON and where it ends (records.ts walks a record's top
// level with these pieces).
// The grammar is RFC 8259, as JSON.parse accepts it. Callers check UTF-8 separately
// (buffer.isUtf8) and pass a buffer ending where the value must end (reads past the end see
// `undefined`). Nesting deeper than MAX_DEPTH counts as invalid.

const MAX_DEPTH = 256

const QUOTE = 0x22
const BACKSLASH = 0x5c
const LBRACE = 0x7b
const RBRACE = 0x7d
const LBRACKET = 0x5b
const RBRACKET = 0x5d
const COMMA = 0x2c
const COLON = 0x3a
const MINUS = 0x2d
const PLUS = 0x2b
const DOT = 0x2e
const ZERO = 0x30
const NINE = 0x39

const TRUE = Buffer.from('true')
const FALSE = Buffer.from('false')
const NULL = Buffer.from('null')

// Characters allowed after a backslash (besides u): " \ / b f n r t
const SIMPLE_ESCAPE = new Uint8Array(256)
for (const c of '"\\/bfnrt') SIMPLE_ESCAPE[c.charCodeAt(0)] = 1
const HEX = new Uint8Array(256)
for (const c of '0123456789abcdefABCDEF') HEX[c.charCodeAt(0)] = 1

// Index of the first non-whitespace byte at or after i.
export function skipSpace(b: Buffer, i: number): number {
  for (;;) {
    const c = b[i]
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) return i
    i++
  }
}

// Index after the string token starting at i (b[i] is the opening quote), or -1.
export function scanString(b: Buffer, i: number): number {
  const end = b.length
  i++
  while (i < end) {
    const c = b[i]!
    if (c === QUOTE) return i + 1
    if (c === BACKSLASH) {
      const e = b[i + 1]
      if (e === 0x75) {
        if (!(HEX[b[i + 2]!] && HEX[b[i + 3]!] && HEX[b[i + 4]!] && HEX[b[i + 5]!])) return -1
        i += 6
      } else if (e !== undefined && SIMPLE_ESCAPE[e]) i += 2
      else return -1
    } else if (c < 0x20) return -1
    else i++
  }
  return -1
}

function digits(b: Buffer, i: number): number {
  const s = i
  for (;;) {
    const c = b[i]
    if (c === undefined || c < ZERO || c > NINE) break
    i++
  }
  return i > s ? i : -1
}

function scanNumber(b: Buffer, i: number): number {
  if (b[i] === MINUS) i++
  if (b[i] === ZERO) i++
  else {
    const c = b[i]
    if (c === undefined || c <= ZERO || c > NINE) return -1
    i = digits(b, i)
  }
  if (b[i] === DOT) {
    i = digits(b, i + 1)
    if (i < 0) return -1
  }
  const e = b[i]
  if (e === 0x65 || e === 0x45) {
    i++
    if (b[i] === PLUS || b[i] === MINUS) i++
    i = digits(b, i)
  }
  return i
}

function literal(b: Buffer, i: number, word: Buffer): number {
  for (let k = 0; k < word.length; k++) if (b[i + k] !== word[k]) return -1
  return i + word.length
}

// Index after the value starting at i (no leading whitespace), or -1 when invalid.
export function scanValue(b: Buffer, i: number, depth = 0): number {
  const c = b[i]
  if (c === QUOTE) return scanString(b, i)
  if (c === LBRACE) {
    if (depth >= MAX_DEPTH) return -1
    i = skipSpace(b, i + 1)
    if (b[i] === RBRACE) return i + 1
    for (;;) {
      if (b[i] !== QUOTE) return -1
      i = scanString(b, i)
      if (i < 0) return -1
      i = skipSpace(b, i)
      if (b[i] !== COLON) return -1
      const vs = skipSpace(b, i + 1)
      i = scanValue(b, vs, depth + 1)
      if (i < 0) return -1
      i = skipSpace(b, i)
      if (b[i] === COMMA) {
        i = skipSpace(b, i + 1)
        continue
      }
      return b[i] === RBRACE ? i + 1 : -1
    }
  }
  if (c === LBRACKET) {
    if (depth >= MAX_DEPTH) return -1
    i = skipSpace(b, i + 1)
    if (b[i] === RBRACKET) return i + 1
    for (;;) {
      i = scanValue(b, i, depth + 1)
      if (i < 0) return -1
      i = skipSpace(b, i)
      if (b[i] === COMMA) {
        i = skipSpace(b, i + 1)
        continue
      }
      return b[i] === RBRACKET ? i + 1 : -1
    }
  }
  if (c === undefined) return -1
  if (c === MINUS || (c >= ZERO && c <= NINE)) return scanNumber(b, i)
  if (c === 0x74) return literal(b, i, TRUE)
  if (c === 0x66) return literal(b, i, FALSE)
  if (c === 0x6e) return literal(b, i, NULL)
  return -1
}

// Whether the string token [s, e) decodes to `word` (ASCII). Escaped tokens are decoded by
// JSON.parse so an escape means exactly what it means there.
export function tokenIs(b: Buffer, s: number, e: number, word: string): boolean {
  for (let i = s + 1; i < e - 1; i++)
    if (b[i] === BACKSLASH) return JSON.parse(b.toString('utf8', s, e)) === word
  if (e - s - 2 !== word.length) return false
  for (let k = 0; k < word.length; k++) if (b[s + 1 + k] !== word.charCodeAt(k)) return false
  return true
}
