// Direct writes of pre-built frames to the TCP socket under a `ws` WebSocket, fenced.
//
// The listener's fast path writes many complete frames at once to the socket beneath ws instead
// of one ws.send per message (ws builds a header and makes two writes per message). It relies on
// two ws internals: `_socket`, the net.Socket ws writes to, and `_sender`, whose `_queue`/`_state`
// say whether ws itself still holds a message back (only while compressing or reading a Blob,
// neither of which the relay does). Direct frames are written only when that queue is empty, so
// they never overtake a message sent through ws. permessage-deflate is off, and an uncompressed
// frame is valid either way.
//
// The shape of those internals is checked once, on the first socket; if this ws lacks them,
// every listener falls back to ws.send for good (slower, same bytes). test/relay-ws-direct.test.ts
// fails when the installed ws no longer has them, so an upgrade cannot silently take the fast
// path away. `ws` is pinned to an exact version in package.json for the same reason.
import { Socket } from 'node:net'
import type { WebSocket } from 'ws'

interface WsInternals {
  _socket?: unknown
  _sender?: { _socket?: unknown; _queue?: unknown; _state?: unknown }
}

// What a direct write needs of the socket.
export type DirectSocket = Pick<Socket, 'write' | 'writableLength'>

// The decision, made on the first socket seen (undefined until then). Tests may read it.
export const wsDirect: { mode: 'direct' | 'ws-send' | undefined } = { mode: undefined }

// Pure: whether a WebSocket has the internals the fast path relies on, with their expected types.
function hasDirectInternals(ws: WebSocket): boolean {
  const i = ws as unknown as WsInternals
  const s = i._sender
  return (
    i._socket instanceof Socket &&
    typeof s === 'object' &&
    s !== null &&
    s._socket === i._socket &&
    Array.isArray(s._queue) &&
    typeof s._state === 'number'
  )
}

// The socket to write frames to now, or null: use ws.send (this ws lacks the internals, the
// connection is not open, or ws holds a message back that must go first).
export function directSocket(ws: WebSocket): DirectSocket | null {
  wsDirect.mode ??= hasDirectInternals(ws) ? 'direct' : 'ws-send'
  if (wsDirect.mode !== 'direct' || ws.readyState !== ws.OPEN) return null
  const i = ws as unknown as { _socket: Socket; _sender: { _queue: unknown[]; _state: number } }
  // ws's sender is idle (state 0, DEFAULT) with nothing queued.
  if (!i._socket.writable || i._sender._state !== 0 || i._sender._queue.length > 0) return null
  return i._socket
}
