// `k8stail ns/flow` as a library function: find or create the tap, wait for it, stream it, clean up.
// Everything with a side effect comes in through `deps`, so tests (and the end-to-end harness) can
// run it in-process with their own streams, signal and kubeconfig.
import { setTimeout as sleep } from 'node:timers/promises'
import { CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node'
import { Conditions, GROUP, type LogTap, PLURAL, VERSION } from '../api/logtap.ts'
import { type ExitCode, ExitCodes, exitCodeFor, formatError, tapFailedError } from './errors.ts'
import { streamReplicas } from './fan-in.ts'
import { handshakeAuth, loadKubeConfig, relayToken, serverUrl } from './kubeconfig.ts'
import type { TailOptions } from './options.ts'
import { createPrinter, OutputBatch, type Sink, useColor } from './output/index.ts'
import { directStreamUrl, podProxyStreamUrl, proxyStreamUrl } from './proxy-url.ts'
import {
  droppedNotice,
  type NoticeMessage,
  type StreamOptions,
  sampledNotice,
  streamTap,
} from './relay-client.ts'
import { createSession, type Session } from './session.ts'
import { waitForReady } from './status.ts'

export interface TailDeps {
  stdout: Sink & { isTTY?: boolean }
  stderr: Sink & { isTTY?: boolean }
  env: Record<string, string | undefined>
  signal: AbortSignal // Ctrl-C, SIGTERM
  kubeConfig?: (o: TailOptions) => KubeConfig // default: kubectl-like loading
  stream?: Partial<
    Pick<
      StreamOptions,
      'pingIntervalMs' | 'backoffInitialMs' | 'backoffMaxMs' | 'giveUpAfterMs' | 'notFoundGraceMs'
    >
  >
  pollMs?: number
  cleanupTimeoutMs?: number
}

// Runs until the stream ends, a limit is reached or the signal fires; never throws.
export async function runTail(o: TailOptions, d: TailDeps): Promise<ExitCode> {
  const out = new OutputBatch(d.stdout)
  const say = (line: string) => {
    void out.flush() // what was printed before the notice comes first
    d.stderr.write(`k8stail: ${line}\n`)
  }
  const debug = (line: string) => {
    if (o.verbosity >= 1) say(line)
  }
  const stop = new AbortController()
  const onOuterAbort = () => stop.abort()
  d.signal.addEventListener('abort', onOuterAbort, { once: true })
  if (d.signal.aborted) stop.abort()
  let session: Session | undefined
  let limit: NodeJS.Timeout | undefined
  try {
    // Direct mode with --attach needs no Kubernetes API at all.
    const needsApi = !(o.listenAddr && o.attach)
    const kc = needsApi || !o.token ? (d.kubeConfig ?? loadKubeConfig)(o) : undefined
    const auth = kc ? await handshakeAuth(kc) : undefined
    const token = relayToken(o.token, auth?.bearerToken)
    const tapNamespace = o.flowNamespace
    const flowKind = o.flowKind

    let tapName = o.attach
    let replay: number | undefined = o.tail
    if (!tapName && kc) {
      tapName = await findPersistentTap(kc, tapNamespace, flowKind, o.flowName, debug)
      if (tapName) say(`attaching to persistent LogTap ${tapNamespace}/${tapName}`)
    }
    if (!tapName && kc) {
      session = await createSession(
        {
          namespace: tapNamespace,
          flowKind,
          flowName: o.flowName,
          leaseDurationSeconds: o.leaseDurationSeconds,
        },
        { kc, log: debug, warn: say },
      )
      tapName = session.name
      say(`created LogTap ${tapNamespace}/${tapName} for ${flowKind} ${o.flowNamespace}/${o.flowName}`)
      const ready = await waitForReady(tapNamespace, tapName, {
        kc,
        stderr: d.stderr,
        isTTY: d.stderr.isTTY === true,
        signal: stop.signal,
        pollMs: d.pollMs,
      })
      if (!ready) return ExitCodes.Ok
      replay ??= 100_000 // our own tap: everything the relay kept since it became Ready
    }
    if (!tapName) throw new Error('no tap to stream from') // unreachable: attach or kubeconfig is always there

    const url = o.listenAddr
      ? directStreamUrl(o.listenAddr, tapNamespace, tapName)
      : proxyStreamUrl({
          server: serverUrl(kc!),
          serviceNamespace: o.serviceNamespace,
          service: o.service,
          port: o.port,
          serviceScheme: o.serviceScheme,
          tapNamespace,
          tapName,
        })
    debug(`stream URL ${url.toString()}`)

    const print = createPrinter(o.output, out, {
      fields: o.fields,
      rawMessage: o.rawMessage,
      ...(o.template !== undefined ? { template: o.template } : {}),
      color: useColor(d.stdout.isTTY === true, d.env),
    })
    let printed = 0
    let limitReached = false
    if (o.forMs !== undefined) {
      limit = setTimeout(() => {
        limitReached = true
        debug(`--for ${o.forMs} ms reached`)
        stop.abort()
      }, o.forMs)
    }
    const streamOptions: StreamOptions = {
      // A tap we just created may be a moment ahead of the relay's view of taps.
      notFoundGraceMs: session ? 15_000 : 0,
      ...d.stream,
      url,
      token,
      // Per connection, so that an expired token is refreshed (exec plugin, OIDC): the kubeconfig's
      // credentials for the API server (never for a --listen-addr relay), and its bearer token as
      // the relay token unless -t gave one.
      ...(kc && (!o.listenAddr || !o.token)
        ? {
            connectAuth: async () => {
              const a = await handshakeAuth(kc)
              return {
                wsOptions: o.listenAddr ? {} : a.wsOptions,
                relayToken: o.token ? undefined : relayToken(undefined, a.bearerToken),
              }
            },
          }
        : {}),
      tail: replay,
      selection: o.selection,
      reconnect: o.reconnect,
      signal: stop.signal,
    }
    const handlers = {
      record(seq: number, bytes: Buffer, frame: Buffer, replica?: string) {
        if (stop.signal.aborted) return
        if (print.record(seq, bytes, frame, replica) && o.count !== undefined && ++printed >= o.count) {
          limitReached = true
          stop.abort()
        }
      },
      message(msg: NoticeMessage, frame: Buffer, replica?: string) {
        if (stop.signal.aborted) return
        if (msg.type === 'dropped' && o.output !== 'pretty')
          say(`${replica ? `replica ${replica}: ` : ''}${droppedNotice(msg)}`)
        if (msg.type === 'sampled' && o.output !== 'pretty')
          say(`${replica ? `replica ${replica}: ` : ''}${sampledNotice(msg)}`)
        print.message(msg, frame, replica)
      },
      flush: () => out.flushSoon(),
      notice: say,
      debug,
    }
    // Through the API server, the tap is read from every relay replica (fan-in.ts), each addressed
    // through the pod proxy; --listen-addr reaches one relay and reads only that one.
    const end = o.listenAddr
      ? await streamTap(streamOptions, handlers)
      : await streamReplicas(
          {
            ...streamOptions,
            replicaUrl: (r) =>
              podProxyStreamUrl({
                server: serverUrl(kc!),
                namespace: o.serviceNamespace,
                pod: r.name,
                port: r.port,
                scheme: o.serviceScheme,
                tapNamespace,
                tapName: tapName!,
              }),
          },
          handlers,
        )
    if (end === 'tap-deleted')
      throw tapFailedError(`LogTap ${tapNamespace}/${tapName} was deleted; stream ended`)
    if (end === 'aborted' && !limitReached) debug('interrupted')
    return ExitCodes.Ok
  } catch (err) {
    if (stop.signal.aborted && d.signal.aborted) return ExitCodes.Ok // Ctrl-C while something was failing
    say(formatError(err).replace(/^k8stail: /, ''))
    if (o.verbosity >= 2 && err instanceof Error && err.stack) d.stderr.write(`${err.stack}\n`)
    return exitCodeFor(err)
  } finally {
    clearTimeout(limit)
    d.signal.removeEventListener('abort', onOuterAbort)
    stop.abort()
    const written = out.settle()
    if (session) await session.close(d.cleanupTimeoutMs ?? 5000)
    // Everything printed reaches a slow pipe before we exit, unless the user is leaving (Ctrl-C).
    await (d.signal.aborted ? Promise.race([written, sleep(1000)]) : written)
  }
}

// A Ready persistent LogTap on the same flow, readable by the user: stream from it, create nothing.
async function findPersistentTap(
  kc: KubeConfig,
  namespace: string,
  kind: string,
  flowName: string,
  debug: (line: string) => void,
): Promise<string | undefined> {
  try {
    const list = (await kc
      .makeApiClient(CustomObjectsApi)
      .listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural: PLURAL })) as {
      items: LogTap[]
    }
    const tap = list.items.find(
      (t) =>
        t.spec.lifetime === 'persistent' &&
        !t.metadata.deletionTimestamp &&
        t.spec.flow.name === flowName &&
        (t.spec.flow.kind ?? 'Flow') === kind &&
        t.status?.conditions?.some((c) => c.type === Conditions.Ready && c.status === 'True'),
    )
    return tap?.metadata.name
  } catch (err) {
    // Not allowed to list taps (or the CRD is missing): fall back to a session tap.
    debug(`not looking for persistent taps: ${formatError(err)}`)
    return undefined
  }
}
