import type { NoticeMessage } from '../relay-client.ts'

// Where output goes: process.stdout, or any stream-like object. `write` returning false means
// full: with `once`, k8stail waits for 'drain' before reading more; with `writableLength`, it
// waits for queued output before exiting (see batch.ts).
export interface Sink {
  write(chunk: string | Uint8Array, done?: (err?: Error | null) => void): unknown
  writableLength?: number // bytes queued, not yet handed on
  once?(event: 'drain' | 'close' | 'error', listener: () => void): unknown
  off?(event: 'drain' | 'close' | 'error', listener: () => void): unknown
}

export interface PrinterOptions {
  color: boolean // pretty only: decided once from the TTY and NO_COLOR
  // pretty only: --fields as key paths, shown as key=value (the relay has projected the record)
  fields?: string[][] | undefined
  rawMessage?: boolean // pretty: show a JSON message as it is, not as level, message, key=value
  template?: string // -o template: the --template text
}

export interface Printer {
  // A record: its sequence number, the bytes fluentd posted (a view into `frame`) and the frame as
  // received. True when it was printed (what --count counts). `replica`: the relay replica it came
  // from, when the relay runs as replicas (sequence numbers are per replica).
  record(seq: number, bytes: Buffer, frame: Buffer, replica?: string): boolean
  message(msg: NoticeMessage, frame: Buffer, replica?: string): void
}
