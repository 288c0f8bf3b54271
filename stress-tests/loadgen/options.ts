// Command-line options of the load generator, parsed by hand (no dependency) into one plain,
// structured-clone-safe object that the main thread passes to every worker.

export type Mode = 'echo' | 'burst-subscribe' | 'conn-churn' | 'idle';

export interface Options {
  mode: Mode;
  host: string;
  port: number;
  path: string;
  conns: number;
  /** Payload of every message (already expanded from -m / --size). */
  message: Uint8Array;
  binary: boolean;
  /** Messages per second per connection; 0 = uncapped (pipelined within `window`). */
  rate: number;
  /** Most unanswered messages per connection. */
  window: number;
  durationMs: number;
  drainMs: number;
  workers: number;
  /** Connections being opened at once (TCP connect + handshake in flight), per worker. */
  concurrency: number;
  /** Latency sample: one message in every `sampleEvery`. */
  sampleEvery: number;
  deflate: boolean;
  json: boolean;
  quiet: boolean;
  /** burst-subscribe: messages the server sends per burst and their size. */
  burstCount: number;
  burstSize: number;
  /** burst-subscribe: ask for JSON-like text messages (`__burst:<count>:<size>:json`) instead of binary ones. */
  burstJson: boolean;
  /** burst-subscribe: wait after every client is open before the trigger. */
  settleMs: number;
  /** conn-churn: messages each connection sends (awaiting each echo) before closing. */
  churnMessages: number;
}

export const USAGE = `usage: node dist/stress-tests/loadgen/main.js [--ws] -c <conns> -m <message> -r <rate/conn/s>
         -T <duration> [options] <host:port | ws://host:port/path>

  -c, --connections N   connections (default 1)
  -m, --message TEXT    payload of each message (default 'hello world!!13212312!')
      --size N          payload of N bytes instead of -m (text: 'x'…; binary: a byte pattern)
      --binary          send binary frames (default text)
  -r, --rate N          messages per second per connection; 0 = uncapped (default 0)
      --pipeline        uncapped, same as -r 0
      --window N        most unanswered messages per connection (default: 64 KiB of frames, at most 256)
  -T, --duration D      test duration: 10s, 500ms, 1m (default 10s)
      --drain D         wait for outstanding echoes after the test (default 1s)
  -w, --workers N       worker threads (default 1)
      --concurrency N   connections opening at once per worker (default 256)
      --sample N        latency: sample one message in N (default 16)
      --deflate         offer permessage-deflate; send pre-compressed frames
      --mode M          echo | burst-subscribe | conn-churn | idle (default echo)
      --burst-count N   burst-subscribe: messages in the burst (default 100)
      --burst-size N    burst-subscribe: bytes per message (default 64)
      --burst-json      burst-subscribe: the burst is JSON-like text (compressible; with
                        --deflate, every message must arrive compressed)
      --settle D        burst-subscribe: pause after all clients open (default 500ms)
      --messages N      conn-churn: messages per connection (default 10)
      --json            also print one JSON line with the results (last line of stdout)
  -q, --quiet           no progress lines on stderr
      --ws              accepted for tcpkali compatibility (WebSocket is the only mode)`;

export class UsageError extends Error {
  override name = 'UsageError';
}

export function parseDuration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(text.trim());
  if (m === null) throw new UsageError(`bad duration: ${text}`);
  const n = Number(m[1]);
  const unit = m[2] ?? 's';
  return Math.round(unit === 'ms' ? n : unit === 'm' ? n * 60_000 : n * 1000);
}

function parseCount(text: string | undefined, name: string): number {
  if (text === undefined) throw new UsageError(`${name} needs a value`);
  const m = /^(\d+(?:\.\d+)?)([kKmM]?)$/.exec(text.trim());
  if (m === null) throw new UsageError(`bad number for ${name}: ${text}`);
  const mult = m[2] === 'k' || m[2] === 'K' ? 1e3 : m[2] === 'm' || m[2] === 'M' ? 1e6 : 1;
  return Math.round(Number(m[1]) * mult);
}

const MODES: readonly Mode[] = ['echo', 'burst-subscribe', 'conn-churn', 'idle'];

export function parseOptions(argv: readonly string[]): Options {
  let message: string | undefined;
  let size: number | undefined;
  let window: number | undefined;
  let target: string | undefined;
  const o: Omit<Options, 'message' | 'host' | 'port' | 'path' | 'window'> = {
    mode: 'echo',
    conns: 1,
    binary: false,
    rate: 0,
    durationMs: 10_000,
    drainMs: 1000,
    workers: 1,
    concurrency: 256,
    sampleEvery: 16,
    deflate: false,
    json: false,
    quiet: false,
    burstCount: 100,
    burstSize: 64,
    burstJson: false,
    settleMs: 500,
    churnMessages: 10,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const next = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new UsageError(`${a} needs a value`);
      return v;
    };
    switch (a) {
      case '--ws': break;
      case '-c': case '--connections': o.conns = parseCount(next(), a); break;
      case '-m': case '--message': message = next(); break;
      case '--size': size = parseCount(next(), a); break;
      case '--binary': o.binary = true; break;
      case '-r': case '--rate': o.rate = parseCount(next(), a); break;
      case '--pipeline': o.rate = 0; break;
      case '--window': window = parseCount(next(), a); break;
      case '-T': case '--duration': o.durationMs = parseDuration(next()); break;
      case '--drain': o.drainMs = parseDuration(next()); break;
      case '-w': case '--workers': o.workers = parseCount(next(), a); break;
      case '--concurrency': o.concurrency = parseCount(next(), a); break;
      case '--sample': o.sampleEvery = Math.max(1, parseCount(next(), a)); break;
      case '--deflate': o.deflate = true; break;
      case '--mode': {
        const m = next();
        if (!MODES.includes(m as Mode)) throw new UsageError(`unknown mode: ${m}`);
        o.mode = m as Mode;
        break;
      }
      case '--burst-count': o.burstCount = parseCount(next(), a); break;
      case '--burst-size': o.burstSize = parseCount(next(), a); break;
      case '--burst-json': o.burstJson = true; break;
      case '--settle': o.settleMs = parseDuration(next()); break;
      case '--messages': o.churnMessages = parseCount(next(), a); break;
      case '--json': o.json = true; break;
      case '-q': case '--quiet': o.quiet = true; break;
      case '-h': case '--help': throw new UsageError('');
      default:
        if (a.startsWith('-')) throw new UsageError(`unknown option: ${a}`);
        if (target !== undefined) throw new UsageError(`more than one destination: ${a}`);
        target = a;
    }
  }
  if (target === undefined) throw new UsageError('missing destination host:port');
  const { host, port, path } = parseTarget(target);
  if (o.conns < 1) throw new UsageError('-c must be at least 1');
  if (o.workers < 1) throw new UsageError('--workers must be at least 1');
  o.workers = Math.min(o.workers, o.conns);
  if (o.concurrency < 1) throw new UsageError('--concurrency must be at least 1');
  if (o.burstSize < 0 || o.burstCount < 1) throw new UsageError('bad burst parameters');

  let payload: Uint8Array;
  if (size !== undefined) {
    payload = new Uint8Array(size);
    for (let i = 0; i < size; i++) payload[i] = o.binary ? (i * 31 + 7) & 0xff : 0x78;
  } else {
    payload = new TextEncoder().encode(message ?? 'hello world!!13212312!');
  }
  const frameGuess = payload.length + 14;
  // 64 KiB of frames in flight per connection (at most 256): 16 KiB frames get a window of 4.
  // Measured: with 16 KiB frames a window of 15 was slower than 4 against a raw TCP echo (29k vs 37k/s).
  const defaultWindow = Math.max(2, Math.min(256, Math.floor((64 * 1024) / frameGuess)));
  return { ...o, host, port, path, message: payload, window: Math.max(1, window ?? defaultWindow) };
}

function parseTarget(t: string): { host: string; port: number; path: string } {
  let rest = t;
  let path = '/';
  const scheme = /^wss?:\/\//.exec(rest);
  if (scheme !== null) {
    if (scheme[0] === 'wss://') throw new UsageError('wss:// is not supported (loopback benchmarks use ws://)');
    rest = rest.slice(scheme[0].length);
    const slash = rest.indexOf('/');
    if (slash >= 0) {
      path = rest.slice(slash);
      rest = rest.slice(0, slash);
    }
  }
  const m = /^\[?([^\]]*?)\]?:(\d+)$/.exec(rest);
  if (m === null) throw new UsageError(`destination must be host:port, got ${t}`);
  return { host: m[1] === '' ? '127.0.0.1' : m[1]!, port: Number(m[2]), path };
}
