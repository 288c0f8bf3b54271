/**
 * `npm run example:rtt [-- --seconds N] [--clients N]`: the RTT server and N Node clients in one
 * process. The clients do nothing: their Pongs are sent by the library automatically.
 */
import { connect } from '../../src/index.js';
import { startRttServer } from './server.js';

const argv = process.argv.slice(2);
const arg = (name: string, fallback: number): number => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? Number(argv[i + 1]) : fallback;
};
const seconds = arg('seconds', Number.NaN);
const clients = arg('clients', 2);
const interval = arg('interval', 2_000);

const rtt = await startRttServer({ port: Number(process.env['PORT'] ?? 8081), interval });
console.log(`wschan rtt example on ${rtt.url}: pinging every ${interval} ms`);
const conns = await Promise.all(Array.from({ length: clients }, () => connect(rtt.url)));

const stop = async (): Promise<void> => {
  await Promise.all(conns.map((c) => c.close()));
  await rtt.close();
  process.exit(0);
};
process.on('SIGINT', () => void stop());
if (Number.isFinite(seconds)) setTimeout(() => void stop(), seconds * 1000);
