/**
 * A Node client for the broadcast example: prints the ticks it receives and its round-trip time
 * (from the library's keepalive pings, `conn.rtt`).
 */
import { connect, type Conn } from '../../src/index.js';

export interface TickClientOptions {
  /** Stop after this many ticks (default: run until closed). */
  count?: number;
  /** Print every Nth tick. */
  every?: number;
  log?: (line: string) => void;
}

export async function runTickClient(url: string, options: TickClientOptions = {}): Promise<{ conn: Conn<undefined>; received: number }> {
  const log = options.log ?? ((line: string) => console.log(line));
  const every = options.every ?? 10;
  const conn = await connect(url, { pingInterval: 1_000 });
  let received = 0;
  for await (const m of conn) {
    const tick = JSON.parse(m.data.toString()) as { type: string; seq: number; time: number; clients: number };
    if (tick.type !== 'tick') continue;
    received++;
    if (received % every === 1 || every === 1) {
      const rtt = Number.isNaN(conn.rtt) ? 'n/a' : `${conn.rtt.toFixed(2)} ms`;
      log(`[client ${conn.id}] tick #${tick.seq}: ${tick.clients} client(s), age ${Date.now() - tick.time} ms, rtt ${rtt}`);
    }
    if (options.count !== undefined && received >= options.count) break;
  }
  if (conn.state === 'open') await conn.close(1000, 'done');
  return { conn, received };
}
