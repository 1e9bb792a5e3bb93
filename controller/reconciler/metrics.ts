// Prometheus metrics of the controller. Registering is idempotent per registry, so a controller
// restarted in the same process (tests, leadership changes) reuses the same series.
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

function once<T>(registry: Registry, name: string, make: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? make()
}

export function controllerMetrics(registry: Registry): ControllerMetrics {
  const registers = [registry]
  return {
    reconciles: once(
      registry,
      'logsocket_controller_reconciles_total',
      () =>
        new Counter({
          name: 'logsocket_controller_reconciles_total',
          help: 'LogTap reconciles by result (success, requeue, error).',
          labelNames: ['result'],
          registers,
        }),
    ),
    errors: once(
      registry,
      'logsocket_controller_reconcile_errors_total',
      () =>
        new Counter({
          name: 'logsocket_controller_reconcile_errors_total',
          help: 'Failed reconcile steps by action.',
          labelNames: ['action'],
          registers,
        }),
    ),
    actions: once(
      registry,
      'logsocket_controller_actions_total',
      () =>
        new Counter({
          name: 'logsocket_controller_actions_total',
          help: 'Reconcile steps executed, by action.',
          labelNames: ['action'],
          registers,
        }),
    ),
    queueDepth: once(
      registry,
      'logsocket_controller_queue_depth',
      () =>
        new Gauge({
          name: 'logsocket_controller_queue_depth',
          help: 'LogTap keys waiting in the work queue.',
          registers,
        }),
    ),
    duration: once(
      registry,
      'logsocket_controller_reconcile_duration_seconds',
      () =>
        new Histogram({
          name: 'logsocket_controller_reconcile_duration_seconds',
          help: 'Time to reconcile one LogTap key.',
          buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
          registers,
        }),
    ),
    leader: once(
      registry,
      'logsocket_controller_leader',
      () =>
        new Gauge({
          name: 'logsocket_controller_leader',
          help: '1 while this replica holds the controller leader lease.',
          registers,
        }),
    ),
    sweepRepairs: once(
      registry,
      'logsocket_controller_sweep_repairs_total',
      () =>
        new Counter({
          name: 'logsocket_controller_sweep_repairs_total',
          help: 'Drift repaired by the periodic sweep, by kind.',
          labelNames: ['kind'],
          registers,
        }),
    ),
  }
}
