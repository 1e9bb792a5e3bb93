// The Node/V8 flags the relay runs with in production, read from the Dockerfile's ENTRYPOINT
// (`["node", <flags…>, <script>]`), so the bench measures the relay as it is deployed and the
// flags live in one place.
import { readFileSync } from 'node:fs'

export function productionNodeFlags(dockerfile: string): string[] {
  const line = readFileSync(dockerfile, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('ENTRYPOINT '))
  if (!line) throw new Error(`${dockerfile}: no ENTRYPOINT`)
  const argv = JSON.parse(line.slice('ENTRYPOINT '.length)) as unknown
  if (!Array.isArray(argv) || argv[0] !== 'node' || !argv.every((a) => typeof a === 'string'))
    throw new Error(`${dockerfile}: ENTRYPOINT is not ["node", …]`)
  const flags: string[] = []
  for (const a of argv.slice(1) as string[]) {
    if (!a.startsWith('--')) break
    flags.push(a)
  }
  return flags
}
