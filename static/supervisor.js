// agentd supervisor dashboard (/supervisor). The server renders "Queues", "Agents", "Live chats"
// and the charts as HTML fragments (templ, escaped) and sends them over /supervisor/socket as
// "ops"; this script applies them and makes the times tick every second from the timestamps the
// fragments carry (data-since), writing text with textContent only.
'use strict';
(function () {
  const root = document.getElementById('dashboard');
  if (!root) return;
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const statusEl = document.getElementById('dash-status');
  let ws = null;
  let backoff = 250;
  let seq = 0;

  function say(text, isError) {
    const el = document.getElementById('dash-status');
    if (!el) return;
    el.textContent = text;
    el.classList.toggle('error', !!isError);
  }

  function newId() {
    const b = new Uint8Array(9);
    crypto.getRandomValues(b);
    return 'd' + (++seq) + '-' + Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  }

  // durationText writes a duration as the server does (web/supervisor/charts.go): 45s, 3m 05s,
  // 2h 03m, 3d 04h.
  function durationText(ms) {
    let s = Math.max(0, Math.floor(ms / 1000));
    const two = (n) => String(n).padStart(2, '0');
    if (s < 60) return s + 's';
    if (s < 3600) return Math.floor(s / 60) + 'm ' + two(s % 60) + 's';
    if (s < 86400) return Math.floor(s / 3600) + 'h ' + two(Math.floor((s % 3600) / 60)) + 'm';
    return Math.floor(s / 86400) + 'd ' + two(Math.floor((s % 86400) / 3600)) + 'h';
  }

  // tick updates every ticking time; one past its data-alarm-after seconds becomes overdue, in
  // words ("Overdue: ") as well as in style.
  function tick() {
    const now = Date.now();
    for (const el of root.querySelectorAll('.ticker[data-since]')) {
      const since = Date.parse(el.dataset.since);
      if (Number.isNaN(since)) continue;
      const ms = now - since;
      const after = Number(el.dataset.alarmAfter || 0);
      const overdue = after > 0 && ms >= after * 1000;
      const text = (overdue ? 'Overdue: ' : '') + durationText(ms);
      if (el.textContent !== text) el.textContent = text;
      el.classList.toggle('alarm', overdue);
    }
  }

  function applyOps(ops) {
    for (const o of ops) {
      const el = document.getElementById(o.id);
      if (!el || o.op !== 'replace') continue;
      // The fragment is the server's templ output, escaped there; a <template> parses it inert.
      const tmp = document.createElement('template');
      tmp.innerHTML = o.html || '';
      el.replaceWith(tmp.content);
    }
    tick();
  }

  function connect() {
    const url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/supervisor/socket';
    ws = new WebSocket(url);
    ws.onopen = () => {
      ws.helloId = newId();
      ws.send(JSON.stringify({ id: ws.helloId, cmd: 'hello', args: { csrf } }));
    };
    ws.onmessage = (msg) => {
      let f;
      try { f = JSON.parse(msg.data); } catch (e) { return; }
      if (f.type === 'result' && f.id === ws.helloId) {
        if (!f.ok) { say('Your session expired. Reload the page.', true); ws.close(); return; }
        backoff = 250;
        return;
      }
      if (f.type === 'ops') {
        applyOps(f.ops);
        if (!ws.live) { ws.live = true; say('Live: updated as chats and agents change.'); }
      }
      if (f.type === 'error' && f.error) say(f.error.description, true);
    };
    ws.onclose = (ev) => {
      if (ev.code === 1008) { say('The dashboard was closed: ' + (ev.reason || 'not allowed') + '. Reload the page.', true); return; }
      say('Connection lost; reconnecting…', true);
      const delay = backoff + Math.random() * backoff;
      backoff = Math.min(backoff * 2, 10000);
      setTimeout(connect, delay);
    };
  }

  if (statusEl) say('Connecting…');
  setInterval(tick, 1000);
  tick();
  connect();
})();
