/** PendingHandshakes: the list of handshakes in progress and its one sweeping interval. */
import { Duplex, PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { PendingHandshake, PendingHandshakes } from '../../src/server/pending.js';
import type { UpgradeRequest } from '../../src/protocol/handshake.js';
import { sleep, waitUntil } from '../helpers/net.js';

function entry(): PendingHandshake {
  return new PendingHandshake(new PassThrough() as Duplex);
}

describe('PendingHandshakes', () => {
  it('sweeps every max(100, timeout / 4) ms', () => {
    expect(new PendingHandshakes(10_000, () => {}).granularity).toBe(2500);
    expect(new PendingHandshakes(200, () => {}).granularity).toBe(100);
  });

  it('adds and deletes in any order, and delete is a no-op for an entry not in the list', () => {
    const list = new PendingHandshakes(10_000, () => {});
    const [a, b, c] = [entry(), entry(), entry()];
    list.add(a);
    list.add(b);
    list.add(c);
    list.delete(b);
    list.delete(b);
    expect(list.size).toBe(2);
    list.delete(a);
    list.delete(c);
    list.delete(a);
    expect(list.size).toBe(0);
    const seen: PendingHandshake[] = [];
    list.add(c);
    list.add(a);
    list.clear((p) => seen.push(p));
    expect(seen).toEqual([c, a]);
    expect(list.size).toBe(0);
  });

  it('expires each entry once its timeout has passed, not before, and the ones deleted in time never', async () => {
    const expired: PendingHandshake[] = [];
    const list = new PendingHandshakes(200, (p) => expired.push(p));
    const [a, b] = [entry(), entry()];
    const t0 = performance.now();
    list.add(a);
    list.add(b);
    list.delete(b);
    await waitUntil(() => expired.length === 1, 1000, 'the expiry');
    const elapsed = performance.now() - t0;
    expect(elapsed).toBeGreaterThanOrEqual(195);
    expect(elapsed).toBeLessThan(450);
    expect(expired).toEqual([a]);
    expect(list.size).toBe(0);
    await sleep(250);
    expect(expired).toEqual([a]);
  });

  it('drops an entry whose socket closed while its head was arriving at the next sweep, without expiring it', async () => {
    const expired: PendingHandshake[] = [];
    const list = new PendingHandshakes(1000, (p) => expired.push(p));
    const reading = entry();
    const deciding = entry();
    deciding.req = {} as UpgradeRequest;
    list.add(reading);
    list.add(deciding);
    reading.socket.destroy();
    deciding.socket.destroy();
    // One sweep (every 250 ms), well before the deadline.
    await sleep(400);
    // The deciding one stays: its handleUpgrade will settle (or time out and be reported).
    expect(list.size).toBe(1);
    expect(expired).toEqual([]);
    list.clear(() => {});
  });
});
