import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { defineCommand } from 'citty'

// The package version, found from this file both in the source tree and in dist/.
export function packageVersion(): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  for (let i = 0; i < 5; i++) {
    const file = join(dir, 'package.json')
    if (existsSync(file)) {
      const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string }
      if (pkg.name === 'log-socket' && pkg.version) return pkg.version
    }
    dir = dirname(dir)
  }
  return 'unknown'
}

export const versionCommand = defineCommand({
  meta: { name: 'version', description: 'Print the k8stail version' },
  run({ data }) {
    const out = (data as { stdout?: { write(s: string): unknown } } | undefined)?.stdout ?? process.stdout
    out.write(`k8stail ${packageVersion()}\n`)
    return 0
  },
})
