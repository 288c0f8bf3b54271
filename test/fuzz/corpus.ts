/** Loads the seed corpus kept in test/fuzz/corpus (RFC 6455 §5.7 and RFC 7692 §7.2.3 vectors, conformance shapes). */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const dir = fileURLToPath(new URL('./corpus/', import.meta.url));
const lines = (file: string): string[] =>
  readFileSync(dir + file, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '' && !l.startsWith('#'));

/** Frames as a server sends them (unmasked). */
export const FRAME_SEEDS: Buffer[] = lines('frames.hex').map((l) => Buffer.from(l.replace(/\s+/g, ''), 'hex'));

/** Request heads, with CRLF line ends. */
export const REQUEST_SEEDS: Buffer[] = readFileSync(dir + 'requests.txt', 'utf8')
  .split('\n')
  .filter((l) => !l.startsWith('#'))
  .join('\n')
  .split('----\n')
  .map((r) => Buffer.from(r.replace(/\n/g, '\r\n'), 'latin1'));

/** Sec-WebSocket-Extensions values. */
export const EXTENSION_SEEDS: string[] = lines('extensions.txt');
