import type { OutputMode } from '../options.ts'
import type { OutputBatch } from './batch.ts'
import { jsonPrinter } from './json.ts'
import { prettyPrinter } from './pretty.ts'
import { rawPrinter } from './raw.ts'
import type { Printer, PrinterOptions } from './types.ts'

export { OutputBatch } from './batch.ts'
export type { Printer, PrinterOptions, Sink } from './types.ts'

export function createPrinter(mode: OutputMode, out: OutputBatch, o: PrinterOptions): Printer {
  switch (mode) {
    case 'raw':
      return rawPrinter(out, o)
    case 'json':
      return jsonPrinter(out, o)
    case 'pretty':
      return prettyPrinter(out, o)
  }
}

// Colour only for a terminal, and never when NO_COLOR is set (https://no-color.org) or TERM=dumb.
export function useColor(isTTY: boolean, env: Record<string, string | undefined>): boolean {
  if (!isTTY) return false
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false
  if (env.FORCE_COLOR === '0') return false
  return env.TERM !== 'dumb'
}
