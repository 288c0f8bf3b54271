/**
 * Deadlines: the intrusive deadline list behind closeTimeout and the server's handshake deadline.
 * Nodes expire in the order added, between `timeout` and `timeout + granularity` ms; a deleted
 * node never expires; the interval runs only while the list holds something.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Deadlines, type DeadlineNode } from '../../src/conn/deadlines.js';

// Fake timers and a fake performance.now(): these tests are about order and bounds, and real sleeps
// on a loaded machine made them miss (a sweep delayed past the next check).
const sleep = async (ms: number): Promise<void> => void (await vi.advanceTimersByTimeAsync(ms));

class Node implements DeadlineNode<Node> {
  prev: Node | undefined = undefined;
  next: Node | undefined = undefined;
  at = 0;
  constructor(readonly id: string | number) {}
}
const nodes = (...ids: (string | number)[]) => ids.map((id) => new Node(id));

describe('Deadlines', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval', 'setTimeout', 'clearTimeout', 'Date'] });
    // Node's global performance is not replaced by the fake clock: read it from the faked Date.
    vi.spyOn(performance, 'now').mockImplementation(() => Date.now());
  });
  afterEach(() => {
    vi.useRealTimers();
    vi.restoreAllMocks();
  });
  it('expires items in the order they were added, not before their timeout', async () => {
    const expired: Array<{ id: string | number; after: number }> = [];
    const t0 = performance.now();
    const list = new Deadlines<Node>(40, (n) => expired.push({ id: n.id, after: performance.now() - t0 }));
    expect(list.granularity).toBe(10);
    for (const n of nodes('a', 'b', 'c')) list.add(n);
    expect(list.size).toBe(3);
    await sleep(120);
    expect(expired.map((e) => e.id)).toEqual(['a', 'b', 'c']);
    for (const e of expired) expect(e.after).toBeGreaterThanOrEqual(39);
    expect(list.size).toBe(0);
  });

  it('a deleted item never expires, and deleting twice is harmless', async () => {
    const expired: (string | number)[] = [];
    const list = new Deadlines<Node>(30, (n) => expired.push(n.id));
    const [a, b, c] = nodes('a', 'b', 'c');
    list.add(a!);
    list.add(b!);
    list.add(c!);
    list.delete(b!);
    list.delete(b!);
    list.delete(a!);
    expect(list.size).toBe(1);
    await sleep(100);
    expect(expired).toEqual(['c']);
    list.delete(c!); // already expired: nothing happens
    expect(list.size).toBe(0);
  });

  it('an item added after others expire is timed from when it was added', async () => {
    const expired: (string | number)[] = [];
    const list = new Deadlines<Node>(60, (n) => expired.push(n.id));
    const [early, late] = nodes('early', 'late');
    list.add(early!);
    await sleep(40);
    list.add(late!);
    await sleep(45); // 'early' is past 60 ms (+ granularity 15), 'late' is at ~45
    expect(expired).toEqual(['early']);
    await sleep(60);
    expect(expired).toEqual(['early', 'late']);
  });

  it('granularity is a quarter of the timeout, at least 10 ms (or the minimum given)', () => {
    expect(new Deadlines<Node>(5000, () => {}).granularity).toBe(1250);
    expect(new Deadlines<Node>(8, () => {}).granularity).toBe(10);
    expect(new Deadlines<Node>(200, () => {}, { minGranularity: 100 }).granularity).toBe(100);
  });

  it('runs its interval only while it holds something, and starts it again for the next item', async () => {
    const setSpy = vi.spyOn(globalThis, 'setInterval');
    const clearSpy = vi.spyOn(globalThis, 'clearInterval');
    try {
      const expired: (string | number)[] = [];
      const list = new Deadlines<Node>(20, (n) => expired.push(n.id));
      const [n1, n2, n3] = nodes(1, 2, 3);
      list.add(n1!);
      list.add(n2!);
      expect(setSpy).toHaveBeenCalledTimes(1); // one interval for the list, not one per item
      list.delete(n1!);
      expect(clearSpy).not.toHaveBeenCalled();
      await sleep(60);
      expect(expired).toEqual([2]);
      expect(clearSpy).toHaveBeenCalledTimes(1); // empty again: no timer left
      list.add(n3!);
      expect(setSpy).toHaveBeenCalledTimes(2);
      await sleep(60);
      expect(expired).toEqual([2, 3]);
      expect(clearSpy).toHaveBeenCalledTimes(2);
    } finally {
      setSpy.mockRestore();
      clearSpy.mockRestore();
    }
  });
});
