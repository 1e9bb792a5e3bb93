// The bench runs the relay as the image does: compiled to JavaScript by tsc (the Dockerfile's
// `npm run build`), not through Node's type stripping, which would add its own memory (~30 MB of
// RSS) to every figure. Only the bench's relay entry point and what it imports are emitted, without
// type checking (`npm run lint` does that), into node_modules/.cache so that bare imports resolve
// to the repository's node_modules.
import { execFileSync } from 'node:child_process'
import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import path from 'node:path'

// Compiles `entry` (a path inside the repository) and returns the path of its emitted .js file.
// `cache` names the folder under node_modules/.cache (one per user, so that a test and a bench
// running at once do not remove each other's output).
export function buildForBench(root: string, entry: string, cache = 'log-socket-bench'): string {
  const dir = path.join(root, 'node_modules', '.cache', cache)
  const out = path.join(dir, 'out')
  rmSync(out, { recursive: true, force: true })
  mkdirSync(dir, { recursive: true })
  const config = path.join(dir, 'tsconfig.json')
  writeFileSync(
    config,
    JSON.stringify({
      extends: path.join(root, 'tsconfig.build.json'),
      compilerOptions: { outDir: out, rootDir: root, noCheck: true, sourceMap: false },
      include: [],
      files: [path.join(root, entry)],
    }),
  )
  execFileSync(path.join(root, 'node_modules', '.bin', 'tsc'), ['-p', config], { stdio: 'inherit' })
  return path.join(out, entry.replace(/\.ts$/, '.js'))
}
