// Prometheus metrics of the controller, all named log_socket_controller_*. Registering is
// idempotent per registry, so a controller restarted in the same process (tests, leadership
// changes) reuses the same series.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client'

export interface ControllerMetrics {
  reconciles: Counter<'result'>
  errors: Counter<'action'>
  actions: Counter<'action'>
  queueDepth: Gauge
  duration: Histogram
  leader: Gauge
  sweepRepairs: Counter<'kind'>
}

const PREFIX = 'log_socket_controller_'

export function controllerMetrics(registry: Registry): ControllerMetrics {
  const registers = [registry]
  const once = <T>(name: string, make: (name: string) => T): T =>
    (registry.getSingleMetric(PREFIX + name) as T | undefined) ?? make(PREFIX + name)
  return {
    reconciles: once(
      'reconciles_total',
      (name) =>
        new Counter({
          name,
          help: 'LogTap reconciles by result (success, requeue, error).',
          labelNames: ['result'],
          registers,
        }),
    ),
    errors: once(
      'reconcile_errors_total',
      (name) =>
        new Counter({ name, help: 'Failed reconcile steps by action.', labelNames: ['action'], registers }),
    ),
    actions: once(
      'actions_total',
      (name) =>
        new Counter({
          name,
          help: 'Reconcile steps executed, by action.',
          labelNames: ['action'],
          registers,
        }),
    ),
    queueDepth: once(
      'queue_depth',
      (name) => new Gauge({ name, help: 'LogTap keys waiting in the work queue.', registers }),
    ),
    duration: once(
      'reconcile_duration_seconds',
      (name) =>
        new Histogram({
          name,
          help: 'Time to reconcile one LogTap key.',
          buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
          registers,
        }),
    ),
    leader: once(
      'leader',
      (name) =>
        new Gauge({ name, help: '1 while this replica holds the controller leader lease.', registers }),
    ),
    sweepRepairs: once(
      'sweep_repairs_total',
      (name) =>
        new Counter({
          name,
          help: 'Drift repaired by the periodic sweep, by kind.',
          labelNames: ['kind'],
          registers,
        }),
    ),
  }
}
