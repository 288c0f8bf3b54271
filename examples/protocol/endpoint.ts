/**
 * A WebSocket echo endpoint made only of `wschan/protocol`, the sans-I/O core: it takes the bytes
 * a peer sent (`receive`) and hands back the bytes to send (`send`), and never touches a socket,
 * a timer or a promise. Put it behind any transport that carries bytes in order: a TCP socket
 * (examples/protocol/main.ts), a TLS or QUIC stream, a test feeding one byte at a time.
 *
 * What the protocol obliges the endpoint to do, it does here: answer a Ping with a Pong (RFC
 * 6455 §5.5.2), echo a Close and stop (§5.5.1), and fail the connection with the close code the
 * parser or the assembler names (1002, 1007, 1009...).
 */
import {
  FrameParser,
  MessageAssembler,
  Opcode,
  ParseStatus,
  ProtocolError,
  encodeClosePayload,
  encodeFrame,
  parseClosePayload,
} from '../../src/protocol/index.js';

export interface EndpointIO {
  /** Bytes for the peer, in order. */
  send(bytes: Buffer): void;
  /** Nothing more will be sent: end the transport (the server closes TCP first, RFC 6455 §7.1.1). */
  end(): void;
}

export class EchoEndpoint {
  readonly #io: EndpointIO;
  // A server: client frames must be masked (§5.1). No extension negotiated, so RSV1 is refused.
  readonly #parser = new FrameParser({ role: 'server', maxFrameSize: 1 << 20, maxMessageSize: 1 << 20, allowRsv1: false });
  readonly #assembler = new MessageAssembler({ maxMessageSize: 1 << 20 });
  #done = false;
  /** How the connection ended: the peer's close code, or the code we failed it with. */
  closeCode: number | undefined;

  constructor(io: EndpointIO) {
    this.#io = io;
  }

  receive(chunk: Buffer): void {
    if (this.#done) return;
    const p = this.#parser;
    p.push(chunk);
    for (;;) {
      const status = p.advance();
      if (status === ParseStatus.NeedMore) return;
      if (status === ParseStatus.Fail) return this.#fail(p.error!);
      if (p.opcode === Opcode.Ping) {
        this.#io.send(encodeFrame(Opcode.Pong, p.payload));
      } else if (p.opcode === Opcode.Close) {
        const close = parseClosePayload(p.payload);
        if (close instanceof ProtocolError) return this.#fail(close);
        // Echo the status code (none if the peer sent none: 1005 is never sent on the wire).
        return this.#finish(close.code, encodeClosePayload(close.code === 1005 ? undefined : close.code));
      } else if (p.opcode !== Opcode.Pong) {
        // Text, Binary or Continuation: the assembler joins fragments and checks the limits.
        const message = this.#assembler.push(p.payload, p.fin, p.messageOpcode === Opcode.Text, p.compressed);
        if (message === null) return this.#fail(this.#assembler.error!);
        if (message !== undefined) this.#io.send(encodeFrame(p.messageOpcode, message));
      }
    }
  }

  #fail(error: ProtocolError): void {
    this.#finish(error.closeCode, encodeClosePayload(error.closeCode, error.message.slice(0, 100)));
  }

  #finish(code: number, body: Buffer): void {
    this.#done = true;
    this.closeCode = code;
    this.#io.send(encodeFrame(Opcode.Close, body));
    this.#io.end();
  }
}
