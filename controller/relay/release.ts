// Gives a request body's bytes back to the allocator as soon as the relay is done with them.
// Node hands the relay each piece of a request body as a Buffer with an ArrayBuffer of its own,
// whose bytes (up to 64 KiB) live outside the JavaScript heap and are freed only when a garbage
// collection finds the Buffer dead. At full speed (~300 MB/s of bodies) thousands of dead pieces
// waited for that at any moment: ~10 MB of the relay's peak RSS (docs/benchmarks.md). Detaching
// the ArrayBuffer frees its bytes at once.
//
// Used for each piece as it is forwarded or counted, and for a body read whole (joined, inflated:
// up to the body limits) once its records are framed. The caller must keep no other view of the
// bytes: records are copied into frames, and a line cut by a piece boundary is copied out of its
// piece (LineSegments).
export function releaseBytes(b: Buffer): void {
  // Only a Buffer that owns its whole ArrayBuffer: a slice of Node's shared pool (a small
  // Buffer.from or allocUnsafe) shares it with others and is left to the collector.
  const ab = b.buffer
  if (ab instanceof ArrayBuffer && !ab.detached && b.byteOffset === 0 && b.byteLength === ab.byteLength)
    ab.transfer(0)
}
