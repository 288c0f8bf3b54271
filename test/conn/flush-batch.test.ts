/**
 * The writers of connections written outside a read (a broadcast, a timer) take their turn in one
 * nextTick for all of them, first scheduled first flushed (src/conn/conn.ts, Conn.#pending).
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { destroyAll, open, waitUntil, type Setup } from './helpers.js';

afterEach(() => {
  vi.restoreAllMocks();
  destroyAll();
});

async function three(): Promise<Setup<undefined>[]> {
  return [await open(), await open(), await open()];
}

describe('flushing many connections', () => {
  it('schedules one nextTick for every connection written in the same turn', async () => {
    const setups = await three();
    const nextTick = vi.spyOn(process, 'nextTick');
    for (const s of setups) void s.conn.write('hello');
    const scheduled = nextTick.mock.calls.length;
    nextTick.mockRestore();
    expect(scheduled).toBe(1);
    await waitUntil(() => setups.every((s) => s.peer.frames.length === 1), 'one frame on every connection');
    for (const s of setups) expect(s.peer.frames[0]!.payload.toString()).toBe('hello');
  });

  it('writes the sockets in the order their connections were written, each once per turn', async () => {
    const setups = await three();
    const writes = setups.map((s) => vi.spyOn(s.socket, 'write'));
    const order = [2, 0, 1];
    for (const i of order) void setups[i]!.conn.write(`first ${i}`);
    // Written again in the same turn: still one batch (one socket write) per connection.
    for (const i of order) void setups[i]!.conn.write(`second ${i}`);
    await waitUntil(() => setups.every((s) => s.peer.frames.length === 2), 'two frames on every connection');
    expect(writes.map((w) => w.mock.calls.length)).toEqual([1, 1, 1]);
    const byTime = order.map((i) => writes[i]!.mock.invocationCallOrder[0]!);
    expect([...byTime].sort((a, b) => a - b)).toEqual(byTime);
    for (const [i, s] of setups.entries()) expect(s.peer.frames.map((f) => f.payload.toString())).toEqual([`first ${i}`, `second ${i}`]);
  });

  it('flushes a connection written while the others are being flushed in the same tick', async () => {
    const setups = await three();
    // The first connection's socket write schedules a write on the third: it joins the batch.
    const first = setups[0]!.socket;
    const write = first.write.bind(first);
    let late = false;
    vi.spyOn(first, 'write').mockImplementation(((chunk: Buffer, ...rest: never[]) => {
      if (!late) {
        late = true;
        void setups[2]!.conn.write('late');
      }
      return write(chunk, ...rest);
    }) as typeof first.write);
    const nextTick = vi.spyOn(process, 'nextTick');
    void setups[0]!.conn.write('a');
    void setups[1]!.conn.write('b');
    await waitUntil(() => setups[2]!.peer.frames.length === 1, 'the late frame');
    expect(setups[2]!.peer.frames[0]!.payload.toString()).toBe('late');
    // One tick for the three (Node's own socket writes may schedule others: count ours by callback).
    const ours = nextTick.mock.calls.filter((c) => c[0] === nextTick.mock.calls[0]![0]);
    expect(ours.length).toBe(1);
  });
});
