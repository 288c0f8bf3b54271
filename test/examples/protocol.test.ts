/**
 * examples/protocol: the sans-I/O echo endpoint made of `wschan/protocol` alone. The example runs
 * as its npm script does; the endpoint is also fed bytes directly, as any transport would.
 */
import { describe, expect, it } from 'vitest';
import { EchoEndpoint } from '../../examples/protocol/endpoint.js';
import { FixedMaskKey, FrameParser, Opcode, ParseStatus, encodeClosePayload, encodeFrame, parseClosePayload } from '../../src/protocol/index.js';
import { runScript } from './run.js';

const KEY = new FixedMaskKey(0x37fa213d).key;

/** An endpoint with what it sent decoded as a client would (unmasked server frames). */
function endpoint(): { ep: EchoEndpoint; sent: () => { opcode: number; payload: string }[]; ended: () => boolean } {
  const out: Buffer[] = [];
  let ended = false;
  const ep = new EchoEndpoint({ send: (b) => out.push(b), end: () => (ended = true) });
  const sent = (): { opcode: number; payload: string }[] => {
    const p = new FrameParser({ role: 'client', maxFrameSize: 1 << 20, maxMessageSize: 1 << 20, allowRsv1: false });
    p.push(Buffer.concat(out));
    const frames: { opcode: number; payload: string }[] = [];
    while (p.advance() === ParseStatus.Frame) frames.push({ opcode: p.opcode, payload: p.opcode === Opcode.Close ? JSON.stringify(parseClosePayload(p.payload)) : p.payload.toString() });
    return frames;
  };
  return { ep, sent, ended: () => ended };
}

describe('examples/protocol (npm run example:protocol)', () => {
  it("echoes wschan's client over a hand-made handshake: pong, text, binary, then a clean 1000", async () => {
    const r = await runScript('examples/protocol/main.js', []);
    expect(r.code, r.out).toBe(0);
    expect(r.out.split('\n').filter((l) => l !== '')).toEqual([
      'client: pong are you there?',
      'client: echo text hello, sans-I/O',
      'client: echo binary 010203',
      'client: closed 1000 cleanly',
      'server: connection ended with 1000',
    ]);
  });
});

describe('EchoEndpoint: bytes in, bytes out', () => {
  it('assembles a fragmented, masked text message fed one byte at a time, and answers a ping between its fragments', () => {
    const { ep, sent } = endpoint();
    const wire = Buffer.concat([
      encodeFrame(Opcode.Text, Buffer.from('hel'), { fin: false, maskKey: KEY }),
      encodeFrame(Opcode.Ping, Buffer.from('p'), { maskKey: KEY }),
      encodeFrame(Opcode.Continuation, Buffer.from('lo'), { maskKey: KEY }),
    ]);
    for (const byte of wire) ep.receive(Buffer.from([byte]));
    expect(sent()).toEqual([
      { opcode: Opcode.Pong, payload: 'p' },
      { opcode: Opcode.Text, payload: 'hello' },
    ]);
  });

  it('echoes a Close with its code and ends; later bytes are ignored', () => {
    const { ep, sent, ended } = endpoint();
    ep.receive(encodeFrame(Opcode.Close, encodeClosePayload(1001, 'away'), { maskKey: KEY }));
    ep.receive(encodeFrame(Opcode.Text, Buffer.from('late'), { maskKey: KEY }));
    expect(sent()).toEqual([{ opcode: Opcode.Close, payload: JSON.stringify({ code: 1001, reason: '' }) }]);
    expect(ended()).toBe(true);
    expect(ep.closeCode).toBe(1001);
  });

  it('fails an unmasked client frame with 1002 (RFC 6455 §5.1) and invalid UTF-8 with 1007 (§8.1)', () => {
    const a = endpoint();
    a.ep.receive(encodeFrame(Opcode.Text, Buffer.from('no mask')));
    expect(a.ended()).toBe(true);
    expect(a.ep.closeCode).toBe(1002);
    expect(JSON.parse(a.sent()[0]!.payload)).toMatchObject({ code: 1002 });

    const b = endpoint();
    b.ep.receive(encodeFrame(Opcode.Text, Buffer.from([0x61, 0xc3, 0x28]), { maskKey: KEY }));
    expect(b.ep.closeCode).toBe(1007);
    expect(JSON.parse(b.sent()[0]!.payload)).toMatchObject({ code: 1007 });
  });
});
