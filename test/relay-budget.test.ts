// The relay's memory budget: where it comes from (the --memory-budget flag, else the container's
// memory limit from cgroup v2 or v1) and how the relay's buffers are derived from it.
import t from 'tap'
import { parseConfig } from '../controller/program/config.ts'
import {
  containerMemoryLimit,
  DEFAULT_BUDGET,
  defaultMemoryBudget,
  deriveBudget,
  MiB,
  PROGRAM_RESERVE,
  parseByteSize,
} from '../controller/relay/budget.ts'
import { startTestRelay } from './support/relay.ts'

const files = (m: Record<string, string>) => (p: string) => m[p]

t.test('the container memory limit, from cgroup v2 or v1', async (t) => {
  t.equal(containerMemoryLimit(files({ '/sys/fs/cgroup/memory.max': '536870912\n' })), 512 * MiB, 'v2')
  t.equal(containerMemoryLimit(files({ '/sys/fs/cgroup/memory.max': 'max\n' })), undefined, 'v2 unlimited')
  t.equal(
    containerMemoryLimit(files({ '/sys/fs/cgroup/memory/memory.limit_in_bytes': '268435456\n' })),
    256 * MiB,
    'v1',
  )
  t.equal(
    containerMemoryLimit(files({ '/sys/fs/cgroup/memory/memory.limit_in_bytes': '9223372036854771712' })),
    undefined,
    'v1 unlimited',
  )
  t.equal(containerMemoryLimit(files({})), undefined, 'no cgroup files')
  t.equal(defaultMemoryBudget(512 * MiB), Math.floor(512 * MiB * 0.9), '90% of the limit')
  t.equal(defaultMemoryBudget(undefined), DEFAULT_BUDGET, 'no limit')
})

t.test('sizes as Kubernetes quantities or bytes', async (t) => {
  t.equal(parseByteSize('512Mi'), 512 * MiB)
  t.equal(parseByteSize('1Gi'), 1024 * MiB)
  t.equal(parseByteSize('400M'), 400e6)
  t.equal(parseByteSize('1.5Gi'), 1536 * MiB)
  t.equal(parseByteSize('1048576'), MiB)
  for (const bad of ['', 'lots', '-1Mi', '12Qi', '1e9']) t.equal(parseByteSize(bad), undefined, bad)
})

t.test('the pools are shares of what the program itself does not need', async (t) => {
  const b = deriveBudget(460 * MiB)
  const pools = 460 * MiB - PROGRAM_RESERVE
  t.ok(Math.abs(b.rings - pools * 0.4) < 1 && Math.abs(b.inflate - pools * 0.2) < 1)
  t.ok(b.rings + b.listeners + b.inflight + b.inflate <= pools)
  const small = deriveBudget(128 * MiB)
  t.ok(
    small.rings + small.listeners + small.inflight + small.inflate <= 32 * MiB + 4,
    'a quarter of a small budget',
  )
})

t.test('--memory-budget, and the relay limits it caps', async (t) => {
  const cfg = parseConfig(['--memory-budget', '300Mi'], {})
  t.equal(cfg !== 'help' && cfg.memoryBudget, 300 * MiB)
  t.throws(() => parseConfig(['--memory-budget', 'lots'], {}), /--memory-budget must be a size/)
  t.throws(() => parseConfig(['--memory-budget', '1Mi'], {}), /invalid memoryBudget/)
  const r = await startTestRelay({ memoryBudget: 192 * MiB })
  t.teardown(() => r.close())
  const { limits, memory } = r.relay.context
  t.equal(memory.budget.total, 192 * MiB)
  t.ok(
    limits.maxDecompressedBytes <= memory.budget.inflate / 2,
    'one gzip body may use half the inflate pool',
  )
  t.ok(limits.maxBodyBytes <= memory.budget.inflight / 2, 'one body may use half the in-flight pool')
  const metrics = await r.registry.metrics()
  t.match(metrics, `log_socket_memory_budget_bytes{pool="total"} ${192 * MiB}`)
  t.match(metrics, /log_socket_memory_pool_bytes\{pool="rings"\} 0/)
})
