/**
 * The large-messages example: a server that accepts large compressible uploads with
 * permessage-deflate (RFC 7692) and keeps its event loop free while it inflates them. A message
 * whose inflated size passes `threadPoolThreshold` is inflated on libuv's thread pool (and a
 * large reply compressed there), at most `threadPoolConcurrency` jobs of this server at once;
 * up to `threadPoolMaxQueued` jobs holding `threadPoolMaxQueuedBytes` of input wait for a slot,
 * and past that a message is worked through on the loop in ~1 ms slices. README, *Compression*.
 */
import { Server, type Conn } from '../../src/index.js';

export interface LargeMessageOptions {
  port?: number;
  host?: string;
  /** Bytes; larger messages leave the event loop (the default, 128 KiB, is the library's). */
  threadPoolThreshold?: number;
  log?: (line: string) => void;
}

const MiB = 1024 * 1024;

export async function startLargeMessageServer(options: LargeMessageOptions = {}): Promise<{ server: Server; url: string; close(): Promise<void> }> {
  const log = options.log ?? ((line: string) => console.log(line));
  const server = new Server({
    deflate: {
      threshold: 1024, // replies under 1 KiB go uncompressed
      threadPoolThreshold: options.threadPoolThreshold ?? 128 * 1024,
      threadPoolConcurrency: 2, // zlib jobs of this server on the thread pool at once
      threadPoolMaxQueued: 64, // jobs that may wait for a slot ...
      threadPoolMaxQueuedBytes: 64 * MiB, // ... holding at most this much compressed input
    },
    maxMessageSize: 32 * MiB, // an upload of up to 32 MiB once inflated (a bomb stops here, 1009)
    maxInboundBytes: 32 * MiB, // what one connection may hold inbound, counted as it inflates
  });
  let uploads = 0;
  server.handleData((conn: Conn, data, isBinary) => {
    if (data.length < 1024) return conn.write(data, isBinary); // small messages: echo
    uploads++;
    log(`server: upload ${uploads} from client ${conn.id}: ${data.length} bytes`);
    return conn.write(`received ${data.length} bytes`);
  });
  const addr = await server.listen({ port: options.port ?? 8082, host: options.host ?? '127.0.0.1' });
  return { server, url: `ws://${addr.address}:${addr.port}/`, close: () => server.close() };
}
