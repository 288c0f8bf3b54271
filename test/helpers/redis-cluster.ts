/**
 * A real Redis Cluster per test: three redis-server masters (cluster mode, no persistence, no
 * replicas) on free loopback ports, joined with `redis-cli --cluster create`, ready when every node
 * says `cluster_state:ok`. Each node can be killed and restarted on its port with its nodes.conf
 * (it rejoins with its slots). `stop()` kills them all and removes their folder, also after a failure.
 */
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort, redisCommand, requireRedisServer } from './redis.js';

const run = promisify(execFile);

export class RedisCluster {
  readonly ports: number[];
  readonly #dir: string;
  readonly #procs: Array<ChildProcess | undefined>;

  private constructor(ports: number[], dir: string) {
    this.ports = ports;
    this.#dir = dir;
    this.#procs = ports.map(() => undefined);
  }

  /** Three masters with the 16384 slots split between them; resolves when the cluster is ok. */
  static async start(masters = 3): Promise<RedisCluster> {
    requireRedisServer();
    const cli = spawnSync('redis-cli', ['--version'], { encoding: 'utf8' });
    if (cli.error !== undefined || cli.status !== 0) throw new Error('redis-cli is not on PATH: the cluster tests need it (Debian: apt-get install -y redis-tools; redis-server depends on it)');
    const ports: number[] = [];
    while (ports.length < masters) {
      const p = await freePort();
      // The cluster bus listens on port + 10000: both must be free.
      if (p + 10000 < 65536 && !ports.includes(p)) ports.push(p);
    }
    const cluster = new RedisCluster(ports, mkdtempSync(join(tmpdir(), 'wschan-cluster-')));
    try {
      await Promise.all(ports.map((_, i) => cluster.restart(i)));
      await run('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes'], { timeout: 15_000 });
      await cluster.waitOk();
    } catch (error) {
      await cluster.stop();
      throw error;
    }
    return cluster;
  }

  get urls(): string[] {
    return this.ports.map((p) => `redis://127.0.0.1:${p}`);
  }

  /** Resolves when every running node reports `cluster_state:ok`. */
  async waitOk(timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = '';
    while (Date.now() < deadline) {
      const states = await Promise.all(this.ports.map((p) => redisCommand(p, 'CLUSTER', 'INFO').then((r) => /cluster_state:(\w+)/.exec(r)?.[1] ?? r, (e: Error) => e.message)));
      if (states.every((s) => s === 'ok')) return;
      last = states.join(', ');
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`the Redis Cluster on ${this.ports.join(', ')} is not ok after ${timeoutMs} ms: ${last}`);
  }

  /** The hash slot of `key`, as the cluster computes it (CLUSTER KEYSLOT). */
  async keyslot(key: string): Promise<number> {
    const reply = await redisCommand(this.ports[0]!, 'CLUSTER', 'KEYSLOT', key);
    return Number(/^:(\d+)/.exec(reply)![1]);
  }

  /** The port of the master that owns `slot` (from each node's own line of CLUSTER NODES). */
  async owner(slot: number): Promise<number> {
    for (const port of this.ports) {
      const nodes = await redisCommand(port, 'CLUSTER', 'NODES');
      const mine = nodes.split('\n').find((l) => l.includes('myself'));
      const ranges = (mine ?? '').trim().split(' ').slice(8);
      if (ranges.some((r) => {
        const [a, b] = r.split('-').map(Number);
        return slot >= a! && slot <= (b ?? a)!;
      })) return port;
    }
    throw new Error(`no master of the cluster owns slot ${slot}`);
  }

  /** (Re)start node `i` on its port with its nodes.conf; resolves when it answers PING. */
  async restart(i: number): Promise<void> {
    const port = this.ports[i]!;
    const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--cluster-enabled', 'yes', '--cluster-config-file', join(this.#dir, `nodes-${port}.conf`), '--dir', this.#dir, '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    this.#procs[i] = proc;
    let exited = false;
    proc.on('exit', () => (exited = true));
    // Bounds a hang, measures nothing: generous for a loaded shared machine (as RedisServer.start).
    const deadline = Date.now() + 15_000;
    while (!exited && Date.now() < deadline) {
      if (await redisCommand(port, 'PING').then((r) => r.startsWith('+PONG'), () => false)) return;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(exited ? `redis-server (cluster node) exited at start on port ${port} (is the port taken?)` : `redis-server on port ${port} did not answer PING within 15 s`);
  }

  /** SIGKILL node `i`: its connections drop at once. */
  async kill(i: number): Promise<void> {
    const proc = this.#procs[i];
    this.#procs[i] = undefined;
    if (proc === undefined || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = once(proc, 'exit');
    proc.kill('SIGKILL');
    await exited;
  }

  /** Kill every node and remove their folder. Idempotent. */
  async stop(): Promise<void> {
    await Promise.all(this.ports.map((_, i) => this.kill(i)));
    rmSync(this.#dir, { recursive: true, force: true });
  }
}
