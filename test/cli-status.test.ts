// What k8stail says while a tap is being activated, from the LogTap's conditions.
import t from 'tap'
import type { Condition, LogTap } from '../api/logtap.ts'
import { describeTap, formatElapsed } from '../cli/status.ts'

const T = '2026-11-27T05:00:00Z'
function tap(conditions: Partial<Condition>[], deleting = false): LogTap {
  return {
    apiVersion: 'logsocket.dev/v1alpha1',
    kind: 'LogTap',
    metadata: { name: 'x', namespace: 'ns', ...(deleting ? { deletionTimestamp: T } : {}) },
    spec: { flow: { kind: 'Flow', name: 'f' }, mode: 'inject', lifetime: 'session', replay: 1000 },
    status: {
      conditions: conditions.map((c) => ({
        status: 'Unknown',
        reason: 'Pending',
        message: '',
        lastTransitionTime: T,
        ...c,
      })) as Condition[],
    },
  }
}

t.test('conditions to a state and a line', async (t) => {
  t.same(describeTap(tap([])), {
    state: 'waiting',
    text: 'waiting for the log-socket controller to pick up the tap',
  })
  t.same(
    describeTap(
      tap([
        { type: 'FlowFound', status: 'True', reason: 'Found' },
        { type: 'OutputReady', status: 'False', reason: 'WaitingForReload', message: 'fluentd is reloading' },
        { type: 'Ready', status: 'False', reason: 'Activating' },
      ]),
    ),
    { state: 'waiting', text: 'WaitingForReload: fluentd is reloading' },
    'the first unfinished step is shown',
  )
  t.same(describeTap(tap([{ type: 'Ready', status: 'True', reason: 'Ready', message: 'streaming' }])), {
    state: 'ready',
    text: 'streaming',
  })
  t.same(
    describeTap(
      tap([
        { type: 'FlowFound', status: 'False', reason: 'FlowNotFound', message: 'Flow ns/f does not exist' },
      ]),
    ),
    { state: 'not-found', text: 'FlowNotFound: Flow ns/f does not exist' },
  )
  t.same(
    describeTap(
      tap([
        {
          type: 'FlowFound',
          status: 'False',
          reason: 'WrongNamespace',
          message: 'not the control namespace',
        },
      ]),
    ),
    { state: 'failed', text: 'FlowFound WrongNamespace: not the control namespace' },
    'a flow that exists in the wrong place is a failure, not "not found"',
  )
  // The controller's progress reasons (controller/core/desired.ts) are waiting, its dead ends failures.
  for (const reason of [
    'WaitingForFlow',
    'WaitingForOutput',
    'PreviousOutputTerminating',
    'OutputDeleting',
    'MirrorDeleting',
  ]) {
    t.equal(describeTap(tap([{ type: 'Ready', status: 'False', reason }])).state, 'waiting', reason)
  }
  for (const reason of [
    'WaitingForLoggingOperator',
    'NoLogging',
    'NoMatchingLogging',
    'NamespaceNotWatched',
    'LoggingOperatorNotResponding',
    'OperatorProblems',
  ]) {
    t.equal(describeTap(tap([{ type: 'Ready', status: 'False', reason }])).state, 'waiting', reason)
  }
  for (const reason of ['NameConflict', 'MirrorUnsupported']) {
    t.equal(describeTap(tap([{ type: 'Ready', status: 'False', reason }])).state, 'failed', reason)
  }
  t.same(
    describeTap(
      tap([
        { type: 'FlowFound', status: 'True', reason: 'Found' },
        { type: 'Attached', status: 'False', reason: 'PatchFailed', message: 'flow is immutable' },
      ]),
    ),
    { state: 'failed', text: 'Attached PatchFailed: flow is immutable' },
  )
  t.equal(describeTap(tap([], true)).state, 'failed', 'a tap being deleted will not become ready')
  // Waiting for logging-operator: the controller's sentence is the whole line.
  const silent =
    'logging-operator has not accepted Output logtap-x in 60s (no status.active on it): is logging-operator running for Logging l?'
  t.same(
    describeTap(
      tap([
        { type: 'FlowFound', status: 'True', reason: 'Found' },
        { type: 'OutputReady', status: 'True', reason: 'Ready' },
        { type: 'Attached', status: 'True', reason: 'Attached' },
        { type: 'Accepted', status: 'False', reason: 'LoggingOperatorNotResponding', message: silent },
        { type: 'Ready', status: 'False', reason: 'LoggingOperatorNotResponding', message: silent },
      ]),
    ),
    { state: 'waiting', text: silent },
  )
  t.same(
    describeTap(
      tap([
        { type: 'Attached', status: 'True', reason: 'Attached' },
        { type: 'Accepted', status: 'False', reason: 'WaitingForLoggingOperator', message: 'Waiting for it' },
      ]),
    ),
    { state: 'waiting', text: 'WaitingForLoggingOperator: Waiting for it' },
    'Accepted comes after Attached, before Ready',
  )
})

t.test('elapsed time', async (t) => {
  t.equal(formatElapsed(0), '0s')
  t.equal(formatElapsed(59_999), '59s')
  t.equal(formatElapsed(61_000), '1m01s')
  t.equal(formatElapsed(3_600_000), '60m00s')
})
