// agentd agent console. The server renders every change as HTML fragments (templ, escaped) and
// sends them as "ops"; this script applies them, keeps the selection, unread marks, countdowns and
// pending-response timers, and turns clicks and form submits into commands on /ws/console.
'use strict';
(function () {
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const statusEl = document.getElementById('console-status');
  const panels = document.getElementById('chat-panels');
  const unread = new Set();
  const acknowledgedCobrowse = new Set();
  const pending = new Map(); // command id -> {resolve, reject}
  let selected = sessionStorage.getItem('agentd.console.selected') || '';
  let ws = null;
  let backoff = 250;
  let seq = 0;

  function say(text, isError) {
    statusEl.textContent = text;
    statusEl.classList.toggle('error', !!isError);
  }

  function newId() {
    const b = new Uint8Array(9);
    crypto.getRandomValues(b);
    return 'k' + (++seq) + '-' + Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  }

  // send runs a command; the promise settles with the server's answer. A given id is applied
  // once by the server, so a retry after a reconnect reuses it.
  function send(cmd, args, id) {
    id = id || newId();
    return new Promise((resolve, reject) => {
      pending.set(id, { resolve, reject, frame: JSON.stringify({ id, cmd, args: args || {} }) });
      if (ws && ws.readyState === WebSocket.OPEN && ws.ready) ws.send(pending.get(id).frame);
    });
  }

  function connect() {
    const url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws/console';
    ws = new WebSocket(url);
    ws.ready = false;
    ws.onopen = () => {
      const hello = newId();
      ws.send(JSON.stringify({ id: hello, cmd: 'hello', args: { csrf } }));
      ws.helloId = hello;
    };
    ws.onmessage = (msg) => {
      let f;
      try { f = JSON.parse(msg.data); } catch (e) { return; }
      if (f.type === 'result' && f.id === ws.helloId) {
        if (!f.ok) { say('Your session expired. Reload the page.', true); ws.close(); return; }
        ws.ready = true;
        backoff = 250;
        for (const p of pending.values()) ws.send(p.frame); // commands not yet answered
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
        applyOps(f.ops);
        // The first render after the hello brings the whole console up to date: only then is it
        // live, and only then may the agent act on what it shows.
        if (ws.ready && !ws.live) { ws.live = true; say('Connected.'); }
      }
      if (f.type === 'error') say(f.error.description, true);
    };
    ws.onclose = (ev) => {
      if (ev.code === 1008) { say('The console was closed: ' + (ev.reason || 'not allowed') + '. Reload the page.', true); return; }
      say('Connection lost; reconnecting…', true);
      const delay = backoff + Math.random() * backoff;
      backoff = Math.min(backoff * 2, 10000);
      setTimeout(connect, delay);
    };
  }

  function applyOps(ops) {
    for (const o of ops) {
      const el = document.getElementById(o.id);
      if (o.op === 'remove') {
        if (el) el.remove();
        const gone = o.id.replace(/^chat-/, '');
        unread.delete(gone);
        if (gone === selected) selected = '';
        continue;
      }
      if (!el) continue;
      if (o.op === 'replace') {
        el.outerHTML = o.html;
      } else if (o.op === 'html') {
        el.innerHTML = o.html;
      } else if (o.op === 'append') {
        const tmp = document.createElement('template');
        tmp.innerHTML = o.html;
        const node = tmp.content.firstElementChild;
        const existing = node && node.id ? document.getElementById(node.id) : null;
        if (existing) {
          // A panel rendered again (after a reconnect): keep what the agent was typing.
          for (const ta of existing.querySelectorAll('textarea, input[type=text], input:not([type])')) {
            const twin = node.querySelector('#' + CSS.escape(ta.id));
            if (twin && ta.value) twin.value = ta.value;
          }
          existing.replaceWith(node);
        } else {
          el.appendChild(tmp.content);
        }
        if (o.id.startsWith('transcript-')) {
          const iid = o.id.slice('transcript-'.length);
          if (iid !== selected) unread.add(iid);
          el.scrollTop = el.scrollHeight;
        }
      }
    }
    decorate();
  }

  // decorate re-applies what lives only in the browser after fragments were replaced.
  function decorate() {
    const items = document.querySelectorAll('[data-select]');
    // A chat just accepted keeps the selection until its panel arrives.
    if (!selected && items.length) selected = items[0].dataset.select;
    for (const item of items) {
      const iid = item.dataset.select;
      item.classList.toggle('selected', iid === selected);
      item.setAttribute('aria-current', iid === selected ? 'true' : 'false');
      item.classList.toggle('has-unread', unread.has(iid));
    }
    for (const p of panels.querySelectorAll('.chat-panel')) p.hidden = p.dataset.iid !== selected;
    document.getElementById('no-chat').hidden = !!(selected && document.getElementById('chat-' + selected));
    for (const cb of document.querySelectorAll('.cobrowse[data-open="true"]')) {
      const key = cb.dataset.iid + '|' + cb.dataset.session;
      if (acknowledgedCobrowse.has(key)) continue;
      acknowledgedCobrowse.add(key);
      send('cobrowse_joined', { iid: cb.dataset.iid, session: cb.dataset.session }).catch((e) => say(e.description, true));
      if (cb.dataset.iid !== selected) say('A customer shared a co-browse session: open their chat to see it.');
    }
    tick();
  }

  function select(iid) {
    selected = iid;
    unread.delete(iid);
    sessionStorage.setItem('agentd.console.selected', iid);
    decorate();
    const ta = document.getElementById('message-' + iid);
    if (ta) ta.focus();
  }

  function tick() {
    const now = Date.now();
    for (const c of document.querySelectorAll('.countdown[data-expires]')) {
      const s = Math.max(0, Math.round((Number(c.dataset.expires) - now) / 1000));
      c.textContent = 'Accept within ' + s + ' s';
    }
    for (const item of document.querySelectorAll('.chat-item')) {
      const since = Number(item.dataset.pendingSince || 0);
      const label = item.querySelector('.pending');
      item.classList.remove('pending-ok', 'pending-warn', 'pending-late');
      if (!since) { if (label) label.textContent = ''; continue; }
      const secs = Math.floor((now - since) / 1000);
      const level = secs >= Number(item.dataset.late) ? 'late' : secs >= Number(item.dataset.warn) ? 'warn' : 'ok';
      item.classList.add('pending-' + level);
      if (label) label.textContent = 'waiting ' + Math.floor(secs / 60) + ':' + String(secs % 60).padStart(2, '0');
    }
  }
  setInterval(tick, 1000);

  function fail(e) { say(e.description || 'Failed.', true); }

  document.addEventListener('click', (ev) => {
    const sel = ev.target.closest('[data-select]');
    if (sel) { select(sel.dataset.select); return; }
    const b = ev.target.closest('[data-cmd]');
    if (!b) return;
    const cmd = b.dataset.cmd;
    const iid = b.dataset.iid;
    if (cmd === 'set_state') {
      const reason = document.getElementById('not-ready-reason').value;
      send('set_state', { state: b.dataset.state, reason }).then(() => say('Status changed.'), fail);
    } else if (cmd === 'accept') {
      b.disabled = true;
      send('accept', { iid }).then(() => { select(iid); say('Chat accepted.'); }, (e) => { b.disabled = false; fail(e); });
    } else if (cmd === 'decline') {
      send('decline', { iid }).then(() => say('Chat declined.'), fail);
    } else if (cmd === 'end') {
      b.disabled = true;
      send('end', { iid }).then(() => say('Chat ended. Wrap it up.'), (e) => { b.disabled = false; fail(e); });
    } else if (cmd === 'delete_userdata') {
      send('delete_userdata', { iid, key: b.dataset.key }).then(() => say('Key deleted.'), fail);
    } else if (cmd === 'edit_userdata') {
      document.getElementById('ud-key-' + iid).value = b.dataset.key;
      document.getElementById('ud-value-' + iid).value = b.dataset.value;
      document.getElementById('ud-visible-' + iid).checked = b.dataset.visible === 'true';
      document.getElementById('ud-value-' + iid).focus();
    } else if (cmd === 'insert_canned') {
      const ta = document.getElementById('message-' + iid);
      ta.value = b.dataset.body;
      ta.focus();
    }
  });

  document.addEventListener('submit', (ev) => {
    const form = ev.target.closest('[data-form]');
    if (!form) return;
    ev.preventDefault();
    const iid = form.dataset.iid;
    const kind = form.dataset.form;
    const button = form.querySelector('button[type=submit]');
    if (button && button.disabled) return; // a double click sends once
    const done = (msg) => () => { if (button) button.disabled = false; if (msg) say(msg); };
    const failed = (e) => { if (button) button.disabled = false; fail(e); };
    if (button) button.disabled = true;
    if (kind === 'send') {
      const ta = form.querySelector('textarea');
      const text = ta.value;
      if (!text.trim()) { done('')(); return; }
      // The id is fixed before sending, so a retry cannot post the message twice.
      const id = form.dataset.pendingId || newId();
      form.dataset.pendingId = id;
      send('send', { iid, text }, id).then(() => {
        delete form.dataset.pendingId;
        if (ta.value === text) ta.value = '';
        stopTyping(iid);
        done('')();
      }, (e) => { delete form.dataset.pendingId; failed(e); });
    } else if (kind === 'set_userdata') {
      send('set_userdata', { iid, key: form.key.value, value: form.value.value, visible: form.visible.checked })
        .then(() => { form.reset(); done('Key saved.')(); }, failed);
    } else if (kind === 'send_notice') {
      send('send_notice', { iid, text: form.text.value }).then(() => { form.reset(); done('Notice sent.')(); }, failed);
    } else if (kind === 'transfer') {
      send('transfer', { iid, target: form.target.value }).then(done('Chat transferred.'), failed);
    } else if (kind === 'wrapup') {
      send('wrapup', { iid, disposition: form.disposition.value, notes: form.notes.value }).then(done('Wrap-up saved.'), failed);
    }
  });

  // Enter sends, Shift+Enter adds a line.
  document.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && !ev.shiftKey && ev.target.matches('.composer textarea')) {
      ev.preventDefault();
      ev.target.form.requestSubmit();
    }
  });

  const typingTimers = new Map();
  function stopTyping(iid) {
    if (!typingTimers.has(iid)) return;
    clearTimeout(typingTimers.get(iid).idle);
    typingTimers.delete(iid);
    send('typing', { iid, on: false }).catch(() => {});
  }
  let cannedTimer = null;
  document.addEventListener('input', (ev) => {
    const t = ev.target;
    if (t.matches('.composer textarea')) {
      const iid = t.form.dataset.iid;
      const st = typingTimers.get(iid) || { last: 0 };
      if (Date.now() - st.last > 1500) { st.last = Date.now(); send('typing', { iid, on: true, text: '' }).catch(() => {}); }
      clearTimeout(st.idle);
      st.idle = setTimeout(() => stopTyping(iid), 4000);
      typingTimers.set(iid, st);
    } else if (t.matches('.canned-q')) {
      clearTimeout(cannedTimer);
      cannedTimer = setTimeout(() => {
        const iid = t.dataset.iid;
        send('canned', { iid, q: t.value }).then((data) => {
          const list = document.getElementById('canned-' + iid);
          list.replaceChildren();
          for (const item of data.items) {
            const li = document.createElement('li');
            const b = document.createElement('button');
            b.type = 'button';
            b.className = 'link';
            b.dataset.cmd = 'insert_canned';
            b.dataset.iid = iid;
            b.dataset.body = item.body;
            b.textContent = item.title;
            b.title = item.body;
            li.appendChild(b);
            list.appendChild(li);
          }
          if (!data.items.length) {
            const li = document.createElement('li');
            li.textContent = 'No canned responses match.';
            list.appendChild(li);
          }
        }, fail);
      }, 200);
    }
  });

  decorate();
  connect();
})();
