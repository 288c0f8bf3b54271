/**
 * The Autobahn|Testsuite client driver (fuzzingserver mode): ask the suite how many cases there
 * are, run each one by echoing every message it sends, then ask it to write its reports.
 *
 *   npm run autobahn-client -- --url ws://127.0.0.1:9001 [--agent wschan] [--cases 1-300] [--deflate]
 */
import { connect } from '../src/index.js';
import { parseArgs } from './args.js';

const { flags } = parseArgs(process.argv.slice(2));
const base = String(flags.get('url') ?? 'ws://127.0.0.1:9001').replace(/\/$/, '');
const agent = String(flags.get('agent') ?? 'wschan');
const deflate = flags.has('deflate') && flags.get('deflate') !== 'false';
const limits = { maxMessageSize: 64 * 1024 * 1024, maxFrameSize: 64 * 1024 * 1024, closeTimeout: 2000, handshakeTimeout: 10_000 };

async function caseCount(): Promise<number> {
  const conn = await connect(`${base}/getCaseCount`, limits);
  let count = Number.NaN;
  for await (const m of conn) count = Number(m.data.toString());
  if (!Number.isInteger(count)) throw new Error('getCaseCount returned no number');
  return count;
}

async function runCase(i: number): Promise<void> {
  try {
    const conn = await connect(`${base}/runCase?case=${i}&agent=${encodeURIComponent(agent)}`, {
      ...limits,
      deflate: deflate ? { threshold: 0 } : false,
      handleData: (c, data, isBinary) => c.write(data, isBinary),
    });
    await conn.closed;
  } catch (err) {
    // A refused or broken case is the suite's to judge; go on with the next one.
    process.stderr.write(`case ${i}: ${(err as Error).message}\n`);
  }
}

async function updateReports(): Promise<void> {
  const conn = await connect(`${base}/updateReports?agent=${encodeURIComponent(agent)}`, limits);
  await conn.closed;
}

const range = flags.get('cases');
const total = await caseCount();
let first = 1;
let last = total;
if (typeof range === 'string') {
  const [a, b] = range.split('-').map(Number);
  first = a ?? 1;
  last = Math.min(total, b ?? first);
}
console.log(`autobahn: running cases ${first}..${last} of ${total} as agent ${agent}${deflate ? ' (deflate)' : ''}`);
const started = Date.now();
for (let i = first; i <= last; i++) {
  await runCase(i);
  if (i % 50 === 0) console.log(`autobahn: ${i}/${last} (${((Date.now() - started) / 1000).toFixed(0)} s)`);
}
await updateReports();
console.log(`autobahn: done in ${((Date.now() - started) / 1000).toFixed(1)} s; reports updated`);
