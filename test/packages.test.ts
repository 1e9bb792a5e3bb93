// The repository publishes two packages: k8stail (the root package.json) and the in-cluster program
// (controller/package.json, what the image installs). They are released together, so they carry
// one version, and a dependency both declare is pinned to one exact version: two pins would ship
// two copies of client-node or the contract's typebox, and the contract would be checked by one
// and used by the other.
import { readFileSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'

interface Manifest {
  name: string
  version: string
  engines?: { node?: string }
  dependencies?: Record<string, string>
}

const root = path.resolve(import.meta.dirname, '..')
const read = (file: string) => JSON.parse(readFileSync(path.join(root, file), 'utf8')) as Manifest
const cli = read('package.json')
const program = read('controller/package.json')

t.equal(program.version, cli.version, 'the program and k8stail carry one version')
t.equal(program.engines?.node, cli.engines?.node, 'and need the same Node')

const shared = Object.keys(cli.dependencies ?? {}).filter((dep) => dep in (program.dependencies ?? {}))
t.ok(shared.length > 0, `dependencies both declare: ${shared.join(', ')}`)
for (const dep of shared) {
  t.equal(program.dependencies?.[dep], cli.dependencies?.[dep], `${dep}: one pin for both`)
  t.match(cli.dependencies?.[dep], /^\d+\.\d+\.\d+$/, `${dep}: pinned exactly`)
}
