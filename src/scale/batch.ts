/**
 * The bytes of one cross-thread batch: many published messages packed into one ArrayBuffer, which
 * is transferred (not copied) to the receiving thread. One postMessage carries a whole batch: a
 * postMessage costs microseconds (a structured clone and a wake-up of the other thread), so one per
 * message would cost more than the delivery itself.
 *
 * Each message: u8 flags (1 binary, 2 broadcast: no topic, 4 has a key), then, when present, the
 * topic and the key as u32 length + UTF-8, then the payload as u32 length + bytes.
 */

const BINARY = 1;
const BROADCAST = 2;
const HAS_KEY = 4;

/** A batch being written: grows by doubling; `take()` hands its ArrayBuffer away. */
export class BatchWriter {
  #buf: Buffer | undefined;
  #len = 0;
  #count = 0;

  get byteLength(): number {
    return this.#len;
  }
  get count(): number {
    return this.#count;
  }

  /** The bytes `append` would add for this message (what the bus's byte bound counts). */
  static sizeOf(topic: string | undefined, data: string | Uint8Array, key: string | undefined): number {
    let n = 1 + 4 + (typeof data === 'string' ? Buffer.byteLength(data) : data.byteLength);
    if (topic !== undefined) n += 4 + Buffer.byteLength(topic);
    if (key !== undefined) n += 4 + Buffer.byteLength(key);
    return n;
  }

  /** Append one message of `size` bytes (from `sizeOf`). */
  append(topic: string | undefined, data: string | Uint8Array, isBinary: boolean, key: string | undefined, size: number): void {
    const buf = this.#room(size);
    let o = this.#len;
    buf[o++] = (isBinary ? BINARY : 0) | (topic === undefined ? BROADCAST : 0) | (key === undefined ? 0 : HAS_KEY);
    if (topic !== undefined) o = writeString(buf, o, topic);
    if (key !== undefined) o = writeString(buf, o, key);
    if (typeof data === 'string') o = writeString(buf, o, data);
    else {
      buf.writeUInt32LE(data.byteLength, o);
      buf.set(data, o + 4);
      o += 4 + data.byteLength;
    }
    this.#len = o;
    this.#count++;
  }

  /** The batch so far (its buffer is handed over: transfer it), and a fresh start. */
  take(): { buffer: ArrayBuffer; byteLength: number; count: number } {
    const out = { buffer: this.#buf!.buffer as ArrayBuffer, byteLength: this.#len, count: this.#count };
    this.#buf = undefined;
    this.#len = 0;
    this.#count = 0;
    return out;
  }

  #room(size: number): Buffer {
    const need = this.#len + size;
    let buf = this.#buf;
    if (buf === undefined || buf.length < need) {
      let cap = buf === undefined ? 16 * 1024 : buf.length * 2;
      while (cap < need) cap *= 2;
      // Not Buffer.allocUnsafe: a small one would be a slice of Node's shared pool, which cannot
      // be transferred.
      const bigger = Buffer.from(new ArrayBuffer(cap));
      if (buf !== undefined) buf.copy(bigger, 0, 0, this.#len);
      this.#buf = buf = bigger;
    }
    return buf;
  }
}

function writeString(buf: Buffer, o: number, s: string): number {
  const n = buf.write(s, o + 4);
  buf.writeUInt32LE(n, o);
  return o + 4 + n;
}

/** Called for each message of a batch; `data` is a view of the batch (no copy). */
export type BatchVisitor = (topic: string | undefined, data: Buffer, isBinary: boolean, key: string | undefined) => void;

/** Read every message of a batch, in order. */
export function readBatch(ab: ArrayBuffer, byteLength: number, visit: BatchVisitor): void {
  const buf = Buffer.from(ab, 0, byteLength);
  let o = 0;
  while (o < byteLength) {
    const flags = buf[o++]!;
    let topic: string | undefined;
    let key: string | undefined;
    if ((flags & BROADCAST) === 0) {
      const n = buf.readUInt32LE(o);
      topic = buf.toString('utf8', o + 4, o + 4 + n);
      o += 4 + n;
    }
    if ((flags & HAS_KEY) !== 0) {
      const n = buf.readUInt32LE(o);
      key = buf.toString('utf8', o + 4, o + 4 + n);
      o += 4 + n;
    }
    const n = buf.readUInt32LE(o);
    const data = buf.subarray(o + 4, o + 4 + n);
    o += 4 + n;
    visit(topic, data, (flags & BINARY) !== 0, key);
  }
}
