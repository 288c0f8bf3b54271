/**
 * Channel<T>: a bounded FIFO between async tasks (DESIGN.md "Channels and backpressure").
 * Fast path without waiting, waits that keep their order, every wait ended by close() or an
 * AbortSignal, and a bounded list of waiters.
 */
import { describe, expect, it } from 'vitest';
import { Channel } from '../../src/conn/channel.js';
import { ConnectionError, ErrorCode } from '../../src/protocol/index.js';
import { expectError, rejectionOf, track, turn, withTimeout } from './helpers.js';

describe('fast path', () => {
  it('trySend accepts values up to capacity, then refuses without throwing', () => {
    const ch = new Channel<number>(3);
    expect([ch.trySend(1), ch.trySend(2), ch.trySend(3)]).toEqual([true, true, true]);
    expect(ch.full).toBe(true);
    expect(ch.length).toBe(3);
    expect(ch.trySend(4)).toBe(false);
    expect(ch.length).toBe(3);
  });

  it('tryReceive returns values in FIFO order, then undefined when empty', () => {
    const ch = new Channel<string>(4);
    ch.trySend('a');
    ch.trySend('b');
    ch.trySend('c');
    expect([ch.tryReceive(), ch.tryReceive(), ch.tryReceive(), ch.tryReceive()]).toEqual(['a', 'b', 'c', undefined]);
    expect(ch.length).toBe(0);
    expect(ch.full).toBe(false);
  });

  it('keeps FIFO order across many wrap-arounds of the ring', () => {
    const ch = new Channel<number>(3);
    const out: number[] = [];
    let next = 0;
    for (let round = 0; round < 50; round++) {
      while (ch.trySend(next)) next++;
      out.push(ch.tryReceive()!, ch.tryReceive()!);
    }
    while (ch.length > 0) out.push(ch.tryReceive()!);
    expect(out).toEqual(Array.from({ length: next }, (_, i) => i));
  });

  it('a capacity that is not a positive integer is refused with a RangeError', () => {
    expect(() => new Channel(0)).toThrow(RangeError);
    expect(() => new Channel(1.5)).toThrow('channel capacity must be a positive integer');
    expect(() => new Channel(-1)).toThrow(RangeError);
  });
});

describe('waiting', () => {
  it('send resolves at once while there is room', async () => {
    const ch = new Channel<number>(2);
    await withTimeout(ch.send(1), 'send with room');
    expect(ch.tryReceive()).toBe(1);
  });

  it('send waits for room, and waiting senders are released one per free slot, in order', async () => {
    const ch = new Channel<number>(1);
    ch.trySend(1);
    const s2 = track(ch.send(2));
    const s3 = track(ch.send(3));
    await turn();
    expect([s2.state, s3.state]).toEqual(['pending', 'pending']);
    expect(ch.waitingSenders).toBe(2);

    expect(ch.tryReceive()).toBe(1);
    await turn();
    expect([s2.state, s3.state]).toEqual(['fulfilled', 'pending']);
    expect(ch.tryReceive()).toBe(2);
    await turn();
    expect(s3.state).toBe('fulfilled');
    expect(ch.tryReceive()).toBe(3);
    expect(ch.waitingSenders).toBe(0);
  });

  it('trySend does not overtake a sender that is already waiting', async () => {
    const ch = new Channel<number>(1);
    ch.trySend(1);
    const s2 = track(ch.send(2));
    expect(ch.trySend(99)).toBe(false);
    expect(ch.tryReceive()).toBe(1);
    await turn();
    expect(s2.state).toBe('fulfilled');
    expect(ch.tryReceive()).toBe(2);
  });

  it('receive waits for a value, and trySend hands it straight to the waiting receiver', async () => {
    const ch = new Channel<string>(1);
    const r = track(ch.receive());
    await turn();
    expect(r.state).toBe('pending');
    expect(ch.trySend('x')).toBe(true);
    await turn();
    expect(r.state).toBe('fulfilled');
    expect(r.value).toBe('x');
    expect(ch.length).toBe(0);
  });

  it('waiting receivers are served in the order they started waiting', async () => {
    const ch = new Channel<number>(1);
    const a = ch.receive();
    const b = ch.receive();
    ch.trySend(1);
    ch.trySend(2);
    expect(await withTimeout(Promise.all([a, b]), 'both receivers')).toEqual([1, 2]);
  });

  it('receive takes a value already inside at once', async () => {
    const ch = new Channel<number>(2);
    ch.trySend(7);
    expect(await withTimeout(ch.receive(), 'receive')).toBe(7);
  });
});

describe('close()', () => {
  it('close rejects every waiting sender and receiver with ConnectionError WS_ERR_CHANNEL_CLOSED', async () => {
    const full = new Channel<number>(1);
    full.trySend(0);
    const senders = [full.send(1), full.send(2)];
    const empty = new Channel<number>(1);
    const receivers = [empty.receive(), empty.receive()];
    full.close();
    empty.close();
    for (const p of [...senders, ...receivers]) {
      expectError(await rejectionOf(p), ConnectionError, ErrorCode.ChannelClosed, undefined, 'channel closed');
    }
    expect(full.waitingSenders).toBe(0);
  });

  it('close(reason) rejects the waiters with that reason', async () => {
    const ch = new Channel<number>(1);
    const r = ch.receive();
    const reason = new ConnectionError(ErrorCode.ConnectionClosed, 'connection is closed');
    ch.close(reason);
    expect(await rejectionOf(r)).toBe(reason);
  });

  it('after close, send rejects at once and trySend answers false', async () => {
    const ch = new Channel<number>(2);
    ch.close();
    expect(ch.closed).toBe(true);
    expect(ch.trySend(1)).toBe(false);
    expectError(await rejectionOf(ch.send(1)), ConnectionError, ErrorCode.ChannelClosed, undefined, 'channel closed');
    expect(ch.length).toBe(0);
  });

  it('values inside when the channel closes can still be received; then receive rejects', async () => {
    const ch = new Channel<number>(3);
    ch.trySend(1);
    ch.trySend(2);
    expect(ch.close()).toEqual([1, 2]);
    expect(await ch.receive()).toBe(1);
    expect(ch.tryReceive()).toBe(2);
    expectError(await rejectionOf(ch.receive()), ConnectionError, ErrorCode.ChannelClosed, undefined, 'channel closed');
  });

  it('close is idempotent: a second close changes nothing and returns no values', async () => {
    const ch = new Channel<number>(2);
    ch.trySend(1);
    const first = new ConnectionError(ErrorCode.ConnectionClosed, 'first');
    expect(ch.close(first)).toEqual([1]);
    expect(ch.close(new ConnectionError(ErrorCode.Aborted, 'second'))).toEqual([]);
    expect(ch.tryReceive()).toBe(1);
    expect(await rejectionOf(ch.receive())).toBe(first);
  });
});

describe('bounded waiters', () => {
  it('the sender past maxWaiters is refused at once with WS_ERR_TOO_MANY_WAITERS; the others keep waiting', async () => {
    const ch = new Channel<number>(1, { maxWaiters: 2 });
    ch.trySend(0);
    const a = track(ch.send(1));
    const b = track(ch.send(2));
    expectError(await rejectionOf(ch.send(3)), ConnectionError, ErrorCode.TooManyWaiters, undefined, 'more than 2 callers waiting');
    expect(ch.waitingSenders).toBe(2);
    expect([a.state, b.state]).toEqual(['pending', 'pending']);
    expect([ch.tryReceive(), ch.tryReceive(), ch.tryReceive()]).toEqual([0, 1, 2]);
  });

  it('the receiver past maxWaiters is refused at once with WS_ERR_TOO_MANY_WAITERS', async () => {
    const ch = new Channel<number>(1, { maxWaiters: 1 });
    const a = track(ch.receive());
    expectError(await rejectionOf(ch.receive()), ConnectionError, ErrorCode.TooManyWaiters, undefined, 'more than 1 callers waiting');
    ch.trySend(5);
    await turn();
    expect(a.value).toBe(5);
  });

  it('a caller that never awaits cannot grow memory: 2,000 sends on a full channel leave at most maxWaiters waiting', async () => {
    const ch = new Channel<number>(1, { maxWaiters: 16 });
    ch.trySend(0);
    const results = Array.from({ length: 2000 }, (_, i) => track(ch.send(i)));
    await turn();
    expect(ch.waitingSenders).toBe(16);
    const refused = results.filter((r) => r.state === 'rejected');
    expect(refused.length).toBe(2000 - 16);
    expect((refused[0]!.error as ConnectionError).code).toBe(ErrorCode.TooManyWaiters);
    ch.close();
  });

  it('the default bound is 1024 waiters per side', async () => {
    const ch = new Channel<number>(1);
    ch.trySend(0);
    const results = Array.from({ length: 1025 }, (_, i) => track(ch.send(i)));
    await turn();
    expect(ch.waitingSenders).toBe(1024);
    expect((results[1024]!.error as ConnectionError).code).toBe(ErrorCode.TooManyWaiters);
    ch.close();
  });
});

describe('AbortSignal', () => {
  it('aborting a waiting send rejects it with WS_ERR_ABORTED, carries the reason as cause, and removes its value', async () => {
    const ch = new Channel<number>(1);
    ch.trySend(1);
    const ac = new AbortController();
    const p = ch.send(2, ac.signal);
    const reason = new Error('user gave up');
    ac.abort(reason);
    const err = await rejectionOf(p);
    expectError(err, ConnectionError, ErrorCode.Aborted, undefined, 'aborted');
    expect((err as Error).cause).toBe(reason);
    expect(ch.waitingSenders).toBe(0);
    expect(ch.tryReceive()).toBe(1);
    expect(ch.tryReceive()).toBeUndefined();
  });

  it('aborting a waiting receive rejects it with WS_ERR_ABORTED, and a later value goes to the next receiver', async () => {
    const ch = new Channel<number>(1);
    const ac = new AbortController();
    const aborted = ch.receive(ac.signal);
    const next = ch.receive();
    ac.abort();
    expectError(await rejectionOf(aborted), ConnectionError, ErrorCode.Aborted, undefined, 'aborted');
    ch.trySend(9);
    expect(await withTimeout(next, 'the second receiver')).toBe(9);
  });

  it('a signal already aborted ends the wait at once with WS_ERR_ABORTED', async () => {
    const ch = new Channel<number>(1);
    ch.trySend(1);
    expectError(await rejectionOf(ch.send(2, AbortSignal.abort())), ConnectionError, ErrorCode.Aborted, undefined, 'aborted');
    const empty = new Channel<number>(1);
    expectError(await rejectionOf(empty.receive(AbortSignal.abort())), ConnectionError, ErrorCode.Aborted, undefined, 'aborted');
  });

  it('a signal already aborted sends and takes nothing, even with room or a value waiting', async () => {
    const ch = new Channel<number>(2);
    expectError(await rejectionOf(ch.send(1, AbortSignal.abort())), ConnectionError, ErrorCode.Aborted, undefined, 'aborted');
    expect(ch.length).toBe(0);
    ch.trySend(7);
    expectError(await rejectionOf(ch.receive(AbortSignal.abort())), ConnectionError, ErrorCode.Aborted, undefined, 'aborted');
    expect(ch.length).toBe(1);
    expect(ch.tryReceive()).toBe(7);
  });

  it('a wait that completes first is not affected by a later abort', async () => {
    const ch = new Channel<number>(1);
    const ac = new AbortController();
    const r = ch.receive(ac.signal);
    ch.trySend(3);
    ac.abort();
    expect(await withTimeout(r, 'receive')).toBe(3);
  });
});

describe('async iteration', () => {
  it('for await yields every value in order as it arrives, and ends when the channel closes', async () => {
    const ch = new Channel<number>(2);
    const got: number[] = [];
    const consumer = (async () => {
      for await (const v of ch) got.push(v);
    })();
    for (let i = 0; i < 10; i++) await ch.send(i);
    await turn();
    ch.close();
    await withTimeout(consumer, 'the iteration to end');
    expect(got).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('iteration yields the values left inside at close, then ends', async () => {
    const ch = new Channel<string>(3);
    ch.trySend('a');
    ch.trySend('b');
    ch.close();
    const got: string[] = [];
    for await (const v of ch) got.push(v);
    expect(got).toEqual(['a', 'b']);
  });

  it('an iteration waiting on an empty channel ends when the channel closes', async () => {
    const ch = new Channel<number>(1);
    const consumer = track(
      (async () => {
        for await (const _ of ch) throw new Error('no value expected');
        return 'ended';
      })(),
    );
    await turn();
    expect(consumer.state).toBe('pending');
    ch.close();
    expect(await withTimeout(consumer.promise, 'the iteration to end')).toBe('ended');
  });
});
