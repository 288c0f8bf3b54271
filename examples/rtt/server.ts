/**
 * The RTT example. Every `interval` ms the server sends each client a Ping whose 8-byte payload is
 * the send time (a float64 from performance.now()); RFC 6455 §5.5.3 makes the client answer with a
 * Pong carrying the same payload, so `handlePong` can compute the round trip with no state per
 * ping. The library's own keepalive (`pingInterval`) measures the same thing as `conn.rtt`.
 */
import { Server } from '../../src/index.js';

export interface RttOptions {
  port?: number;
  host?: string;
  interval?: number;
  log?: (line: string) => void;
}

export async function startRttServer(options: RttOptions = {}): Promise<{ server: Server<{ rtts: number[] }>; url: string; close(): Promise<void> }> {
  const log = options.log ?? ((line: string) => console.log(line));
  const interval = options.interval ?? 2_000;
  const server = new Server<{ rtts: number[] }>({ pingInterval: interval });
  server
    .handleUpgrade(() => ({ data: { rtts: [] } }))
    .handleOpen((conn) => log(`client ${conn.id} connected`))
    .handlePong((conn, payload) => {
      if (payload.length !== 8) return; // not one of ours
      const rtt = performance.now() - payload.readDoubleBE(0);
      conn.data.rtts.push(rtt);
      if (conn.data.rtts.length > 100) conn.data.rtts.shift();
      const builtIn = Number.isNaN(conn.rtt) ? 'n/a' : `${conn.rtt.toFixed(3)} ms`;
      log(`client ${conn.id}: rtt ${rtt.toFixed(3)} ms (built-in conn.rtt: ${builtIn})`);
    })
    .handleClose((conn) => log(`client ${conn.id} left`));
  const timer = setInterval(() => {
    const payload = Buffer.allocUnsafe(8);
    payload.writeDoubleBE(performance.now(), 0);
    // The same 8 bytes for everyone: one buffer, many pings.
    for (const conn of server.connections) conn.ping(payload);
  }, interval);
  const addr = await server.listen({ port: options.port ?? 8081, host: options.host ?? '127.0.0.1' });
  return {
    server,
    url: `ws://${addr.address}:${addr.port}/`,
    async close() {
      clearInterval(timer);
      await server.close();
    },
  };
}
