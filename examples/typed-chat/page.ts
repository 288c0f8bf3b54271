/**
 * The typed chat's web page. It speaks the wire format of wschan/typed with a tiny hand-written
 * client (a dozen lines: `{"t":kind,"d":payload}`, `"id"` for the join request, `"re"` for its
 * reply, `$error` for errors) rather than a bundle of the library: the page needs no build step,
 * and the server checks every message against the protocol anyway. What the page needs of the
 * protocol it reads from `/protocol.json` (the same TypeBox schemas, as JSON Schema): the kinds it
 * may send and the length limits of the name and text fields.
 * `window.chat` is there for the test that drives the page in Chromium.
 */
export const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>wschan typed chat</title>
<style>
  body { font: 15px system-ui, sans-serif; margin: 2rem; color: #222; max-width: 40rem; }
  #log { font: 13px monospace; white-space: pre-wrap; border: 1px solid #ccc; padding: .5rem; height: 20em; overflow: auto; }
  .error { color: #b00; }
</style>
</head>
<body>
<h1>wschan typed chat</h1>
<p>Status: <b id="status">connecting…</b></p>
<form id="join"><input id="name" placeholder="your name" required> <button>join</button></form>
<form id="say" hidden><input id="text" size="50" placeholder="say something"> <button>send</button></form>
<div id="log"></div>
<script type="module">
  const $ = (id) => document.getElementById(id);
  const lines = [];
  const log = (line, cls) => {
    lines.push(line);
    const div = document.createElement('div');
    if (cls) div.className = cls;
    div.textContent = line;
    $('log').append(div);
  };
  const protocol = await (await fetch('/protocol.json')).json();
  $('name').maxLength = protocol.client.join.properties.name.maxLength;
  $('text').maxLength = protocol.client.say.properties.text.maxLength;

  // The wire format of wschan/typed, by hand.
  const ws = new WebSocket(location.origin.replace(/^http/, 'ws') + '/');
  let nextId = 1;
  const waiting = new Map();
  const send = (t, d) => {
    if (!(t in protocol.client)) throw new Error('not a client kind: ' + t);
    ws.send(JSON.stringify({ t, d }));
  };
  const request = (t, d) => new Promise((resolve, reject) => {
    const id = nextId++;
    waiting.set(id, { resolve, reject });
    ws.send(JSON.stringify({ t, id, d }));
  });
  const handlers = {
    said: (m) => log(m.from + ': ' + m.text),
    presence: (m) => log('* ' + m.name + (m.joined ? ' joined' : ' left') + ' (' + m.members + ' here)'),
  };
  ws.onmessage = (e) => {
    const m = JSON.parse(e.data);
    if (m.re !== undefined) {
      const w = waiting.get(m.re);
      waiting.delete(m.re);
      if (w) (m.t === '$error' ? w.reject(m.d) : w.resolve(m.d));
    } else if (m.t === '$error') {
      log('error ' + m.d.code + ' ' + (m.d.path ?? '') + ' ' + (m.d.rule ?? ''), 'error');
    } else handlers[m.t]?.(m.d);
  };
  const opened = new Promise((resolve) => (ws.onopen = resolve));
  ws.onclose = (e) => ($('status').textContent = 'closed (' + e.code + ')');
  await opened;
  $('status').textContent = 'open';

  const join = async (name) => {
    const welcome = await request('join', { name });
    log('welcome ' + welcome.you + '; members: ' + welcome.members.join(', '));
    $('join').hidden = true;
    $('say').hidden = false;
    return welcome;
  };
  $('join').onsubmit = (e) => { e.preventDefault(); join($('name').value).catch((err) => log('error ' + err.message, 'error')); };
  $('say').onsubmit = (e) => { e.preventDefault(); send('say', { text: $('text').value }); $('text').value = ''; };
  window.chat = { join, say: (text) => send('say', { text }), lines, ready: true };
</script>
</body>
</html>
`;
