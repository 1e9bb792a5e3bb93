// The selection's limits: enforced by parseSelection (selection.ts) and declared in the LogTap CRD's
// schema (selection-schema.ts), so both say the same.
export { MAX_REGEX_LENGTH } from './safe-regex.ts'
export const MAX_WHERE_LENGTH = 2048
export const MAX_FIELDS = 32
export const MAX_PATH_LENGTH = 512
// The whole selection as JSON (what travels in a header).
export const MAX_SELECTION_BYTES = 8192
export const MIN_SAMPLE_PERCENT = 0.001
export const MAX_POD_RATE = 1_000_000
