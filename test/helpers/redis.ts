/**
 * A real redis-server per test (no mocks): started on a free loopback port with no persistence,
 * stopped (or killed and restarted on the same port) by the test. A machine without the binary
 * fails the test with a message that says how to install it (CI installs it: never skipped).
 */
import { fork, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer, connect as netConnect } from 'node:net';
import { existsSync } from 'node:fs';
import { ROOT } from '../examples/run.js';
import { withTimeout } from './net.js';

let checked = false;
/** Throw a clear error when redis-server cannot be run (`env`: whose PATH to search). */
export function requireRedisServer(env: NodeJS.ProcessEnv = process.env): void {
  if (checked && env === process.env) return;
  const r = spawnSync('redis-server', ['--version'], { encoding: 'utf8', env });
  if (r.error !== undefined || r.status !== 0) {
    throw new Error('redis-server is not on PATH: these tests need a real one (Debian: apt-get install -y redis-server; .ci/run installs it)');
  }
  if (env === process.env) checked = true;
}

/** A free TCP port on 127.0.0.1 (the kernel's pick, released at once). */
export async function freePort(): Promise<number> {
  const s = createServer();
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

/** Send one command in RESP and read one reply, as text (enough for PING and PUBSUB). */
export async function redisCommand(port: number, ...args: string[]): Promise<string> {
  const socket = netConnect({ port, host: '127.0.0.1' });
  socket.on('error', () => {});
  try {
    await withTimeout(once(socket, 'connect'), 1000, 'connect to redis-server');
    socket.write(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`);
    const [chunk] = (await withTimeout(once(socket, 'data'), 1000, 'a reply from redis-server')) as [Buffer];
    return chunk.toString();
  } finally {
    socket.destroy();
  }
}

/** The channel names in a RESP array reply (PUBSUB CHANNELS / SHARDCHANNELS), sorted. */
export async function pubsubChannels(port: number, sub: 'CHANNELS' | 'SHARDCHANNELS' = 'CHANNELS'): Promise<string[]> {
  const reply = await redisCommand(port, 'PUBSUB', sub);
  const lines = reply.split('\r\n');
  const out: string[] = [];
  for (let i = 1; i < lines.length; i++) if (lines[i - 1]!.startsWith('$')) out.push(lines[i]!);
  return out.sort();
}

export class RedisServer {
  readonly port: number;
  #proc: ChildProcess | undefined;

  private constructor(port: number) {
    this.port = port;
  }

  static async start(): Promise<RedisServer> {
    requireRedisServer();
    const r = new RedisServer(await freePort());
    await r.start();
    return r;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** (Re)start on the same port; resolves when it answers PING. */
  async start(): Promise<void> {
    const proc = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    this.#proc = proc;
    let exited = false;
    proc.on('exit', () => (exited = true));
    await this.#waitPing(() => exited);
    if (exited) throw new Error(`redis-server exited at start on port ${this.port} (is the port taken?)`);
  }

  async #waitPing(exited: () => boolean): Promise<void> {
    const deadline = Date.now() + 15_000;
    while (!exited() && Date.now() < deadline) {
      try {
        if ((await redisCommand(this.port, 'PING')).startsWith('+PONG')) return;
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    if (!exited()) throw new Error(`redis-server on port ${this.port} did not answer PING within 15 s`);
  }

  /** SIGKILL: the connections drop at once, as when the machine dies. */
  async kill(): Promise<void> {
    await this.#signal('SIGKILL');
  }

  /**
   * Stop Redis executing PUBLISH (and every other write command) for `ms`, and return once all it
   * executed before is written to its sockets. Redis answers a PUBLISH before it writes the message
   * to the subscribers (both are written at the end of its event-loop turn, the publisher's reply
   * first), so a SIGKILL can land between the two: the publisher is told N subscribers, fewer got
   * it (docs/scaling.md). After `quiesce()` a kill cannot land there: the PUBLISHes still to come
   * wait unexecuted, and fail, reaching nobody.
   */
  async quiesce(ms: number): Promise<void> {
    const reply = await redisCommand(this.port, 'CLIENT', 'PAUSE', String(ms), 'WRITE');
    if (!reply.startsWith('+OK')) throw new Error(`CLIENT PAUSE ${ms} WRITE answered ${reply}`);
    // A command on a new connection runs in a later turn of Redis's event loop, after the turn
    // that paused finished its writes (PING is not a write command: the pause lets it through).
    if (!(await redisCommand(this.port, 'PING')).startsWith('+PONG')) throw new Error('redis-server did not answer PING after CLIENT PAUSE');
  }

  /** SIGTERM and wait for the exit. Idempotent. */
  async stop(): Promise<void> {
    await this.#signal('SIGTERM');
  }

  async #signal(sig: NodeJS.Signals): Promise<void> {
    const proc = this.#proc;
    this.#proc = undefined;
    if (proc === undefined || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = once(proc, 'exit');
    proc.kill(sig);
    await exited;
  }
}

/** A fleet node (dist/stress-tests/redis-node.js) in its own process, driven over IPC. */
export class FleetNode {
  readonly port: number;
  readonly events: Array<{ event: string; [k: string]: unknown }> = [];
  readonly #proc: ChildProcess;
  readonly #waiting = new Map<number, { resolve: (v: any) => void; reject: (e: Error) => void }>();
  #next = 1;
  output = '';

  private constructor(proc: ChildProcess, port: number) {
    this.#proc = proc;
    this.port = port;
  }

  /** `redis`: one Redis's URL, or the root nodes of a Redis Cluster. */
  static async start(redis: string | { cluster: string[] }, args: string[] = []): Promise<FleetNode> {
    const file = `${ROOT}dist/stress-tests/redis-node.js`;
    if (!existsSync(file)) throw new Error(`${file} is missing: run \`npm run build\` first (npm test does)`);
    const where = typeof redis === 'string' ? ['--redis', redis] : ['--cluster', redis.cluster.join(',')];
    const proc = fork(file, [...where, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
    let out = '';
    proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    let node: FleetNode | undefined;
    const listening = new Promise<number>((resolve, reject) => {
      proc.on('message', (m: any) => {
        if (node === undefined) {
          if (m.event === 'listening') resolve(m.port as number);
          return;
        }
        node.#onMessage(m);
      });
      proc.on('exit', (code) => reject(new Error(`fleet node exited (${code}) before listening: ${out}`)));
    });
    const port = await withTimeout(listening, 30_000, 'a fleet node to listen and connect to Redis');
    node = new FleetNode(proc, port);
    proc.stdout!.on('data', (d: Buffer) => (node!.output += d.toString()));
    proc.on('exit', () => {
      for (const w of node!.#waiting.values()) w.reject(new Error(`fleet node exited: ${out}`));
      node!.#waiting.clear();
    });
    nodes.add(node);
    return node;
  }

  #onMessage(m: any): void {
    if (typeof m.id === 'number') {
      const w = this.#waiting.get(m.id);
      this.#waiting.delete(m.id);
      if (m.ok) w?.resolve(m.value);
      else w?.reject(new Error(String(m.value)));
    } else this.events.push(m);
  }

  request<T = unknown>(cmd: string, args: Record<string, unknown> = {}): Promise<T> {
    const id = this.#next++;
    return withTimeout(
      new Promise<T>((resolve, reject) => {
        this.#waiting.set(id, { resolve, reject });
        this.#proc.send({ id, cmd, ...args });
      }),
      10_000,
      `fleet node ${this.port}: ${cmd}`,
    );
  }

  stats(): Promise<NodeStats> {
    return this.request<NodeStats>('stats');
  }

  get exited(): boolean {
    return this.#proc.exitCode !== null || this.#proc.signalCode !== null;
  }

  /** Close the adapter and the server, and wait for the process to exit by itself. */
  async close(): Promise<number | null> {
    nodes.delete(this);
    if (this.exited) return this.#proc.exitCode;
    const exit = once(this.#proc, 'exit');
    await this.request('close');
    const [code] = (await withTimeout(exit, 5000, 'the fleet node to exit')) as [number | null];
    return code;
  }

  kill(): void {
    nodes.delete(this);
    this.#proc.kill('SIGKILL');
  }
}

export interface NodeStats {
  server: { published: number; queued: number; delivered: number; dropped: number; conflated: number };
  redis: { published: number; sent: number; reached: number; unsent: number; failed: number; dropped: number; queued: number; received: number; skippedOwn: number; malformed: number; outages: number; subscribedTopics: number };
  state: string;
  clients: number;
  topics: string[];
}

const nodes = new Set<FleetNode>();
/** Kill the fleet nodes a failed test left running (call in afterEach). */
export function killFleet(): void {
  for (const n of nodes) n.kill();
  nodes.clear();
}
