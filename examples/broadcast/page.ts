/**
 * The web page served by the broadcast example: shows ticks and its own round-trip time, and, when
 * the server runs on several threads, which thread served the page and which one holds the
 * WebSocket (two TCP connections, so the kernel may give them to different threads).
 */
export function renderPage(thread?: number): string {
  return PAGE_HEAD + (thread === undefined ? '' : `<p>Page served by thread <b id="page-thread">${thread}</b> · WebSocket on thread <b id="ws-thread">–</b></p>\n`) + PAGE_TAIL;
}

const PAGE_HEAD = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>wschan broadcast demo</title>
<style>
  body { font: 15px system-ui, sans-serif; margin: 2rem; color: #222; }
  .big { font-size: 2.2rem; font-variant-numeric: tabular-nums; }
  #log { font: 12px monospace; white-space: pre; color: #555; height: 12em; overflow: hidden; }
</style>
</head>
<body>
<h1>wschan broadcast</h1>
<p>Status: <b id="status">connecting…</b></p>
<p>Tick <span class="big" id="seq">–</span> · clients <span id="clients">–</span> · RTT <span id="rtt">–</span></p>
`;
const PAGE_TAIL = `<div id="log"></div>
<script>
  const $ = (id) => document.getElementById(id);
  const ws = new WebSocket(location.origin.replace(/^http/, 'ws') + '/');
  const lines = [];
  const ping = () => ws.send(JSON.stringify({ type: 'ping', t: performance.now() }));
  ws.onopen = () => {
    $('status').textContent = 'open' + (ws.extensions ? ' (' + ws.extensions + ')' : '');
    ping();
    setInterval(ping, 1000);
  };
  ws.onclose = (e) => { $('status').textContent = 'closed (' + e.code + ')'; };
  ws.onmessage = (e) => {
    const m = JSON.parse(e.data);
    if (m.type === 'ping') { $('rtt').textContent = (performance.now() - m.t).toFixed(1) + ' ms'; return; }
    if (m.type === 'welcome') { if ($('ws-thread')) $('ws-thread').textContent = m.thread; return; }
    $('seq').textContent = m.seq;
    $('clients').textContent = m.clients;
    lines.unshift(new Date(m.time).toISOString() + '  tick ' + m.seq);
    lines.length = Math.min(lines.length, 12);
    $('log').textContent = lines.join('\\n');
  };
</script>
</body>
</html>
`;

/** The page of the single-thread server. */
export const PAGE = renderPage();
