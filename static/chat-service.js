/*
 * chat-service.js: the customer side of agentd, implementing the "Chat Service JS API".
 *
 * One dependency-free classic script. It sets globalThis.chat (window.chat), which is what the
 * seed's examples use; a page that loads it as a module reads the same global.
 *
 * Wire protocol: docs/protocol.md (websocket subprotocol agentd-chat.v1).
 * Public API, error codes, persistence and reconnect rules: docs/chat-service-api.md.
 */
(function (root) {
  'use strict';

  // Loaded twice (two widgets on one page): keep the first copy so its live sessions keep working.
  if (root.chat && root.chat.protocol === 'agentd-chat.v1') return;

  const PROTOCOL = 'agentd-chat.v1';
  const VERSION = '1.0.0';
  const WS_PATH = '/ws/chat';
  const COOKIE_NAME = 'agentd_chat';
  const DEFAULT_COOKIE_MAX_AGE = 1800; // seconds; refreshed on every write, so it is an idle timeout
  const DEFAULT_COMMAND_TIMEOUT = 30000; // ms without an answer before a command fails with `timeout`
  // A handshake can hang with no close event at all (seen when connecting to a node that is
  // shutting down: the TCP connection is accepted, the upgrade never answered). Give up on it.
  const CONNECT_TIMEOUT = 10000; // ms
  const BACKOFF_MIN = 250; // ms; doubled per failed attempt...
  const BACKOFF_MAX = 10000; // ...up to this cap
  // A command answered `unavailable` (the server's database restarting, say) is sent again with
  // the same id, which the server applies once, after RETRY_MIN doubling to RETRY_MAX (randomised
  // between half and all of it), for as long as its commandTimeout allows.
  const RETRY_MIN = 250; // ms
  const RETRY_MAX = 5000; // ms
  // After a `rate_limited` error frame (a frame of ours was dropped over the connection's frame
  // limit), nothing is sent for RATE_PAUSE to twice that: longer than the server's one notice a
  // second, so a frame dropped after the pause is always reported, and the connection never
  // counts as one that keeps exceeding.
  const RATE_PAUSE = 1000; // ms
  const TRANSCRIPT_PAGE = 1000; // the server's maximum `limit` for get_transcript
  const GAP_RETRY = 1000; // ms before asking again for a transcript gap the server did not fill
  const PERSIST_EVERY = 1000; // ms; progress is written at most this often (cookie writes are not free)
  // The server closes the socket (1009) on a frame of 1 MiB or more. Such a command would be re-sent
  // after every reconnect and close the socket again, forever, so it is refused before sending.
  const MAX_FRAME_BYTES = 1024 * 1024;
  // 1008 (policy violation) follows an origin_not_allowed error frame: reconnecting cannot help.
  // The server also uses 1008, reason rate_limited, to close a connection that kept exceeding
  // its frame limit; that one is reconnected.
  const CLOSE_POLICY_VIOLATION = 1008;

  const HANDLER_KINDS = {
    onAgentConnected: 'agentConnected',
    onAgentDisconnected: 'agentDisconnected',
    onMessageReceived: 'messageReceived',
    onAgentTyping: 'agentTyping',
    onSessionEnded: 'sessionEnded',
    onError: 'error',
    onNotice: 'notice',
    onUserDataUpdated: 'userDataUpdated',
    onQueuePosition: 'queuePosition',
  };

  // The script's own URL, captured now: document.currentScript is only set while the script runs.
  // It is the default server, so a site embedding <script src="https://agentd.example.com/static/
  // chat-service.js"> needs no serverUrl.
  const SCRIPT_SRC = (function () {
    try {
      const s = root.document && root.document.currentScript;
      return (s && s.src) || '';
    } catch (_) {
      return '';
    }
  })();

  // Sessions alive in this page, by session id, so restoreSession() called twice does not open a
  // second socket to the same session (which would deliver every event twice to the same page).
  const live = new Map();

  /* ---------------------------------------------------------------- small helpers */

  function failure(code, description) {
    return { error: { code: code, description: description } };
  }

  function serverError(e) {
    const code = e && typeof e.code === 'string' && e.code ? e.code : 'internal';
    const description = e && typeof e.description === 'string' && e.description ? e.description : code;
    return { error: { code: code, description: description } };
  }

  function isPlainObject(v) {
    return v !== null && typeof v === 'object' && !Array.isArray(v);
  }

  function hasSecureRandom() {
    const c = root.crypto;
    return !!(c && typeof c.getRandomValues === 'function');
  }

  // newId returns 128 bits from the browser's CSPRNG. The id of a start command finds its session
  // again until the session is first used, so it must be unguessable: there is no fallback to
  // Math.random, and a browser without Web Crypto gets an 'unsupported' failure instead (connect).
  function newId() {
    if (!hasSecureRandom()) throw new Error('chat-service.js needs Web Crypto (crypto.getRandomValues)');
    const bytes = new Uint8Array(16);
    root.crypto.getRandomValues(bytes);
    let hex = '';
    for (let i = 0; i < bytes.length; i++) hex += (bytes[i] < 16 ? '0' : '') + bytes[i].toString(16);
    return 'c-' + hex;
  }

  function utf8Length(s) {
    if (s.length * 3 < MAX_FRAME_BYTES) return s.length; // cannot reach the limit; skip encoding
    if (typeof root.TextEncoder === 'function') return new root.TextEncoder().encode(s).length;
    return s.length * 3;
  }

  function later(fn) {
    if (typeof queueMicrotask === 'function') queueMicrotask(fn);
    else Promise.resolve().then(fn);
  }

  function camel(s) {
    return String(s).replace(/_([a-z])/g, function (_, c) { return c.toUpperCase(); });
  }

  function makeLogger(opt) {
    const out = {};
    ['debug', 'info', 'warn', 'error'].forEach(function (level) {
      out[level] = function () {
        const args = ['[agentd chat]'].concat(Array.prototype.slice.call(arguments));
        try {
          if (typeof opt === 'function') opt.apply(null, [level].concat(args));
          else if (opt && typeof opt[level] === 'function') opt[level].apply(opt, args);
        } catch (_) {
          // A broken logger must not break the chat.
        }
      };
    });
    return out;
  }

  // Calls a consumer's function; whatever it throws is logged and stops there, so one faulty
  // handler cannot break the library or the other handlers.
  function guard(log, fn, arg) {
    try {
      fn(arg);
    } catch (e) {
      log.error('a callback threw', e);
    }
  }

  /*
   * A request is the seed's "promise" object: done(fn) and fail(fn) chain and return the same
   * object; then/catch/finally make it a thenable, so `await` works (a failure then throws the
   * fail event, {error: {code, description}}, which is not an Error instance).
   */
  function createRequest(log) {
    let resolveFn, rejectFn;
    let settled = false;
    const promise = new Promise(function (res, rej) { resolveFn = res; rejectFn = rej; });
    // fail() is optional in the seed's API: an unobserved failure is not an unhandled rejection.
    promise.catch(function () {});
    const noop = function () {};
    const req = {
      done: function (fn) {
        if (typeof fn === 'function') promise.then(function (v) { guard(log, fn, v); }, noop);
        return req;
      },
      fail: function (fn) {
        if (typeof fn === 'function') promise.then(noop, function (e) { guard(log, fn, e); });
        return req;
      },
      always: function (fn) {
        if (typeof fn === 'function') {
          promise.then(function (v) { guard(log, fn, v); }, function (e) { guard(log, fn, e); });
        }
        return req;
      },
      then: function (a, b) { return promise.then(a, b); },
      catch: function (b) { return promise.catch(b); },
      finally: function (f) { return promise.finally(f); },
    };
    return {
      req: req,
      resolve: function (v) { if (!settled) { settled = true; resolveFn(v); } },
      reject: function (e) { if (!settled) { settled = true; rejectFn(e); } },
      get settled() { return settled; },
    };
  }

  function rejected(event, log) {
    const d = createRequest(log);
    d.reject(event);
    return d.req;
  }

  /* ---------------------------------------------------------------- configuration */

  // agentd serves the chat socket at the root of its origin. Only the origin of serverUrl is used,
  // so URLs written for the seed's server ('http://host/backend/cometd/') keep working.
  function websocketUrl(serverUrl) {
    const base = (root.location && root.location.href) || undefined;
    const u = new URL(serverUrl, base);
    let scheme;
    if (u.protocol === 'http:' || u.protocol === 'ws:') scheme = 'ws:';
    else if (u.protocol === 'https:' || u.protocol === 'wss:') scheme = 'wss:';
    else throw new Error('serverUrl must be an http(s) URL: ' + serverUrl);
    return scheme + '//' + u.host + WS_PATH;
  }

  function defaultServerUrl() {
    if (SCRIPT_SRC) return SCRIPT_SRC;
    if (root.location && root.location.origin && root.location.origin !== 'null') return root.location.origin;
    return '';
  }

  function cookieStorage(maxAge) {
    const doc = root.document;
    const secure = root.location && root.location.protocol === 'https:' ? '; Secure' : '';
    return {
      read: function () {
        if (!doc || typeof doc.cookie !== 'string') return null;
        const parts = doc.cookie.split(/;\s*/);
        for (let i = 0; i < parts.length; i++) {
          if (parts[i].indexOf(COOKIE_NAME + '=') === 0) {
            return decodeURIComponent(parts[i].slice(COOKIE_NAME.length + 1));
          }
        }
        return null;
      },
      write: function (state) {
        if (!doc) return;
        if (state == null) {
          doc.cookie = COOKIE_NAME + '=; path=/; max-age=0; SameSite=Lax' + secure;
        } else {
          doc.cookie = COOKIE_NAME + '=' + encodeURIComponent(JSON.stringify(state)) +
            '; path=/; max-age=' + maxAge + '; SameSite=Lax' + secure;
        }
      },
    };
  }

  // Wraps the default cookie or the consumer's stateStorage. read() may return nothing, a state
  // object or its JSON; it may also throw (the seed's example does JSON.parse of a missing cookie),
  // which means "nothing stored". write(null) clears.
  function makeStorage(options, log) {
    const custom = options.stateStorage;
    const backend = custom && typeof custom.read === 'function' && typeof custom.write === 'function'
      ? custom
      : cookieStorage(options.cookieMaxAge > 0 ? Math.floor(options.cookieMaxAge) : DEFAULT_COOKIE_MAX_AGE);
    if (custom && backend !== custom) log.warn('stateStorage needs read() and write(); using the cookie');
    return {
      read: function () {
        let s;
        try {
          s = backend.read();
          if (typeof s === 'string') s = s ? JSON.parse(s) : null;
        } catch (e) {
          log.debug('no readable chat state', e);
          return null;
        }
        if (!isPlainObject(s) || typeof s.sessionId !== 'string' || !s.sessionId ||
            typeof s.secureKey !== 'string' || !s.secureKey) {
          return null;
        }
        return {
          sessionId: s.sessionId,
          secureKey: s.secureKey,
          serverUrl: typeof s.serverUrl === 'string' ? s.serverUrl : undefined,
          index: Number.isInteger(s.index) && s.index > 0 ? s.index : 0,
          seq: Number.isInteger(s.seq) && s.seq > 0 ? s.seq : 0,
        };
      },
      write: function (state) {
        try {
          backend.write(state);
        } catch (e) {
          log.warn('could not save the chat state', e);
        }
      },
    };
  }

  function configure(options, serverUrl) {
    const log = makeLogger(options.logger);
    const cfg = {
      log: log,
      serverUrl: serverUrl || defaultServerUrl(),
      service: options.service,
      username: options.username,
      subject: options.subject,
      userData: options.userData,
      commandTimeout: options.commandTimeout > 0 ? options.commandTimeout : DEFAULT_COMMAND_TIMEOUT,
      replay: options.replay === 'missed' ? 'missed' : 'all',
      storage: makeStorage(options, log),
    };
    for (const k of ['service', 'username', 'subject']) {
      if (cfg[k] != null && typeof cfg[k] !== 'string') return { error: failure('invalid_argument', k + ' must be a string') };
    }
    if (cfg.userData != null && !isPlainObject(cfg.userData)) {
      return { error: failure('invalid_argument', 'userData must be an object of key/value pairs') };
    }
    try {
      cfg.wsUrl = websocketUrl(cfg.serverUrl);
    } catch (e) {
      return { error: failure('invalid_argument', 'serverUrl is not a usable http(s) URL: ' + String(cfg.serverUrl)) };
    }
    return { cfg: cfg };
  }

  /* ---------------------------------------------------------------- event shapes */

  function toParty(p) {
    if (!p) return null;
    const type = {};
    if (p.type) type[p.type] = true;
    return { id: p.id, name: p.name, type: type };
  }

  function isClient(p) {
    return !!p && p.type === 'client';
  }

  // A transcript event as the library hands it out. `restoredBelow` is the next_index of the
  // page-load restore: everything below it happened before this page was loaded.
  function toEvent(ev, restoredBelow) {
    const out = {
      index: ev.index,
      kind: ev.kind,
      timestamp: ev.timestamp,
      restored: ev.index < restoredBelow,
      party: toParty(ev.party),
    };
    if (ev.kind === 'message' || ev.kind === 'notice') {
      const c = ev.content || {};
      out.content = {
        text: typeof c.text === 'string' ? c.text : '',
        type: ev.kind === 'notice' ? 'notice' : c.type || 'text',
      };
    } else if (ev.content) {
      out.content = ev.content;
    }
    if (ev.kind === 'session_ended') out.reason = toReason(ev.reason);
    return out;
  }

  function toReason(r) {
    const reason = {};
    reason[r ? camel(r) : 'error'] = true; // leave_request -> leaveRequest
    return reason;
  }

  /* ---------------------------------------------------------------- the session */

  function createSession(cfg, mode, stored) {
    const log = cfg.log;
    const storage = cfg.storage;
    const opening = createRequest(log); // what startSession/restoreSession return

    let ws = null;
    // idle -> connecting -> attaching -> ready; waiting = backing off before the next connect;
    // closed = for good (fatal error, or the socket went away after the end). Never leaves closed.
    let phase = 'idle';
    let terminal = null; // the fail event every command gets once phase is closed
    let sessionId = stored ? stored.sessionId : null;
    let secureKey = stored ? stored.secureKey : null;
    let party = null;
    const resume = mode === 'restore' && cfg.replay === 'missed';
    let nextIndex = resume ? stored.index : 0; // next transcript index to deliver
    let nextSeq = resume ? stored.seq : 0; // next side-channel seq to deliver
    let restoredBelowIndex = 0; // set from the first restore result of a restoreSession()
    let restoredBelowSeq = 0;
    let everAttached = false;
    let everOpened = false;
    let ended = false;
    let leaveAcked = false;
    let attempt = 0;
    let reconnectTimer = null;
    let openTimer = null;
    let attach = null; // {frame, timer} of the start/restore in flight on the current socket
    let earlyFrames = []; // frames that arrived before the attach result
    let originError = null; // error frame that precedes a 1008 close
    // A retried start must reuse it, so the server does not start twice. Without Web Crypto there
    // is none, and connect() fails the session as unsupported before anything is sent.
    const startId = hasSecureRandom() ? newId() : null;
    const pending = []; // commands awaiting an answer, in the order they were issued
    let holdTimer = null; // while set, nothing is sent: a retry's backoff, or a rate_limited pause
    let holdUntil = 0;
    let retryAttempt = 0; // retries since a command last succeeded
    const buffered = new Map(); // transcript events that arrived ahead of a gap, by index
    let gapInFlight = false;
    let gapTimer = null;
    const transcript = []; // every raw event delivered, by index (answers getTranscript after the end)
    let persistTimer = null;
    let forgotten = false; // the stored state was cleared on purpose: never write it again

    /* ---------- memorized callbacks
     * Every emitted event is appended to one log; each handler has a cursor into it. A handler
     * registered late is replayed from the start of the log, in the original order across kinds
     * (replay is deferred to a microtask so handlers registered together in one done() callback
     * see "agent joined" before "message" whatever order they were registered in). */
    const emitted = [];
    const handlers = [];
    let flushing = false;
    let flushQueued = false;

    function emit(kind, ev) {
      emitted.push({ kind: kind, ev: ev });
      flush();
    }

    function register(kind, fn) {
      handlers.push({ kind: kind, fn: fn, cursor: 0 });
      if (!flushQueued) {
        flushQueued = true;
        later(function () { flushQueued = false; flush(); });
      }
    }

    function flush() {
      if (flushing) return; // a handler caused an emit: the running loop picks it up
      flushing = true;
      try {
        for (;;) {
          let min = emitted.length;
          for (const h of handlers) if (h.cursor < min) min = h.cursor;
          if (min >= emitted.length) break;
          const entry = emitted[min];
          for (const h of handlers.slice()) {
            if (h.cursor !== min) continue;
            h.cursor++;
            if (h.kind === entry.kind) guard(log, h.fn, entry.ev);
          }
        }
      } finally {
        flushing = false;
      }
    }

    /* ---------- persistence */

    function snapshot() {
      return { sessionId: sessionId, secureKey: secureKey, serverUrl: cfg.serverUrl, index: nextIndex, seq: nextSeq };
    }

    function persistNow() {
      if (persistTimer) { clearTimeout(persistTimer); persistTimer = null; }
      if (ended || forgotten || !sessionId) return;
      storage.write(snapshot());
    }

    function persistSoon() {
      if (!persistTimer) persistTimer = setTimeout(persistNow, PERSIST_EVERY);
    }

    function clearPersisted() {
      forgotten = true;
      if (persistTimer) { clearTimeout(persistTimer); persistTimer = null; }
      storage.write(null);
    }

    function onPageHide() { persistNow(); }
    function onOnline() { if (phase === 'waiting') { clearTimeout(reconnectTimer); reconnectTimer = null; connect(); } }
    if (typeof root.addEventListener === 'function') {
      root.addEventListener('pagehide', onPageHide);
      root.addEventListener('online', onOnline);
    }

    /* ---------- connection */

    function connect() {
      reconnectTimer = null;
      if (phase === 'closed') return;
      const WS = root.WebSocket;
      if (typeof WS !== 'function') {
        fatal(failure('unsupported', 'This browser has no WebSocket support.'));
        return;
      }
      if (!hasSecureRandom()) {
        fatal(failure('unsupported', 'This browser cannot make secure random numbers (Web Crypto).'));
        return;
      }
      phase = 'connecting';
      originError = null;
      let sock;
      try {
        sock = new WS(cfg.wsUrl, PROTOCOL);
      } catch (e) {
        log.warn('cannot open the websocket', e);
        scheduleReconnect();
        return;
      }
      ws = sock;
      const connectTimer = setTimeout(function () {
        if (sock !== ws || phase !== 'connecting') return;
        log.warn('the websocket handshake did not finish; reconnecting');
        dropSocket(4001, 'handshake timeout');
        onClose({ code: 4001 });
      }, Math.min(CONNECT_TIMEOUT, cfg.commandTimeout));
      // Handlers check `sock === ws` so that a socket we already gave up on cannot act any more.
      sock.onopen = function () { clearTimeout(connectTimer); if (sock === ws) onOpen(); };
      sock.onmessage = function (m) { if (sock === ws) onFrame(m.data); };
      sock.onerror = function () { /* a close event always follows; it is handled there */ };
      sock.onclose = function (e) { clearTimeout(connectTimer); if (sock === ws) onClose(e); };
    }

    function dropSocket(code, reason) {
      const sock = ws;
      ws = null;
      if (sock) {
        try { sock.close(code, reason); } catch (_) { /* already closing */ }
      }
    }

    function scheduleReconnect() {
      if (phase === 'closed' || reconnectTimer) return;
      phase = 'waiting';
      // Exponential backoff with jitter: after a node restart every customer reconnects at once;
      // spreading them out keeps the surviving nodes responsive. Half the delay is a fixed floor.
      const cap = Math.min(BACKOFF_MAX, BACKOFF_MIN * Math.pow(2, attempt));
      attempt++;
      const delay = cap / 2 + Math.random() * (cap / 2);
      log.debug('reconnecting in', Math.round(delay), 'ms');
      reconnectTimer = setTimeout(connect, delay);
    }

    function onOpen() {
      everOpened = true;
      phase = 'attaching';
      earlyFrames = [];
      let frame;
      if (!sessionId) {
        const args = {};
        if (cfg.service != null) args.service = cfg.service;
        if (cfg.username != null) args.username = cfg.username;
        if (cfg.subject != null) args.subject = cfg.subject;
        if (cfg.userData != null) args.user_data = cfg.userData;
        frame = { id: startId, cmd: 'start', args: args };
      } else {
        frame = {
          id: newId(),
          cmd: 'restore',
          args: { session_id: sessionId, secure_key: secureKey, from_index: nextIndex, from_seq: nextSeq },
        };
      }
      const sock = ws;
      attach = {
        frame: frame,
        // An attach that is never answered: drop this socket and try again with a fresh one.
        timer: setTimeout(function () {
          if (sock !== ws || phase !== 'attaching') return;
          log.warn(frame.cmd + ' was not answered; reconnecting');
          dropSocket(4000, 'attach timeout');
          onClose({ code: 4000 });
        }, cfg.commandTimeout),
      };
      rawSend(frame);
    }

    function onClose(e) {
      ws = null;
      if (attach) { clearTimeout(attach.timer); attach = null; }
      earlyFrames = [];
      // The transcript resumes from nextIndex on the next restore; what was buffered comes again.
      buffered.clear();
      gapInFlight = false;
      if (gapTimer) { clearTimeout(gapTimer); gapTimer = null; }
      for (const c of pending.slice()) {
        c.sent = false;
        // Internal reads are superseded by the restore; user commands wait and are re-sent.
        if (c.internal) answer(c, false, failure('network_error', 'The connection was lost.'));
      }
      if (phase === 'closed') return;
      const code = e && e.code;
      log.debug('socket closed', code);
      if (code === CLOSE_POLICY_VIOLATION && (originError || (e && e.reason === 'origin_not_allowed'))) {
        fatal(originError || failure('origin_not_allowed', 'This website is not allowed to use the chat server.'));
        return;
      }
      if (ended || leaveAcked) {
        // Nothing to resume: restore of an ended session fails. If the leave was acknowledged but
        // the closing event never arrived, report the end the customer asked for.
        if (!ended) endSession({ leaveRequest: true }, undefined, Date.now(), false);
        closeForGood(failure('session_ended', 'The chat session has ended.'));
        return;
      }
      scheduleReconnect();
    }

    // Stops for good: no more reconnects; every waiting and future command fails with `event`.
    function closeForGood(event) {
      persistNow(); // keep the progress made so far (no-op once the state was cleared)
      phase = 'closed';
      terminal = event;
      if (reconnectTimer) { clearTimeout(reconnectTimer); reconnectTimer = null; }
      if (openTimer) { clearTimeout(openTimer); openTimer = null; }
      if (gapTimer) { clearTimeout(gapTimer); gapTimer = null; }
      release();
      if (attach) { clearTimeout(attach.timer); attach = null; }
      dropSocket(1000, 'closing');
      if (sessionId && live.get(sessionId) && live.get(sessionId).opening === opening.req) live.delete(sessionId);
      if (typeof root.removeEventListener === 'function') {
        root.removeEventListener('pagehide', onPageHide);
        root.removeEventListener('online', onOnline);
      }
      for (const c of pending.slice()) answer(c, false, event);
      opening.reject(event);
    }

    // An error that ends this session object: reported through onError once the session was
    // handed out (before that, the startSession/restoreSession failure is the report).
    function fatal(event) {
      if (phase === 'closed') return;
      if (everAttached) emit('error', event);
      closeForGood(event);
    }

    /* ---------- frames */

    function rawSend(frame) {
      try {
        ws.send(JSON.stringify(frame));
        return true;
      } catch (e) {
        log.warn('send failed; the close handler will retry', e);
        return false;
      }
    }

    function onFrame(data) {
      let f;
      try {
        f = JSON.parse(data);
      } catch (_) {
        log.warn('ignoring a frame that is not JSON');
        return;
      }
      if (!isPlainObject(f)) return;
      if (phase === 'attaching') {
        if (f.type === 'result' && attach && f.id === attach.frame.id) onAttachResult(f);
        else if (f.type === 'error') onErrorFrame(f);
        else earlyFrames.push(f); // handled once the attach result says where we stand
        return;
      }
      dispatch(f);
    }

    function dispatch(f) {
      switch (f.type) {
        case 'result': onResult(f); break;
        case 'event': if (isPlainObject(f.event)) ingest(f.event); break;
        case 'typing': onTyping(f); break;
        case 'notice': onSideChannel(f, 'notice'); break;
        case 'userdata': onSideChannel(f, 'userDataUpdated'); break;
        case 'queue': emit('queuePosition', { position: f.position, timestamp: f.timestamp }); break;
        case 'error': onErrorFrame(f); break;
        default: break; // protocol.md: clients ignore frame types they do not know
      }
    }

    function onAttachResult(f) {
      const wasStart = attach.frame.cmd === 'start';
      clearTimeout(attach.timer);
      attach = null;
      if (!f.ok) {
        const event = serverError(f.error);
        const code = event.error.code;
        // Transient (unavailable: the server's database, usually): retry on a fresh socket (a
        // retried start reuses its id, so it cannot start a second session). Before the first
        // attach the opening timer bounds the retries. A rate-limited start is per address ("too
        // many new sessions"): retrying would not help.
        if (code === 'internal' || code === 'unavailable' || (code === 'rate_limited' && !wasStart)) {
          log.warn((wasStart ? 'start' : 'restore') + ' failed, retrying:', code);
          dropSocket(1000, 'retry');
          onClose({ code: 1000 });
          return;
        }
        if (!wasStart && (code === 'session_not_found' || code === 'session_ended')) {
          clearPersisted();
          if (everAttached && !ended) {
            // The session went away while we were reconnecting (it ended, or the key was
            // revoked); the closing event cannot be fetched any more.
            emit('error', event);
            endSession({ error: true }, undefined, Date.now(), false);
            closeForGood(event);
            return;
          }
        }
        fatal(event);
        return;
      }
      const d = isPlainObject(f.data) ? f.data : {};
      if (wasStart) {
        sessionId = d.session_id;
        secureKey = d.secure_key;
      }
      if (d.party) party = toParty(d.party);
      if (!everAttached && mode === 'restore') {
        restoredBelowIndex = Number(d.next_index) || 0;
        restoredBelowSeq = Number(d.next_seq) || 0;
      }
      phase = 'ready';
      attempt = 0;
      retryAttempt = 0;
      release(); // a fresh connection: its frame limit is new, and the server answered
      const first = !everAttached;
      everAttached = true;
      if (first) {
        clearTimeout(openTimer);
        openTimer = null;
        if (sessionId && !live.has(sessionId)) live.set(sessionId, { opening: opening.req });
      }
      persistNow();
      const early = earlyFrames;
      earlyFrames = [];
      for (const fr of early) dispatch(fr);
      // Unanswered commands go again with their original ids: the server applies each id once.
      pump();
      if (first) opening.resolve(session);
    }

    function onErrorFrame(f) {
      const event = serverError(f.error);
      const c = typeof f.id === 'string' ? findPending(f.id) : null;
      if (c) {
        answer(c, false, event);
        return;
      }
      if (event.error.code === 'origin_not_allowed') {
        originError = event; // the 1008 close that follows turns it into the fatal error
        return;
      }
      if (event.error.code === 'rate_limited') {
        // The server dropped a frame of ours, unread and unanswered, over the connection's frame
        // limit (protocol.md, "Frame limit"): the command in flight goes again, with its id,
        // after a pause. The library recovers, so the page is not told.
        log.warn('over the server\'s frame limit; pausing');
        for (const c of pending) c.sent = false;
        hold(RATE_PAUSE + Math.random() * RATE_PAUSE);
        return;
      }
      emit('error', event);
    }

    function onTyping(f) {
      if (isClient(f.party)) return; // our own typing from another tab of this customer
      emit('agentTyping', {
        party: toParty(f.party),
        isTyping: !!f.is_typing,
        typedText: typeof f.text === 'string' ? f.text : '',
        timestamp: f.timestamp,
      });
    }

    // Notices and UserData changes share the side-channel seq. The server re-pushes everything
    // from from_seq on restore, so anything below nextSeq was delivered already.
    function onSideChannel(f, kind) {
      const hasSeq = typeof f.seq === 'number';
      if (hasSeq && f.seq < nextSeq) return;
      if (hasSeq) nextSeq = f.seq + 1;
      const restored = hasSeq && f.seq < restoredBelowSeq;
      if (kind === 'notice') {
        emit('notice', { seq: f.seq, party: toParty(f.party), payload: f.payload, timestamp: f.timestamp, restored: restored });
      } else {
        emit('userDataUpdated', {
          userData: isPlainObject(f.changes) ? f.changes : {},
          seq: f.seq,
          timestamp: f.timestamp,
          restored: restored,
        });
      }
      persistSoon();
    }

    /* ---------- transcript: ordering, dedup, gaps */

    function ingest(ev) {
      if (!Number.isInteger(ev.index) || ended) return;
      if (ev.index < nextIndex) return; // delivered already (a replay or a re-push)
      if (ev.index > nextIndex) {
        buffered.set(ev.index, ev);
        fillGap();
        return;
      }
      deliver(ev);
      while (!ended && buffered.has(nextIndex)) {
        const next = buffered.get(nextIndex);
        buffered.delete(nextIndex);
        deliver(next);
      }
      if (!ended) persistSoon();
    }

    // Asks for the events between nextIndex and the first buffered one. One request at a time;
    // its answer goes through ingest() like pushed events, so nothing is delivered twice.
    function fillGap() {
      if (gapInFlight || gapTimer || phase !== 'ready' || buffered.size === 0) return;
      let first = Infinity;
      for (const i of buffered.keys()) if (i < first) first = i;
      const before = nextIndex;
      gapInFlight = true;
      log.debug('transcript gap', nextIndex, '..', first - 1);
      enqueue('get_transcript', { from_index: nextIndex, limit: Math.min(TRANSCRIPT_PAGE, first - nextIndex) }, function (ok, x) {
        gapInFlight = false;
        if (ok && Array.isArray(x.events)) x.events.forEach(function (ev) { if (isPlainObject(ev)) ingest(ev); });
        if (buffered.size === 0 || phase !== 'ready') return;
        if (ok && nextIndex > before) {
          fillGap();
        } else {
          gapTimer = setTimeout(function () { gapTimer = null; fillGap(); }, GAP_RETRY);
        }
      }, { internal: true });
    }

    function deliver(ev) {
      transcript[ev.index] = ev;
      nextIndex = ev.index + 1;
      const out = toEvent(ev, restoredBelowIndex);
      switch (ev.kind) {
        case 'message':
        case 'notice':
          emit('messageReceived', out);
          break;
        case 'party_joined':
          if (!isClient(ev.party)) emit('agentConnected', out);
          break;
        case 'party_left':
          if (!isClient(ev.party)) emit('agentDisconnected', out);
          break;
        case 'session_ended':
          endSession(out.reason, ev.index, ev.timestamp, out.restored);
          break;
        default:
          break; // a kind this version does not know: kept for getTranscript, not announced
      }
    }

    function endSession(reason, index, timestamp, restored) {
      if (ended) return;
      ended = true;
      buffered.clear();
      emit('sessionEnded', { reason: reason, index: index, timestamp: timestamp, restored: restored });
      // After the handlers ran: a reload must not try to restore a session that is over.
      clearPersisted();
      if (sessionId && live.get(sessionId) && live.get(sessionId).opening === opening.req) live.delete(sessionId);
    }

    /* ---------- commands */

    function findPending(id) {
      for (const c of pending) if (c.frame.id === id) return c;
      return null;
    }

    function answer(c, ok, x) {
      const i = pending.indexOf(c);
      if (i < 0) return; // answered already (a late result after a timeout, for instance)
      pending.splice(i, 1);
      clearTimeout(c.timer);
      try {
        c.handler(ok, x);
      } catch (e) {
        log.error('internal error handling an answer', e);
      }
      pump();
    }

    function onResult(f) {
      const c = typeof f.id === 'string' ? findPending(f.id) : null;
      if (!c) return; // an answer we stopped waiting for
      if (f.ok) {
        retryAttempt = 0;
        answer(c, true, isPlainObject(f.data) ? f.data : {});
        return;
      }
      const event = serverError(f.error);
      if (event.error.code === 'unavailable' && retryLater(c)) return;
      answer(c, false, event);
    }

    // Commands are sent one at a time, in the order they were issued: the next one once the one
    // before was answered. So a command sent again after `unavailable` (or after a reconnect)
    // still reaches the server before every later one, and the transcript keeps the page's order
    // even when the database comes back between two of its messages.
    function pump() {
      if (phase !== 'ready' || !ws || holdTimer) return;
      const c = pending[0];
      if (c && !c.sent) c.sent = rawSend(c.frame);
    }

    // Sends nothing for delay ms (or until a running hold ends, if later), then carries on.
    function hold(delay) {
      const until = Date.now() + delay;
      if (holdTimer && until <= holdUntil) return;
      release();
      holdUntil = until;
      holdTimer = setTimeout(function () { holdTimer = null; pump(); }, delay);
    }

    function release() {
      if (holdTimer) { clearTimeout(holdTimer); holdTimer = null; }
    }

    // A command answered `unavailable` committed nothing, or is applied once by its id: it is sent
    // again, with the same id, after a backoff with jitter. When the next attempt would come after
    // its commandTimeout it is not retried (the caller fails it with the server's answer).
    function retryLater(c) {
      const cap = Math.min(RETRY_MAX, RETRY_MIN * Math.pow(2, retryAttempt));
      const delay = cap / 2 + Math.random() * (cap / 2);
      if (Date.now() + delay >= c.deadline) return false;
      retryAttempt++;
      c.sent = false;
      log.warn(c.frame.cmd + ' answered unavailable; sending it again in', Math.round(delay), 'ms');
      hold(delay);
      return true;
    }

    // Queues a command and sends it as soon as the session is attached. handler(ok, dataOrFailEvent)
    // is called exactly once: with the server's answer, a timeout, or the reason it cannot be sent.
    function enqueue(cmd, args, handler, opts) {
      const frame = { id: newId(), cmd: cmd, args: args };
      if (phase === 'closed') {
        handler(false, terminal);
        return;
      }
      if (utf8Length(JSON.stringify(frame)) >= MAX_FRAME_BYTES) {
        handler(false, failure('frame_too_large', 'The command is too large to send.'));
        return;
      }
      const c = {
        frame: frame, handler: handler, sent: false, internal: !!(opts && opts.internal),
        deadline: Date.now() + cfg.commandTimeout,
      };
      // The clock runs from the call, including time spent queued while disconnected. A command
      // that times out after it was sent may still have been applied by the server.
      c.timer = setTimeout(function () {
        answer(c, false, failure('timeout', 'No answer from the chat server within ' + cfg.commandTimeout + ' ms.'));
      }, cfg.commandTimeout);
      pending.push(c);
      pump();
    }

    // A public command: returns the seed's done/fail request. `changes` commands are refused
    // locally once the session has ended (the server would answer session_ended anyway).
    function command(cmd, args, mapData, changes) {
      const d = createRequest(log);
      if (changes && ended) {
        d.reject(failure('session_ended', 'The chat session has ended.'));
        return d.req;
      }
      enqueue(cmd, args, function (ok, x) {
        if (ok) d.resolve(mapData(x));
        else d.reject(x);
      }, null);
      return d.req;
    }

    function invalid(description) {
      return rejected(failure('invalid_argument', description), log);
    }

    function stamp(x) {
      return typeof x.timestamp === 'number' ? x.timestamp : Date.now();
    }

    function sendMessage(arg) {
      let text = arg;
      let type = 'text';
      if (isPlainObject(arg)) {
        text = arg.message != null ? arg.message : arg.text;
        if (arg.type != null) type = arg.type;
      }
      if (typeof text !== 'string') return invalid('sendMessage needs the message text as a string');
      if (type !== 'text' && type !== 'url') return invalid("message type must be 'text' or 'url'");
      return command('send_message', { text: text, type: type }, function (x) {
        return { index: x.index, timestamp: stamp(x) };
      }, true);
    }

    function sendTyping(opts) {
      const o = isPlainObject(opts) ? opts : {};
      const isTyping = o.isTyping === undefined ? true : !!o.isTyping;
      const text = isTyping && typeof o.typedText === 'string' ? o.typedText : '';
      // Only the latest typing state matters: a newer one replaces those still waiting to be sent
      // (they resolve as if sent), so neither a reconnect nor a command waiting for its answer or
      // its retry makes the agent watch old keystrokes.
      for (const c of pending.slice()) {
        if (c.frame.cmd === 'typing' && !c.sent) answer(c, true, { timestamp: Date.now() });
      }
      return command('typing', { is_typing: isTyping, text: text }, function (x) {
        return { timestamp: stamp(x) };
      }, true);
    }

    function leave() {
      if (ended) {
        // Leaving a chat that is over already achieves what the caller wants.
        const d = createRequest(log);
        d.resolve({ timestamp: Date.now() });
        return d.req;
      }
      return command('leave', {}, function (x) {
        leaveAcked = true; // from now on a dropped socket is not reconnected
        return { timestamp: stamp(x) };
      }, true);
    }

    function getTranscript(opts) {
      const o = isPlainObject(opts) ? opts : {};
      const from = o.fromIndex === undefined ? 0 : o.fromIndex;
      if (!Number.isInteger(from) || from < 0) return invalid('fromIndex must be a non-negative integer');
      const d = createRequest(log);
      const finish = function (raw, next) {
        const events = raw.map(function (ev) { return toEvent(ev, restoredBelowIndex); });
        d.resolve({ transcript: events, events: events, nextIndex: next, timestamp: Date.now() });
      };
      // After the end the socket may be gone for good (a restore of an ended session fails), but
      // the transcript this page received is complete up to the closing event.
      if (phase === 'closed' && ended) {
        const raw = [];
        for (let i = from; i < transcript.length; i++) {
          if (!transcript[i]) {
            d.reject(failure('session_ended', 'The chat session has ended; that part of the transcript was not received on this page.'));
            return d.req;
          }
          raw.push(transcript[i]);
        }
        finish(raw, transcript.length);
        return d.req;
      }
      const raw = [];
      const page = function (fromIndex) {
        enqueue('get_transcript', { from_index: fromIndex, limit: TRANSCRIPT_PAGE }, function (ok, x) {
          if (!ok) { d.reject(x); return; }
          const events = Array.isArray(x.events) ? x.events.filter(isPlainObject) : [];
          // Whatever this page holds that was not pushed yet is delivered now, in order, once.
          events.forEach(ingest);
          for (const ev of events) raw.push(ev);
          const last = events.length ? events[events.length - 1].index : fromIndex - 1;
          // A full page may have more behind it; a short one is the end of the transcript.
          if (events.length >= TRANSCRIPT_PAGE) page(last + 1);
          else finish(raw, Number.isInteger(x.next_index) ? x.next_index : last + 1);
        }, null);
      };
      page(from);
      return d.req;
    }

    function updateUserData(data) {
      if (!isPlainObject(data)) return invalid('updateUserData needs an object of key/value pairs');
      return command('update_userdata', { user_data: data }, function (x) {
        return { timestamp: stamp(x) };
      }, true);
    }

    function getUserData(key) {
      if (typeof key !== 'string') return invalid('getUserData needs the key as a string');
      return command('get_userdata', { key: key }, function (x) {
        return { userData: isPlainObject(x.user_data) ? x.user_data : {}, timestamp: stamp(x) };
      }, false);
    }

    function deleteUserData(key) {
      if (typeof key !== 'string') return invalid('deleteUserData needs the key as a string');
      return command('delete_userdata', { key: key }, function (x) {
        return { timestamp: stamp(x) };
      }, true);
    }

    function sendCustomNotice(payload) {
      if (payload === undefined) return invalid('sendCustomNotice needs a payload');
      return command('send_notice', { payload: payload }, function (x) {
        return { seq: x.seq, timestamp: stamp(x) };
      }, true);
    }

    /* ---------- the public object */

    const session = {
      sendMessage: sendMessage,
      sendTyping: sendTyping,
      leave: leave,
      getTranscript: getTranscript,
      updateUserData: updateUserData,
      setUserData: updateUserData,
      getUserData: getUserData,
      deleteUserData: deleteUserData,
      sendCustomNotice: sendCustomNotice,
      sendNotification: sendCustomNotice,
    };
    Object.keys(HANDLER_KINDS).forEach(function (name) {
      const kind = HANDLER_KINDS[name];
      session[name] = function (fn) {
        if (typeof fn === 'function') register(kind, fn);
        else log.warn(name + ' needs a function');
        return session;
      };
    });
    Object.defineProperties(session, {
      sessionId: { enumerable: true, get: function () { return sessionId; } },
      party: { enumerable: true, get: function () { return party; } },
      ended: { enumerable: true, get: function () { return ended; } },
      connected: { enumerable: true, get: function () { return phase === 'ready'; } },
    });

    // The opening budget: until the first attach, connection attempts are retried with backoff
    // for at most commandTimeout; then startSession/restoreSession fail.
    openTimer = setTimeout(function () {
      openTimer = null;
      if (everAttached) return;
      fatal(everOpened
        ? failure('timeout', 'The chat server did not answer within ' + cfg.commandTimeout + ' ms.')
        : failure('network_error', 'Cannot connect to the chat server at ' + cfg.wsUrl + '.'));
    }, cfg.commandTimeout);
    if (mode === 'restore') live.set(sessionId, { opening: opening.req });
    connect();
    return opening;
  }

  /* ---------------------------------------------------------------- entry points */

  function startSession(options) {
    const opts = isPlainObject(options) ? options : {};
    const log = makeLogger(opts.logger);
    const c = configure(opts, opts.serverUrl);
    if (c.error) return rejected(c.error, log);
    return createSession(c.cfg, 'start', null).req;
  }

  function restoreSession(options) {
    const opts = isPlainObject(options) ? options : {};
    const log = makeLogger(opts.logger);
    const state = makeStorage(opts, log).read();
    // Nothing to continue: fail without `error`, as the seed's example expects.
    if (!state) return rejected({}, log);
    const existing = live.get(state.sessionId);
    if (existing) return existing.opening;
    const c = configure(opts, opts.serverUrl || state.serverUrl);
    if (c.error) return rejected(c.error, log);
    return createSession(c.cfg, 'restore', state).req;
  }

  root.chat = {
    version: VERSION,
    protocol: PROTOCOL,
    startSession: startSession,
    restoreSession: restoreSession,
  };
})(typeof globalThis !== 'undefined' ? globalThis : typeof window !== 'undefined' ? window : this);
