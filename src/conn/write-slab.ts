import { Socket } from 'node:net';
import type { Duplex } from 'node:stream';

/**
 * One buffer that the writers of all plain TCP connections build their batches in, instead of a
 * fresh buffer per flush. A broadcast to 10,000 connections flushes 10,000 batches in one turn:
 * each a buffer of its own was 10,000 ArrayBuffers of external memory per tick, and the
 * scavenges they forced were the largest item of that profile (bench/RESULTS.md, issue 15).
 *
 * Reuse is safe only once the kernel has the bytes: node:net writes a buffer synchronously when
 * the socket takes it all (libuv's try-write), and then keeps no reference to it; when it could
 * not, it keeps the buffer queued and `writableLength` is not 0. `settle` checks that after
 * every write and lets the slab go (a new one is made) whenever a socket kept it.
 */
const SIZE = 64 * 1024;
let slab = Buffer.allocUnsafeSlow(SIZE);

/** Whether `socket`'s batches may be built in the shared slab: a plain node:net socket (not TLS, not an HTTP/2 stream, not a test double). */
export function sharesSlab(socket: Duplex): boolean {
  return socket instanceof Socket && (socket as Socket & { encrypted?: boolean }).encrypted !== true;
}

/** A buffer of `size` bytes for one batch: a view of the shared slab when it is big enough. */
export function batchBuffer(size: number, shared: boolean): Buffer {
  return shared && size <= SIZE ? slab.subarray(0, size) : Buffer.allocUnsafe(size);
}

/** After `socket.write(batch)`: if the socket still holds bytes, it may hold the slab, so stop using it. */
export function settle(socket: Duplex, batch: Buffer): void {
  if (socket.writableLength !== 0 && batch.buffer === slab.buffer) slab = Buffer.allocUnsafeSlow(SIZE);
}
