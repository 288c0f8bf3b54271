// A client in another process for the typed-message tests: `ws` (a real peer, not wschan).
//   node test/typed/peer.mjs <url> <json array of messages>
// Sends each message in order (a string as text; {"binary":[bytes]} as binary), prints every
// message it receives as `msg <text>` and the close as `close <code> <reason>`, then exits.
// It closes by itself (1000) after `idle` ms without a message (argv[4], default 1500).
import WebSocket from 'ws';

const [url, list, idleArg] = process.argv.slice(2);
const messages = JSON.parse(list);
const idle = Number(idleArg ?? 1500);
const ws = new WebSocket(url);
let timer;
const arm = () => {
  clearTimeout(timer);
  timer = setTimeout(() => ws.close(1000), idle);
};
ws.on('open', () => {
  console.log('open');
  for (const m of messages) ws.send(typeof m === 'string' ? m : Buffer.from(m.binary), { binary: typeof m !== 'string' });
  arm();
});
ws.on('message', (data, isBinary) => {
  console.log(isBinary ? `binary ${Buffer.from(data).toString('hex')}` : `msg ${data.toString()}`);
  arm();
});
ws.on('close', (code, reason) => {
  clearTimeout(timer);
  console.log(`close ${code} ${reason.toString()}`);
  process.exit(0);
});
ws.on('error', (err) => {
  console.log(`error ${err.message}`);
  process.exit(1);
});
