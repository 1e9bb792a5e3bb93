// The shared state of one relay instance, handed to each of its servers.

import { Hub } from './hub.ts'
import { createRelayMetrics, type RelayMetrics } from './metrics.ts'
import { limitsOf, type RelayLimits, type RelayOptions } from './options.ts'

export interface RelayContext {
  o: RelayOptions
  limits: RelayLimits
  metrics: RelayMetrics
  hub: Hub
  closing: boolean // set when shutdown starts: /readyz fails and new streams are refused
}

export function createRelayContext(o: RelayOptions): RelayContext {
  const limits = limitsOf(o)
  const metrics = createRelayMetrics(o.registry)
  const hub = new Hub({ metrics, limits, ...(o.onStatus ? { onStatus: o.onStatus } : {}) })
  return { o, limits, metrics, hub, closing: false }
}
