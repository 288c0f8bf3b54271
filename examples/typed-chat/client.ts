/**
 * A Node client of the typed chat, with the same protocol module as the server:
 *
 *   node dist/examples/typed-chat/client.js --url ws://127.0.0.1:8080/ --name ada [--say "hi"]
 *        [--until "bob: hello"]   exit once this line has been printed (else run until Ctrl-C)
 *
 * Prints `welcome ...`, `said <from>: <text>` and `presence ...` lines.
 */
import { TypedClient } from '../../src/typed/index.js';
import { chat } from './protocol.js';

const argv = process.argv.slice(2);
const arg = (name: string): string | undefined => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
};
const url = arg('--url') ?? 'ws://127.0.0.1:8080/';
const name = arg('--name') ?? 'node';
const say = arg('--say');
const until = arg('--until');

let done = false;
const print = (line: string): void => {
  console.log(line);
  if (line === until) done = true;
  if (done && conn !== undefined) void conn.close(1000, 'done').then(() => process.exit(0));
};

const client = new TypedClient(chat)
  .handleMessage('said', (_conn, msg) => print(`said ${msg.from}: ${msg.text}`))
  .handleMessage('presence', (_conn, msg) => print(`presence ${msg.name} ${msg.joined ? 'joined' : 'left'} (${msg.members} here)`))
  .handleErrorMessage((_conn, err) => print(`error ${err.code} ${err.path ?? ''} ${err.rule ?? ''}`));

const conn: Awaited<ReturnType<typeof client.connect>> | undefined = await client.connect(url);
const welcome = await conn.request('join', { name });
print(`welcome ${welcome.you}; members: ${welcome.members.join(', ')}`);
if (say !== undefined) await conn.send('say', { text: say });
void conn.closed.then((info) => {
  console.log(`closed ${info.code}`);
  process.exit(0);
});
