// agentd agent console. The server renders every change as HTML fragments (templ, escaped) and
// sends them as "ops"; this script applies them, keeps the selection, unread marks, countdowns,
// pending-response timers and the keyboard focus, announces new offers, and turns clicks and form
// submits into commands on /ws/console.
'use strict';
(function () {
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const statusEl = document.getElementById('console-status');
  const announcer = document.getElementById('offer-announcer');
  const panels = document.getElementById('chat-panels');
  const baseTitle = document.title;
  const unread = new Set();
  const acknowledgedCobrowse = new Set();
  const widened = new Set(); // chats whose co-browse view takes most of the panel
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
        // The first render after the hello brings the whole console up to date: only then is it
        // live, and only then may the agent act on what it shows.
        const first = ws.ready && !ws.live;
        if (first) { ws.live = true; say('Connected.'); }
        applyOps(f.ops);
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

  /* ---------- focus: never left on the page's body after a region is re-rendered */

  // focusKey is a selector that finds the same control in a re-rendered region.
  function focusKey(el) {
    if (el.id) return '#' + CSS.escape(el.id);
    if (!el.dataset.cmd) return null;
    let sel = '[data-cmd="' + CSS.escape(el.dataset.cmd) + '"]';
    for (const k of ['iid', 'key', 'state']) {
      if (el.dataset[k] !== undefined) sel += '[data-' + k + '="' + CSS.escape(el.dataset[k]) + '"]';
    }
    return sel;
  }

  function usable(el) {
    return !!el && el.isConnected && !el.disabled && !el.closest('[hidden]') && el.getClientRects().length > 0;
  }

  function focusOn(el) {
    if (!el) return false;
    if (!usable(el) && el.tabIndex < 0 && !el.hasAttribute('tabindex')) return false;
    el.focus();
    return document.activeElement === el;
  }

  // A command that takes the control it was started from away (End chat, Done, Delete, …) says
  // where the focus goes once the answer's fragments have arrived: plan returns that element, or
  // null while it is not there yet. Plans expire, so a late render never steals the focus.
  let focusPlan = null;
  // What the agent does next overrides an older plan.
  document.addEventListener('keydown', () => { focusPlan = null; }, true);
  document.addEventListener('mousedown', () => { focusPlan = null; }, true);
  function planFocus(find) {
    focusPlan = { find, until: Date.now() + 10000 };
    runFocusPlan();
  }
  function runFocusPlan() {
    if (!focusPlan) return;
    if (Date.now() > focusPlan.until) { focusPlan = null; return; }
    const el = focusPlan.find();
    if (el && focusOn(el)) focusPlan = null;
  }

  // nextAfterPanel is where the focus goes when a chat's panel goes away (wrapped up,
  // transferred): the next chat of the list, else the chat just finished in Recent chats.
  function nextAfterPanel() {
    return document.querySelector('.chat-item') || document.querySelector('#recent a') || document.getElementById('chats-heading');
  }

  /* ---------- ops */

  function applyOps(ops) {
    const active = document.activeElement && document.activeElement !== document.body ? document.activeElement : null;
    const key = active ? focusKey(active) : null;
    const panel = active ? active.closest('.chat-panel') : null;
    const section = active ? active.closest('.sidebar > section') : null;
    for (const o of ops) {
      const el = document.getElementById(o.id);
      if (o.op === 'remove') {
        if (el) el.remove();
        const gone = o.id.replace(/^chat-/, '');
        unread.delete(gone);
        widened.delete(gone);
        if (gone === selected) selected = '';
        continue;
      }
      if (!el) continue;
      if (o.op === 'replace') {
        const tmp = fragment(o.html || '');
        keepValues(el, tmp.content);
        el.replaceWith(tmp.content);
      } else if (o.op === 'html') {
        const tmp = fragment(o.html || '');
        keepValues(el, tmp.content);
        el.replaceChildren(tmp.content);
        if (el === statusEl) statusEl.classList.remove('error');
      } else if (o.op === 'append') {
        const tmp = fragment(o.html || '');
        const node = tmp.content.firstElementChild;
        const existing = node && node.id ? document.getElementById(node.id) : null;
        if (existing) {
          // A panel rendered again (after a reconnect): keep what the agent was typing.
          keepValues(existing, node);
          existing.replaceWith(node);
        } else {
          el.appendChild(tmp.content);
        }
        if (o.id.startsWith('transcript-')) {
          const iid = o.id.slice('transcript-'.length);
          if (iid !== selected) unread.add(iid);
          const log = el.parentElement;
          log.scrollTop = log.scrollHeight;
        }
      }
    }
    decorate();
    announceOffers();
    // The focused control was re-rendered or went away: the same control in the new fragment,
    // else the plan of the command that caused it, else a neighbour that makes sense.
    if (active && (!active.isConnected || active.disabled)) {
      const twin = key ? document.querySelector(key) : null;
      if (!(usable(twin) && focusOn(twin))) {
        runFocusPlan();
        if (document.activeElement === document.body || !document.activeElement) fallbackFocus(panel, section);
      }
    } else {
      runFocusPlan();
    }
  }

  function fragment(html) {
    const tmp = document.createElement('template');
    tmp.innerHTML = html;
    return tmp;
  }

  // keepValues carries what the agent typed into fields of a region over to its new rendering.
  function keepValues(from, to) {
    for (const f of from.querySelectorAll('textarea, input[type=text], input[type=search], input:not([type])')) {
      if (!f.id || !f.value) continue;
      const twin = to.querySelector('#' + CSS.escape(f.id));
      if (twin && !twin.value) twin.value = f.value;
    }
  }

  function fallbackFocus(panel, section) {
    if (panel) {
      const iid = panel.dataset.iid;
      if (!panel.isConnected) { focusOn(nextAfterPanel()); return; }
      for (const id of ['disposition-' + iid, 'message-' + iid, 'title-' + iid]) {
        if (focusOn(document.getElementById(id))) return;
      }
      return;
    }
    if (section) {
      const again = document.getElementById(section.id);
      const h = again && again.querySelector('h2');
      if (h) { h.tabIndex = -1; h.focus(); }
    }
  }

  /* ---------- new offers: live region, sound, title badge, desktop notification */

  const soundBox = document.getElementById('offer-sound');
  const notifyButton = document.getElementById('offer-notify');
  const notifyState = document.getElementById('offer-notify-state');
  const seenOffers = new Set(Array.from(document.querySelectorAll('#offers .offer'), (o) => o.id));
  let audio = null;

  soundBox.checked = localStorage.getItem('agentd.console.sound') !== 'off';
  soundBox.addEventListener('change', () => {
    localStorage.setItem('agentd.console.sound', soundBox.checked ? 'on' : 'off');
  });

  function notificationsOn() {
    return 'Notification' in window && Notification.permission === 'granted' &&
      localStorage.getItem('agentd.console.notify') === 'on';
  }
  function showNotifyState() {
    const on = notificationsOn();
    notifyButton.setAttribute('aria-pressed', String(on));
    if (!('Notification' in window)) {
      notifyButton.disabled = true;
      notifyState.textContent = 'This browser has no desktop notifications.';
    } else if (Notification.permission === 'denied') {
      notifyState.textContent = 'Desktop notifications are blocked in the browser settings.';
    } else {
      notifyState.textContent = on ? 'A desktop notification tells you of new offers.' : '';
    }
  }
  notifyButton.addEventListener('click', () => {
    if (!('Notification' in window)) return;
    if (notificationsOn()) {
      localStorage.setItem('agentd.console.notify', 'off');
      showNotifyState();
      return;
    }
    // Permission is asked only here, when the agent asks for notifications: never on load.
    Promise.resolve(Notification.requestPermission()).then((p) => {
      if (p === 'granted') localStorage.setItem('agentd.console.notify', 'on');
      showNotifyState();
    });
  });
  showNotifyState();

  // chime is a short two-tone sound made with Web Audio: no file to load.
  function chime() {
    if (!soundBox.checked) return;
    const AC = window.AudioContext || window.webkitAudioContext;
    if (!AC) return;
    try {
      audio = audio || new AC();
      if (audio.state === 'suspended') audio.resume();
      const t = audio.currentTime;
      const osc = audio.createOscillator();
      const gain = audio.createGain();
      osc.type = 'sine';
      osc.frequency.setValueAtTime(880, t);
      osc.frequency.setValueAtTime(660, t + 0.15);
      gain.gain.setValueAtTime(0.0001, t);
      gain.gain.exponentialRampToValueAtTime(0.2, t + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, t + 0.4);
      osc.connect(gain);
      gain.connect(audio.destination);
      osc.start(t);
      osc.stop(t + 0.45);
    } catch (e) { /* no sound is no reason to miss the offer */ }
  }

  function announceOffers() {
    const offers = Array.from(document.querySelectorAll('#offers .offer'));
    document.title = (offers.length ? '(' + offers.length + ') ' : '') + baseTitle;
    const fresh = offers.filter((o) => !seenOffers.has(o.id));
    for (const o of offers) seenOffers.add(o.id);
    if (!fresh.length) return;
    const who = fresh.map((o) => o.dataset.customer + ' (' + o.dataset.service + ')').join(', ');
    announcer.textContent = (fresh.length === 1 ? 'New chat offer: ' : 'New chat offers: ') + who + '.';
    chime();
    if (notificationsOn() && (document.hidden || !document.hasFocus())) {
      for (const o of fresh) {
        const n = new Notification('New chat offer', { body: o.dataset.customer + ' · ' + o.dataset.service, tag: o.id });
        n.onclick = () => { window.focus(); n.close(); };
      }
    }
  }

  /* ---------- what lives only in the browser */

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
    for (const p of panels.querySelectorAll('.chat-panel')) {
      p.hidden = p.dataset.iid !== selected;
      const wide = widened.has(p.dataset.iid) && !!p.querySelector('.cobrowse-frame');
      p.classList.toggle('cobrowse-wide', wide);
      const b = p.querySelector('[data-cmd=widen_cobrowse]');
      if (b) b.setAttribute('aria-pressed', String(wide));
    }
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
    // The message field, or the wrap-up of a chat that has ended.
    planFocus(() => [document.getElementById('message-' + iid), document.getElementById('disposition-' + iid)].find(usable) || null);
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
    } else if (cmd === 'pick_up') {
      // The oldest chat waiting in that service becomes the agent's at once (within capacity).
      b.disabled = true;
      send('pick_up', { service: b.dataset.service }).then((d) => { select(d.iid); say('Chat picked up.'); },
        (e) => { b.disabled = false; fail(e); });
    } else if (cmd === 'decline') {
      send('decline', { iid }).then(() => {
        say('Chat declined.');
        planFocus(() => document.getElementById('offer-' + iid) ? null
          : document.querySelector('#offers button[data-cmd=accept]') || document.getElementById('offers-heading'));
      }, fail);
    } else if (cmd === 'end') {
      b.disabled = true;
      send('end', { iid }).then(() => {
        say('Chat ended. Wrap it up.');
        planFocus(() => document.getElementById('disposition-' + iid));
      }, (e) => { b.disabled = false; fail(e); });
    } else if (cmd === 'delete_userdata') {
      // The focus moves on to the next key (or the previous one, or the Key field).
      const row = b.closest('tr');
      const near = row && (row.nextElementSibling || row.previousElementSibling);
      const nearKey = near ? near.dataset.key : null;
      send('delete_userdata', { iid, key: b.dataset.key }).then(() => {
        say('Key deleted.');
        planFocus(() => {
          const table = document.getElementById('ud-' + iid);
          if (!table || table.querySelector('tr[data-key="' + CSS.escape(b.dataset.key) + '"]')) return null;
          const next = nearKey && table.querySelector('tr[data-key="' + CSS.escape(nearKey) + '"] button[data-cmd=edit_userdata]');
          return next || document.getElementById('ud-key-' + iid);
        });
      }, fail);
    } else if (cmd === 'edit_userdata') {
      document.getElementById('ud-key-' + iid).value = b.dataset.key;
      document.getElementById('ud-value-' + iid).value = b.dataset.value;
      document.getElementById('ud-visible-' + iid).checked = b.dataset.visible === 'true';
      document.getElementById('ud-value-' + iid).focus();
    } else if (cmd === 'insert_canned') {
      const ta = document.getElementById('message-' + iid);
      ta.value = b.dataset.body;
      ta.focus();
    } else if (cmd === 'widen_cobrowse') {
      if (widened.has(iid)) widened.delete(iid); else widened.add(iid);
      decorate();
    }
  });

  document.addEventListener('submit', (ev) => {
    const form = ev.target.closest('[data-form]');
    if (!form) return;
    ev.preventDefault();
    const iid = form.dataset.iid;
    const kind = form.dataset.form;
    const button = form.querySelector('button[type=submit]');
    if (button && button.disabled) return; // a double click sends once; an ended chat takes none
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
      send('transfer', { iid, target: form.target.value }).then(() => {
        done('Chat transferred.')();
        planFocus(() => document.getElementById('chat-' + iid) ? null : nextAfterPanel());
      }, failed);
    } else if (kind === 'wrapup') {
      send('wrapup', { iid, disposition: form.disposition.value, notes: form.notes.value }).then(() => {
        done('Wrap-up saved.')();
        planFocus(() => document.getElementById('chat-' + iid) ? null : nextAfterPanel());
      }, failed);
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
  announceOffers();
  connect();
})();
