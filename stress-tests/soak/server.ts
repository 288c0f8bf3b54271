/**
 * The soak's server process: an echo server (wschan Server with permessage-deflate, or `ws` for
 * comparison), driven over IPC by soak-deflate.ts so that its memory is its own.
 *
 *   argv: --impl wschan|ws  --deflate off|dedicated|shared  (forked with --expose-gc)
 * IPC in:  {type:'sample', gc?:boolean} | {type:'exit'}
 * IPC out: {type:'listening', port} | {type:'sample', ...ServerSample} | {type:'closed'}
 */
import { Server } from '../../src/index.js';
import { parseArgs } from '../args.js';

export interface ServerSample {
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
  conns: number;
  /** Wire bytes, all connections so far (open ones plus closed ones). */
  bytesIn: number;
  bytesOut: number;
  messages: number;
  errors: number;
  unexpectedCloses: number;
  firstError: string;
  /** CPU time of this process (user + system, ms). */
  cpuMs: number;
}

const { flags } = parseArgs(process.argv.slice(2));
const impl = flags.get('impl') === 'ws' ? 'ws' : 'wschan';
const deflateMode = String(flags.get('deflate') ?? 'dedicated') as 'off' | 'dedicated' | 'shared';

let messages = 0;
let errors = 0;
let unexpectedCloses = 0;
let firstError = '';
let closedBytesIn = 0;
let closedBytesOut = 0;
let shuttingDown = false;
const noteError = (s: string): void => {
  errors++;
  if (firstError === '') firstError = s;
};
const send = (m: object): void => {
  process.send?.(m);
};

let stats: () => { conns: number; bytesIn: number; bytesOut: number };
let shutdown: () => Promise<void>;

if (impl === 'wschan') {
  const server = new Server({
    deflate: deflateMode === 'off' ? false : { mode: deflateMode },
  });
  server.handleData((conn, data, isBinary) => {
    messages++;
    return conn.write(data, isBinary);
  });
  server.handleError((conn, err) => noteError(`conn ${conn.id}: ${err.code} ${err.message}`));
  server.handleUpgradeError((_req, err) => noteError(`upgrade: ${err.status} ${err.message}`));
  server.handleClose((conn, info) => {
    closedBytesIn += conn.bytesIn;
    closedBytesOut += conn.bytesOut;
    if (!shuttingDown && info.code !== 1000 && info.code !== 1001) {
      unexpectedCloses++;
      if (firstError === '') firstError = `conn ${conn.id} closed ${info.code} ${info.reason}`;
    }
  });
  const addr = await server.listen({ port: 0, host: '127.0.0.1' });
  stats = () => {
    let bytesIn = closedBytesIn;
    let bytesOut = closedBytesOut;
    for (const c of server.connections) {
      bytesIn += c.bytesIn;
      bytesOut += c.bytesOut;
    }
    return { conns: server.clientCount, bytesIn, bytesOut };
  };
  shutdown = () => server.close();
  send({ type: 'listening', port: addr.port });
} else {
  const { WebSocketServer } = await import('ws');
  type Sock = { bytesRead: number; bytesWritten: number };
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: deflateMode !== 'off' });
  wss.on('connection', (ws) => {
    const sock = (ws as unknown as { _socket: Sock })._socket;
    ws.on('message', (data, isBinary) => {
      messages++;
      ws.send(data as Buffer, { binary: isBinary });
    });
    ws.on('error', (err) => noteError(`ws: ${err.message}`));
    ws.on('close', (code, reason) => {
      closedBytesIn += sock.bytesRead;
      closedBytesOut += sock.bytesWritten;
      if (!shuttingDown && code !== 1000 && code !== 1001) {
        unexpectedCloses++;
        if (firstError === '') firstError = `ws closed ${code} ${reason.toString()}`;
      }
    });
  });
  await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
  const port = (wss.address() as { port: number }).port;
  stats = () => {
    let bytesIn = closedBytesIn;
    let bytesOut = closedBytesOut;
    for (const ws of wss.clients) {
      const sock = (ws as unknown as { _socket: Sock })._socket;
      bytesIn += sock.bytesRead;
      bytesOut += sock.bytesWritten;
    }
    return { conns: wss.clients.size, bytesIn, bytesOut };
  };
  shutdown = () =>
    new Promise<void>((resolve) => {
      for (const ws of wss.clients) ws.close(1001);
      const t = setTimeout(() => {
        for (const ws of wss.clients) ws.terminate();
      }, 5000);
      wss.close(() => {
        clearTimeout(t);
        resolve();
      });
    });
  send({ type: 'listening', port });
}

const gc = (globalThis as { gc?: () => void }).gc;

process.on('message', (m: { type: string; gc?: boolean }) => {
  if (m.type === 'sample') {
    if (m.gc && gc) {
      gc();
      gc();
    }
    const mem = process.memoryUsage();
    const cpu = process.cpuUsage();
    const sample: ServerSample = {
      rss: mem.rss,
      heapUsed: mem.heapUsed,
      heapTotal: mem.heapTotal,
      external: mem.external,
      arrayBuffers: mem.arrayBuffers,
      ...stats(),
      messages,
      errors,
      unexpectedCloses,
      firstError,
      cpuMs: (cpu.user + cpu.system) / 1000,
    };
    send({ type: 'sample', ...sample });
  } else if (m.type === 'exit') {
    shuttingDown = true;
    void shutdown().then(() => {
      send({ type: 'closed' });
      process.disconnect?.();
      setTimeout(() => process.exit(0), 100).unref();
    });
  }
});
process.on('disconnect', () => {
  if (!shuttingDown) process.exit(3);
});
