// agentd supervisor monitor (/supervisor/monitor/{id}). The server renders the chat as it goes
// (transcript, whispers, the customer's typing, UserData, the supervisor's controls) as HTML
// fragments (templ, escaped) sent as "ops"; this script applies them and turns the forms and
// buttons into commands on the monitor socket: whisper, barge_in, send, leave.
'use strict';
(function () {
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const root = document.getElementById('monitor');
  const iid = root.dataset.iid;
  const statusEl = document.getElementById('monitor-status');
  const log = document.getElementById('mon-log');
  const pending = new Map(); // command id -> {resolve, reject, frame}
  let ws = null;
  let backoff = 250;
  let seq = 0;
  let closedForGood = false;

  function say(text, isError) {
    statusEl.textContent = text;
    statusEl.classList.toggle('error', !!isError);
  }

  function newId() {
    const b = new Uint8Array(9);
    crypto.getRandomValues(b);
    return 'm' + (++seq) + '-' + Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  }

  // send runs a command; a given id is applied once by the server, so a retry after a
  // reconnect reuses it.
  function send(cmd, args) {
    const id = newId();
    return new Promise((resolve, reject) => {
      pending.set(id, { resolve, reject, frame: JSON.stringify({ id, cmd, args: args || {} }) });
      if (ws && ws.readyState === WebSocket.OPEN && ws.ready) ws.send(pending.get(id).frame);
    });
  }

  function connect() {
    const url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host +
      '/supervisor/monitor/' + encodeURIComponent(iid) + '/ws';
    ws = new WebSocket(url);
    ws.ready = false;
    ws.onopen = () => {
      ws.helloId = newId();
      ws.send(JSON.stringify({ id: ws.helloId, cmd: 'hello', args: { csrf } }));
    };
    ws.onmessage = (msg) => {
      let f;
      try { f = JSON.parse(msg.data); } catch (e) { return; }
      if (f.type === 'result' && f.id === ws.helloId) {
        if (!f.ok) {
          closedForGood = true;
          say((f.error && f.error.description) || 'Reload the page.', true);
          return;
        }
        ws.ready = true;
        backoff = 250;
        for (const p of pending.values()) ws.send(p.frame);
        return;
      }
      if (f.type === 'result') {
        const p = pending.get(f.id);
        if (!p) return;
        pending.delete(f.id);
        if (f.ok) p.resolve(f.data || {}); else p.reject(f.error || { code: 'error', description: 'Failed.' });
        return;
      }
      if (f.type === 'ops') {
        if (!ws.live) {
          // A new socket (the first, or after a reconnect) renders the chat from the start.
          ws.live = true;
          document.getElementById('mon-transcript').replaceChildren();
          say('Monitoring live. The customer does not see you.');
        }
        applyOps(f.ops);
      }
      if (f.type === 'error') say(f.error.description, true);
    };
    ws.onclose = (ev) => {
      if (closedForGood) return;
      if (ev.code === 1008) { say('The monitor was closed: ' + (ev.reason || 'not allowed') + '. Reload the page.', true); return; }
      say('Connection lost; reconnecting…', true);
      const delay = backoff + Math.random() * backoff;
      backoff = Math.min(backoff * 2, 10000);
      setTimeout(connect, delay);
    };
  }

  function fragment(html) {
    const tmp = document.createElement('template');
    tmp.innerHTML = html; // server-rendered templ fragments: every value in them is escaped
    return tmp.content;
  }

  function applyOps(ops) {
    const focusedId = document.activeElement && document.activeElement.id;
    for (const o of ops) {
      const el = document.getElementById(o.id);
      if (!el) continue;
      if (o.op === 'replace') el.replaceWith(fragment(o.html || ''));
      else if (o.op === 'html') el.replaceChildren(fragment(o.html || ''));
      else if (o.op === 'append') {
        el.appendChild(fragment(o.html || ''));
        if (o.id === 'mon-transcript') log.scrollTop = log.scrollHeight;
      }
    }
    // The controls were re-rendered (Barge in → Message/Send/Leave and back): keep the focus
    // where it makes sense.
    if (focusedId && !document.getElementById(focusedId)) {
      const next = document.getElementById('mon-message') || document.getElementById('barge-in') || document.getElementById('whisper-text');
      if (next) next.focus();
    }
  }

  function fail(e) { say((e && e.description) || 'Failed.', true); }

  document.addEventListener('submit', (ev) => {
    const form = ev.target.closest('form[data-cmd]');
    if (!form || !root.contains(form)) return;
    ev.preventDefault();
    const field = form.querySelector('textarea');
    const text = field.value;
    if (!text.trim()) return;
    send(form.dataset.cmd, { text }).then(() => {
      field.value = '';
      say(form.dataset.cmd === 'whisper' ? 'Whisper sent to the agent.' : 'Message sent.');
    }, fail);
  });

  document.addEventListener('click', (ev) => {
    const b = ev.target.closest('button[data-cmd]');
    if (!b || !root.contains(b)) return;
    ev.preventDefault();
    const cmd = b.dataset.cmd;
    send(cmd, {}).then(() => {
      say(cmd === 'barge_in' ? 'You are in the chat: the customer sees your messages.' : 'You left the chat; the agent keeps it.');
    }, fail);
  });

  // Enter sends, Shift+Enter is a new line, in both text areas.
  document.addEventListener('keydown', (ev) => {
    const t = ev.target;
    if (ev.key !== 'Enter' || ev.shiftKey || !(t instanceof HTMLTextAreaElement) || !t.form || !t.form.dataset.cmd) return;
    ev.preventDefault();
    t.form.requestSubmit();
  });

  // Leaving the page ends the monitoring at once (the agent's "Monitored by" line goes): a page
  // kept in the back/forward cache would otherwise hold its socket open.
  window.addEventListener('pagehide', () => {
    closedForGood = true;
    if (ws) ws.close(1000, 'left');
  });
  window.addEventListener('pageshow', (ev) => {
    if (ev.persisted) { closedForGood = false; connect(); }
  });

  connect();
})();
