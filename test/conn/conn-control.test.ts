/**
 * Conn, control frames: automatic pongs (RFC 6455 §5.5.2), handlePing/handlePong, conn.ping(),
 * and keepalive (pingInterval, rtt, pongTimeout).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ConnectionError, ErrorCode, Opcode, WebSocketError } from '../../src/protocol/index.js';
import { blockWriter, destroyAll, expectError, open, sleep, waitUntil, withTimeout } from './helpers.js';

afterEach(destroyAll);

describe('ping and pong from the peer', () => {
  it('a Ping is answered automatically with a Pong carrying the same payload, and handlePing is called with it', async () => {
    const { peer, rec } = await open();
    const full = Buffer.alloc(125, 0x41);
    peer.send(Opcode.Ping, 'abc');
    peer.send(Opcode.Ping, '');
    peer.send(Opcode.Ping, full);
    const pongs = await peer.waitFrames(3, (f) => f.opcode === Opcode.Pong);
    expect(pongs.map((f) => f.payload)).toEqual([Buffer.from('abc'), Buffer.alloc(0), full]);
    expect(rec.pings).toEqual([Buffer.from('abc'), Buffer.alloc(0), full]);
  });

  it('a client answers Pings with masked Pongs', async () => {
    const { peer } = await open({ role: 'client' });
    peer.send(Opcode.Ping, 'from server');
    const pong = await peer.waitFrame(Opcode.Pong);
    expect(pong.masked).toBe(true);
    expect(pong.payload.toString()).toBe('from server');
  });

  it('an unsolicited Pong is reported to handlePong and not answered', async () => {
    const { peer, rec } = await open();
    peer.send(Opcode.Pong, 'heartbeat');
    await waitUntil(() => rec.pongs.length === 1, 'handlePong');
    expect(rec.pongs[0]!.toString()).toBe('heartbeat');
    await sleep(20);
    expect(peer.frames).toEqual([]);
  });

  it('a Pong goes out before data queued in the same turn', async () => {
    const { conn, peer } = await open();
    conn.write('data');
    conn.pong('first');
    const frames = await peer.waitFrames(2);
    expect(frames.map((f) => f.opcode)).toEqual([Opcode.Pong, Opcode.Text]);
  });

  it('pongs owed to a peer that pings and never reads are bounded, and the latest Ping is answered', async () => {
    const { conn, peer, rec } = await open();
    peer.pause();
    await blockWriter(conn);
    for (let i = 0; i < 100; i++) peer.send(Opcode.Ping, `p${i}`);
    await waitUntil(() => rec.pings.length === 100, '100 pings');
    peer.resume();
    await waitUntil(() => peer.count(Opcode.Pong) > 0, 'the pongs');
    await sleep(50);
    const pongs = peer.frames.filter((f) => f.opcode === Opcode.Pong).map((f) => f.payload.toString());
    expect(pongs.length).toBeLessThanOrEqual(16);
    expect(pongs.at(-1)).toBe('p99');
  });
});

describe('conn.ping()', () => {
  it('ping(payload) sends a Ping with that payload and returns true', async () => {
    const { conn, peer } = await open();
    expect(conn.ping('hello?')).toBe(true);
    expect(conn.ping(Buffer.alloc(125, 1))).toBe(true);
    expect(conn.ping()).toBe(true);
    const pings = await peer.waitFrames(3, (f) => f.opcode === Opcode.Ping);
    expect(pings.map((f) => f.payload.length)).toEqual([6, 125, 0]);
    expect(pings[0]!.payload.toString()).toBe('hello?');
  });

  it('ping() with more than 125 bytes throws WS_ERR_INVALID_ARGUMENT and sends nothing (RFC 6455 §5.5)', async () => {
    const { conn, peer } = await open();
    let err: unknown;
    try {
      conn.ping(Buffer.alloc(126));
    } catch (e) {
      err = e;
    }
    expectError(err, WebSocketError, ErrorCode.InvalidArgument, undefined, 'control frame payload is 126 bytes; at most 125 allowed');
    expect(() => conn.ping('é'.repeat(63))).toThrow('control frame payload is 126 bytes');
    expect(() => conn.pong(Buffer.alloc(200))).toThrow('at most 125 allowed');
    await sleep(20);
    expect(peer.frames).toEqual([]);
    expect(conn.state).toBe('open');
  });

  it('pings waiting behind a peer that does not read are bounded: past 16, ping() returns false and queues nothing', async () => {
    const { conn, peer } = await open();
    peer.pause();
    await blockWriter(conn);
    const results = Array.from({ length: 1000 }, (_, i) => conn.ping(`p${i}`));
    expect(results.filter(Boolean).length).toBe(16);
    expect(results.slice(0, 16).every(Boolean)).toBe(true);
    peer.resume();
    await waitUntil(() => peer.count(Opcode.Ping) === 16, 'the 16 pings');
    await sleep(50);
    expect(peer.frames.filter((f) => f.opcode === Opcode.Ping).map((f) => f.payload.toString())).toEqual(
      Array.from({ length: 16 }, (_, i) => `p${i}`),
    );
    expect(conn.ping('again')).toBe(true); // room again once written
  });

  it('ping() on a closing connection returns false and sends no Ping', async () => {
    const { conn, peer } = await open();
    conn.close();
    expect(conn.ping('late')).toBe(false);
    await peer.waitFrame(Opcode.Close);
    await sleep(20);
    expect(peer.count(Opcode.Ping)).toBe(0);
  });
});

describe('keepalive', () => {
  it('pingInterval sends Pings; when the peer answers, conn.rtt becomes a number and the connection stays open', async () => {
    // A generous pongTimeout: a loaded machine must not turn a slow answer into a failure here.
    const { conn, peer, rec } = await open({ options: { pingInterval: 30, pongTimeout: 5000 } });
    expect(Number.isNaN(conn.rtt)).toBe(true);
    peer.autoPong = true;
    await waitUntil(() => peer.count(Opcode.Ping) >= 3, 'three keepalive pings');
    await waitUntil(() => !Number.isNaN(conn.rtt), 'an rtt');
    expect(conn.rtt).toBeGreaterThanOrEqual(0);
    expect(conn.rtt).toBeLessThan(5000);
    // Every keepalive Ping carries a payload of its own.
    const payloads = peer.frames.filter((f) => f.opcode === Opcode.Ping).map((f) => f.payload.toString());
    expect(new Set(payloads).size).toBe(payloads.length);
    expect(conn.state).toBe('open');
    expect(rec.errors).toEqual([]);
  });

  it("the keepalive's own Pongs only update rtt; Pongs for the application's pings still reach handlePong", async () => {
    const { conn, peer, rec } = await open({ options: { pingInterval: 20, pongTimeout: 5000 } });
    peer.autoPong = true;
    await waitUntil(() => peer.count(Opcode.Ping) >= 2 && !Number.isNaN(conn.rtt), 'keepalive pings answered');
    expect(rec.pongs).toEqual([]);
    conn.ping('mine');
    await waitUntil(() => rec.pongs.length === 1, 'the pong for my ping');
    expect(rec.pongs[0]!.toString()).toBe('mine');
  });

  it('no Pong within pongTimeout ends the connection: handleClose gets 1006 with WS_ERR_PONG_TIMEOUT', async () => {
    const { conn, peer, rec } = await open({ options: { pingInterval: 30, pongTimeout: 60 } });
    const info = await withTimeout(conn.closed, 'the pong timeout');
    expect(peer.count(Opcode.Ping)).toBe(1);
    expect(info.code).toBe(1006);
    expect(info.wasClean).toBe(false);
    expectError(info.error, ConnectionError, ErrorCode.PongTimeout, 1006, 'no pong within 60 ms');
    expect(rec.closes).toEqual([info]);
    expect(rec.errors).toEqual([info.error]);
    await waitUntil(() => peer.gotClose || peer.gotEnd, 'the TCP connection to end');
    expect(conn.state).toBe('closed');
  });

  it('a Pong that does not carry the keepalive payload does not count as the answer', async () => {
    const { conn, peer } = await open({ options: { pingInterval: 30, pongTimeout: 80 } });
    await peer.waitFrame(Opcode.Ping);
    peer.send(Opcode.Pong, 'something else');
    const info = await withTimeout(conn.closed, 'the pong timeout');
    expect(Number.isNaN(conn.rtt)).toBe(true);
    expect((info.error as ConnectionError).code).toBe(ErrorCode.PongTimeout);
  });

  it('keepalive stops when the connection closes: no Ping after the Close frame', async () => {
    const { conn, peer } = await open({ options: { pingInterval: 20, pongTimeout: 1000 } });
    peer.autoPong = true;
    await waitUntil(() => peer.count(Opcode.Ping) >= 1, 'a ping');
    conn.close();
    await peer.waitFrame(Opcode.Close);
    const pingsAtClose = peer.count(Opcode.Ping);
    await sleep(80);
    expect(peer.count(Opcode.Ping)).toBe(pingsAtClose);
    const closeIndex = peer.frames.findIndex((f) => f.opcode === Opcode.Close);
    expect(closeIndex).toBe(peer.frames.length - 1);
  });
});
