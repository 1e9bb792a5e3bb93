// The shared state of one relay instance, handed to each of its servers.

import { DEFAULT_BUDGET, deriveBudget } from './budget.ts'
import { Hub } from './hub.ts'
import { createRelayMemory, type RelayMemory } from './memory.ts'
import { createRelayMetrics, type RelayMetrics } from './metrics.ts'
import { limitsOf, type RelayLimits, type RelayOptions } from './options.ts'

export interface RelayContext {
  o: RelayOptions
  limits: RelayLimits // as configured, then capped by the memory budget
  metrics: RelayMetrics
  memory: RelayMemory
  hub: Hub
  draining: boolean // set when shutdown starts: /readyz fails, ingest answers close their connections
  closing: boolean // set once the shutdown delay is over: new streams are refused
}

export function createRelayContext(o: RelayOptions): RelayContext {
  const budget = deriveBudget(o.memoryBudget ?? DEFAULT_BUDGET)
  const memory = createRelayMemory(budget)
  const configured = limitsOf(o)
  // One body may use at most half of its pool, so one poster cannot starve the others.
  const limits: RelayLimits = {
    ...configured,
    maxBodyBytes: Math.min(configured.maxBodyBytes, Math.floor(budget.inflight / 2)),
    maxDecompressedBytes: Math.min(configured.maxDecompressedBytes, Math.floor(budget.inflate / 2)),
    queueBytes: Math.min(configured.queueBytes, budget.rings),
    replayBytes: Math.min(configured.replayBytes, budget.rings),
  }
  const metrics = createRelayMetrics(o.registry)
  metrics.watchMemory(budget, {
    rings: memory.frames.bytes,
    listeners: memory.listeners,
    inflight: memory.inflight,
    inflate: memory.inflate,
  })
  const hub = new Hub({
    metrics,
    limits,
    memory,
    ...(o.onStatus ? { onStatus: o.onStatus } : {}),
    ...(o.replicas ? { replicas: o.replicas } : {}),
  })
  return { o, limits, metrics, memory, hub, draining: false, closing: false }
}
