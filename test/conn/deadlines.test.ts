/**
 * Deadlines: the shared close-timeout list. Items expire in the order added, between `timeout` and
 * `timeout + granularity` ms; a deleted item never expires; the interval runs only while the list
 * holds something.
 */
import { describe, expect, it, vi } from 'vitest';
import { Deadlines } from '../../src/conn/deadlines.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('Deadlines', () => {
  it('expires items in the order they were added, not before their timeout', async () => {
    const expired: Array<{ id: string; after: number }> = [];
    const t0 = performance.now();
    const list = new Deadlines<string>(40, (id) => expired.push({ id, after: performance.now() - t0 }));
    expect(list.granularity).toBe(10);
    list.add('a');
    list.add('b');
    list.add('c');
    expect(list.size).toBe(3);
    await sleep(120);
    expect(expired.map((e) => e.id)).toEqual(['a', 'b', 'c']);
    for (const e of expired) expect(e.after).toBeGreaterThanOrEqual(39);
    expect(list.size).toBe(0);
  });

  it('a deleted item never expires, and deleting twice is harmless', async () => {
    const expired: string[] = [];
    const list = new Deadlines<string>(30, (id) => expired.push(id));
    const a = list.add('a');
    const b = list.add('b');
    const c = list.add('c');
    list.delete(b);
    list.delete(b);
    list.delete(a);
    expect(list.size).toBe(1);
    await sleep(100);
    expect(expired).toEqual(['c']);
    list.delete(c); // already expired: nothing happens
    expect(list.size).toBe(0);
  });

  it('an item added after others expire is timed from when it was added', async () => {
    const expired: string[] = [];
    const list = new Deadlines<string>(60, (id) => expired.push(id));
    list.add('early');
    await sleep(40);
    list.add('late');
    await sleep(45); // 'early' is past 60 ms (+ granularity 15), 'late' is at ~45
    expect(expired).toEqual(['early']);
    await sleep(60);
    expect(expired).toEqual(['early', 'late']);
  });

  it('granularity is a quarter of the timeout, at least 10 ms', () => {
    expect(new Deadlines(5000, () => {}).granularity).toBe(1250);
    expect(new Deadlines(8, () => {}).granularity).toBe(10);
  });

  it('runs its interval only while it holds something, and starts it again for the next item', async () => {
    const setSpy = vi.spyOn(globalThis, 'setInterval');
    const clearSpy = vi.spyOn(globalThis, 'clearInterval');
    try {
      const expired: number[] = [];
      const list = new Deadlines<number>(20, (n) => expired.push(n));
      const d1 = list.add(1);
      list.add(2);
      expect(setSpy).toHaveBeenCalledTimes(1); // one interval for the list, not one per item
      list.delete(d1);
      expect(clearSpy).not.toHaveBeenCalled();
      await sleep(60);
      expect(expired).toEqual([2]);
      expect(clearSpy).toHaveBeenCalledTimes(1); // empty again: no timer left
      list.add(3);
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
