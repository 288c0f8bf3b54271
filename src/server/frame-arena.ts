import { encodeFrame, frameHeaderSize, writeFrame } from '../protocol/frame-encoder.js';

/**
 * Where a broadcast's frames are encoded: side by side in blocks of 8 KiB, so that the frames of
 * consecutive publishes lie back to back in memory and a connection can queue a burst of them as
 * one range (a run, see Conn#tryWriteFrame) instead of one outbox entry per message. Measured on
 * 100 x 64 B to 10,000 clients: per-message entries were ~100 bytes of outbox per delivery, all of
 * it alive until the flush, and the scavenges that copied it were the largest item of the profile
 * (bench/RESULTS.md, issue 15).
 *
 * A frame's bytes are written once and never again (a full block is left to the garbage
 * collector, not reused), so a connection may send any range of whole frames it was given. The
 * block size is Node's own Buffer pool size: a queued frame keeps at most as much memory alive
 * as a `Buffer.allocUnsafe` frame from the pool did. Frames too big to share a block (over half of
 * it, the pool's rule too) get a buffer of their own.
 */
const BLOCK = 8 * 1024;
let block = Buffer.allocUnsafeSlow(BLOCK);
let used = 0;

/** An unmasked, final frame (RFC 6455 §5.2) of `payload`, in the current block when it fits. */
export function arenaFrame(opcode: number, payload: Uint8Array, rsv1: boolean): Buffer {
  const size = frameHeaderSize(payload.length, false) + payload.length;
  if (size > BLOCK >>> 1) return encodeFrame(opcode, payload, { rsv1 });
  if (used + size > BLOCK) {
    block = Buffer.allocUnsafeSlow(BLOCK);
    used = 0;
  }
  const start = used;
  writeFrame(block, start, opcode, true, rsv1, payload, undefined);
  used += size;
  return block.subarray(start, used);
}
